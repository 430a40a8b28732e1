"""The insides of :class:`steadybot.Bot` (private): what it delegates to.

``steadybot.bot`` is the facade users build and decorate; these modules are the parts
behind it, one concept each: :mod:`~steadybot._bot.work` (tracked tasks and the
shutdown grace) and :mod:`~steadybot._bot.parts` (the optional parts made on first use
on the bot's clock). Handler registration lives in
:mod:`steadybot.interactions.registry`.
"""

__all__: list[str] = []
