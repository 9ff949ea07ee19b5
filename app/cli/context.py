"""What every ``jury`` sub-command shares: settings, the runtime, clean error exits."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import anyio
import typer
from rich.console import Console

from app.core.config import JuryConfig
from app.core.errors import JuryError, NoQuorumError
from app.core.settings import Settings
from app.runtime import Runtime, open_runtime

T = TypeVar("T")

console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $JURY_CONFIG or config/jury.yaml)."),
]


def settings_for(config: Path | None) -> Settings:
    """Return the settings, with ``--config`` taking precedence over ``JURY_CONFIG``."""
    return Settings(config=config) if config is not None else Settings()


def _local_progress(message: str) -> None:
    """Show a step of starting the local models on stderr (stdout may be JSON)."""
    errors.print(f"[dim]local models: {message}[/]")


def run_in_runtime(
    settings: Settings,
    work: Callable[[Runtime], Awaitable[T]],
    *,
    config: JuryConfig | None = None,
) -> T:
    """Open the runtime (on ``config`` if given, else the settings' file), run ``work`` with
    it, and turn Jury errors into a clean exit."""

    async def main() -> T:
        async with open_runtime(settings, config=config, progress=_local_progress) as runtime:
            return await work(runtime)

    try:
        return anyio.run(main)
    except NoQuorumError as exc:
        errors.print(f"[bold red]no quorum[/]: {exc.detail}")
        errors.print(json.dumps(exc.body(), indent=2))
        raise typer.Exit(3) from None
    except JuryError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {exc.detail}")
        raise typer.Exit(2) from None
