"""The ``steadybot`` command: serve a bot, run the emulator, run the demo."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from typing import cast

import click

from steadybot.emulator.faults import PROFILES

__all__ = ["load_app", "main"]


def load_app(target: str) -> object:
    """Import ``module:attribute``; a :class:`~steadybot.Bot` becomes its ASGI app."""
    from steadybot.bot import Bot

    obj = load_app_object(target)
    return obj.asgi() if isinstance(obj, Bot) else obj


def load_app_object(target: str) -> object:
    """Import ``module:attribute`` and return the attribute."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter("expected MODULE:ATTRIBUTE, e.g. examples.hello:bot")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}") from None
    try:
        obj = getattr(module, attribute)
    except AttributeError:
        raise click.BadParameter(f"{module_name!r} has no attribute {attribute!r}") from None
    return obj


FAULT_PROFILE = click.Choice(sorted(PROFILES))
"""The emulator's fault profiles, as a CLI option type."""


@click.group()
@click.version_option(package_name="steadybot")
def main() -> None:
    """steadybot: Discord bots that answer in time, exactly once."""


@main.command()
@click.argument("target")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    show_default=True,
    help="auto: JSON unless stderr is a terminal.",
)
def serve(target: str, host: str, port: int, log_level: str, log_format: str) -> None:
    """Serve TARGET (MODULE:ATTRIBUTE, a Bot or an ASGI app) on POST /interactions."""
    import uvicorn

    from steadybot.bot import Bot
    from steadybot.observability.logs import configure_logging

    try:
        loaded = load_app_object(target)
        app = loaded.asgi() if isinstance(loaded, Bot) else loaded
    except ValueError as exc:  # bad settings, e.g. a malformed public key
        raise click.ClickException(str(exc)) from None
    # Handlers run in their request's task: uvicorn waits for those tasks on shutdown,
    # so its grace period is the bot's (then cut-off handlers tell their users).
    grace = math.ceil(loaded.settings.shutdown_grace) if isinstance(loaded, Bot) else None
    secrets = (
        [loaded.settings.token.get_secret_value(), loaded.settings.public_key]
        if isinstance(loaded, Bot)
        else []
    )
    configure_logging(
        json=None if log_format == "auto" else log_format == "json",
        level=log_level.upper(),
        secrets=secrets,
    )
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,  # uvicorn's records go through configure_logging's handler
        access_log=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=grace,
    )


@main.command()
@click.option("--users", default=300, show_default=True, type=click.IntRange(1, 5000))
@click.option("--seconds", default=20.0, show_default=True, type=click.FloatRange(0, 600))
@click.option("--faults", default="flaky", show_default=True, type=FAULT_PROFILE)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--baseline", is_flag=True, help="Also run the naive handler and compare.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--story",
    "stories",
    multiple=True,
    type=click.Choice(["applications", "pricing", "crafting", "ladder"]),
    help="Run only this story (repeatable). Default: every story.",
)
def demo(
    users: int,
    seconds: float,
    faults: str,
    seed: int,
    baseline: bool,
    json_path: Path | None,
    stories: tuple[str, ...],
) -> None:
    """Emulator + the story bots + a crowd each; prints what Discord users saw."""
    from steadybot.demo import STORIES, DemoOptions
    from steadybot.demo import main as run

    options = DemoOptions(
        users=users,
        seconds=seconds,
        faults=faults,
        seed=seed,
        baseline=baseline,
        json_path=json_path,
        stories=stories or tuple(STORIES),
    )
    raise SystemExit(run(options))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--members", default=300, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--faults", default="none", show_default=True, type=FAULT_PROFILE)
def emulate(host: str, port: int, seed: int, members: int, faults: str) -> None:
    """Run the local Discord emulator until interrupted; prints what a bot needs."""
    import asyncio

    from steadybot.emulator import Emulator

    async def run() -> None:
        async with Emulator(
            host=host, port=port, seed=seed, members=members, faults=faults
        ) as emulator:
            click.echo(
                f"emulator listening on {emulator.url} (info: {emulator.url}/_emulator/info)"
            )
            click.echo(f"STEADYBOT_API_BASE={emulator.api_base}")
            click.echo(f"STEADYBOT_APPLICATION_ID={emulator.application_id}")
            click.echo(f"STEADYBOT_PUBLIC_KEY={emulator.public_key}")
            click.echo(f"STEADYBOT_TOKEN={emulator.bot_token}")
            await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("emulator stopped")
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None


SCENARIOS = {
    "applications": "examples.applications:scenario",
    "crafting": "examples.crafting:scenario",
}
"""Scenario names ``steadybot crowd --scenario`` knows; MODULE:ATTRIBUTE works too."""


@main.command()
@click.option("--emulator", "emulator_url", required=True, help="e.g. http://127.0.0.1:8090")
@click.option("--scenario", "scenario_name", required=True, help="applications, or MODULE:ATTR")
@click.option("--users", default=50, show_default=True, type=click.IntRange(1, 5000))
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(0, 3600))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--endpoint", default=None, help="Set the bot's interactions URL first.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
def crowd(
    emulator_url: str,
    scenario_name: str,
    users: int,
    seconds: float,
    seed: int,
    endpoint: str | None,
    json_path: Path | None,
) -> None:
    """Drive a scenario's crowd through a standalone emulator (steadybot emulate)."""
    import asyncio
    import json

    from rich.console import Console

    from steadybot.crowd import (
        CrowdReport,
        RemoteEmulator,
        RemoteEmulatorError,
        Scenario,
        run_crowd,
    )
    from steadybot.crowd.render import report_table

    loaded = load_app_object(SCENARIOS.get(scenario_name, scenario_name))
    if not all(hasattr(loaded, name) for name in ("name", "setup", "user", "checks")):
        raise click.BadParameter(f"{scenario_name!r} is not a scenario (name/setup/user/checks)")
    scenario = cast("Scenario", loaded)

    async def run() -> CrowdReport:
        async with RemoteEmulator(emulator_url) as target:
            if endpoint:
                await target.set_interactions_endpoint(endpoint)
            return await run_crowd(target, scenario, users=users, seconds=seconds, seed=seed)

    try:
        report = asyncio.run(run())
    except RemoteEmulatorError as exc:
        raise click.ClickException(f"emulator at {emulator_url}: {exc}") from None
    console = Console()
    console.print(report_table({"crowd": report}))
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
        console.print(f"report written to {json_path}")
    raise SystemExit(0 if report.ok else 1)


# --- credits (steadybot credits ...) -------------------------------------------------------
@main.group()
def credits() -> None:
    """The credits ledger: checks and reports."""


@credits.command("reconcile")
@click.option(
    "--database-url",
    default=None,
    help="Default: STEADYBOT_DATABASE_URL (then sqlite:///steadybot.sqlite3).",
)
@click.option(
    "--overdue-grace",
    default=None,
    type=click.FloatRange(0),
    help="Seconds past its deadline before a pending reservation is flagged "
    "(default: STEADYBOT_CREDITS_OVERDUE_GRACE).",
)
def credits_reconcile(database_url: str | None, overdue_grace: float | None) -> None:
    """Recompute every balance from the ledger's entries; exit 1 on any discrepancy."""
    import asyncio

    from rich.console import Console

    from steadybot.config import Settings
    from steadybot.credits import LEDGER_SCOPE, Ledger, ReconcileReport
    from steadybot.credits.render import reconcile_table
    from steadybot.storage import StorageError, open_database
    from steadybot.storage.migrations import applied_versions

    settings = Settings()

    async def run() -> ReconcileReport:
        database = await open_database(database_url, settings=settings)
        try:
            if not await applied_versions(database, LEDGER_SCOPE):
                raise StorageError(
                    "this database has no credits ledger (its migrations, scope "
                    f"{LEDGER_SCOPE!r}, were never applied here)"
                )
            return await Ledger.from_settings(database, settings).reconcile(
                overdue_grace=overdue_grace
            )
        finally:
            await database.close()

    try:
        report = asyncio.run(run())
    except StorageError as exc:
        raise click.ClickException(f"cannot reconcile: {exc}") from None
    Console().print(reconcile_table(report))
    raise SystemExit(0 if report.ok else 1)
