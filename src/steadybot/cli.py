"""The ``steadybot`` command: serve a bot, run the emulator, run the demo."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

__all__ = ["load_app", "main"]


def load_app(target: str) -> object:
    """Import ``module:attribute``; a :class:`~steadybot.Bot` becomes its ASGI app."""
    from steadybot.bot import Bot

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
    return obj.asgi() if isinstance(obj, Bot) else obj


@click.group()
@click.version_option(package_name="steadybot")
def main() -> None:
    """steadybot: Discord bots that answer in time, exactly once."""


@main.command()
@click.argument("target")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--log-level", default="info", show_default=True)
def serve(target: str, host: str, port: int, log_level: str) -> None:
    """Serve TARGET (MODULE:ATTRIBUTE, a Bot or an ASGI app) on POST /interactions."""
    import uvicorn

    try:
        app = load_app(target)
    except ValueError as exc:  # bad settings, e.g. a malformed public key
        raise click.ClickException(str(exc)) from None
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=None,
    )


@main.command()
@click.option("--users", default=300, show_default=True, type=click.IntRange(1, 5000))
@click.option("--seconds", default=20.0, show_default=True, type=click.FloatRange(0, 600))
@click.option("--faults", default="flaky", show_default=True, help="Fault profile: none, flaky.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--baseline", is_flag=True, help="Also run the naive handler and compare.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
def demo(
    users: int, seconds: float, faults: str, seed: int, baseline: bool, json_path: Path | None
) -> None:
    """Emulator + the applications bot + a crowd; prints what Discord users saw."""
    from steadybot.demo import DemoOptions
    from steadybot.demo import main as run
    from steadybot.emulator import PROFILES

    if faults not in PROFILES:
        raise click.BadParameter(f"unknown profile {faults!r}; known: {', '.join(PROFILES)}")
    options = DemoOptions(
        users=users,
        seconds=seconds,
        faults=faults,
        seed=seed,
        baseline=baseline,
        json_path=json_path,
    )
    raise SystemExit(run(options))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--members", default=300, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--faults", default="none", show_default=True, help="Fault profile: none, flaky.")
def emulate(host: str, port: int, seed: int, members: int, faults: str) -> None:
    """Run the local Discord emulator until interrupted; prints what a bot needs."""
    import asyncio

    from steadybot.emulator import PROFILES, Emulator

    if faults not in PROFILES:
        raise click.BadParameter(f"unknown profile {faults!r}; known: {', '.join(PROFILES)}")

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
