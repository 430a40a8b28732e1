"""The smallest steadybot: answers in time, exactly once, without thinking about it.

Serve it with ``steadybot serve examples.hello:bot`` (settings from the environment,
see the README). Work is simulated with ``bot.clock.sleep`` so tests can run it on a
manual clock in milliseconds; a real bot simply awaits its real work.

- ``/ping`` answers at once, in the HTTP reply.
- ``/slow`` works 5 s: the runtime defers at ``defer_after`` and the answer edits the
  "thinking…" message.
- ``/progress`` shows three progress steps, then answers in place.
- ``/counter`` posts a button; each click edits the button's own message.
"""

from __future__ import annotations

from steadybot import Bot, Interaction

bot = Bot()

SLOW_WORK_SECONDS = 5.0
PROGRESS_STEP_SECONDS = 1.0


@bot.command("ping")
async def ping(interaction: Interaction) -> None:
    await interaction.respond("Pong! 🏓")


@bot.command("slow")
async def slow(interaction: Interaction) -> None:
    await bot.clock.sleep(SLOW_WORK_SECONDS)
    await interaction.respond(f"Done after {SLOW_WORK_SECONDS:.0f} s of work.")


@bot.command("progress")
async def progress(interaction: Interaction) -> None:
    reporter = interaction.progress()
    for step in (1, 2, 3):
        await reporter.update(f"⏳ Step {step} of 3…")
        await bot.clock.sleep(PROGRESS_STEP_SECONDS)
    await interaction.respond("✅ All three steps done.")


def counter_button(count: int) -> list[dict[str, object]]:
    """An action row with one button whose custom_id carries the count."""
    button = {
        "type": 2,
        "style": 1,
        "label": f"Clicked {count} times",
        "custom_id": f"counter:{count}",
    }
    return [{"type": 1, "components": [button]}]


@bot.command("counter")
async def counter(interaction: Interaction) -> None:
    await interaction.respond("Click the button:", components=counter_button(0))


@bot.component("counter:{count:int}")
async def counter_clicked(interaction: Interaction, count: int) -> None:
    await interaction.update(f"Clicked {count + 1} time(s).", components=counter_button(count + 1))
