"""``python -m steadybot``: the same as the ``steadybot`` command."""

from steadybot.cli import main

main()
