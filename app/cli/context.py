"""What every ``jury`` sub-command shares: settings, the runtime, clean error exits."""

from __future__ import annotations

import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from app.core.config import JuryConfig
from app.core.errors import JuryError, NoQuorumError
from app.core.settings import Settings
from app.core.validation import VALIDATION_ERROR, field_errors
from app.runtime import Runtime, open_runtime

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

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


class TerminatedError(Exception):
    """The command was stopped by SIGTERM, after its runtime closed."""


async def _cancel_on_sigterm(scope: anyio.CancelScope, terminated: anyio.Event) -> None:
    """Cancel ``scope`` on SIGTERM, so that the runtime's clean-up runs.

    By default SIGTERM kills the interpreter where it stands: no finally block runs, so the local
    llama-servers the command started (each in a session of its own) outlive it and a verdict
    in progress stays "running". Not by way of SIGINT: a process started in the background by
    a shell without job control inherits SIGINT ignored.
    """
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            terminated.set()
            scope.cancel()
            return


def parsed(model: type[M], **values: Any) -> M:
    """Return ``model`` built from a command's arguments, or exit 2 naming each bad field.

    The same words as the API's 422 (``app.core.validation``), not pydantic's traceback.
    """
    try:
        return model(**values)
    except ValidationError as exc:
        for error in field_errors(exc.errors()):
            errors.print(f"[bold red]{VALIDATION_ERROR}[/]: {error['field']}: {error['message']}")
        raise typer.Exit(2) from None


def run_in_runtime(
    settings: Settings,
    work: Callable[[Runtime], Awaitable[T]],
    *,
    config: JuryConfig | None = None,
    models: bool = True,
) -> T:
    """Open the runtime (on ``config`` if given, else the settings' file), run ``work`` with
    it, and turn Jury errors into a clean exit. ``models=False``: ``work`` calls no model, so
    no local server is started (``open_runtime``)."""

    async def main() -> T:
        terminated = anyio.Event()
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_sigterm, group.cancel_scope, terminated)
            try:
                async with open_runtime(
                    settings, config=config, progress=_local_progress, models=models
                ) as runtime:
                    result = await work(runtime)
            except Exception as exc:  # raised below, outside the group: not in an ExceptionGroup
                failure = exc
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if terminated.is_set():
            raise TerminatedError
        return result

    try:
        return anyio.run(main)
    except TerminatedError:
        errors.print("[bold red]terminated[/]: SIGTERM; the runtime was closed first")
        raise typer.Exit(128 + signal.SIGTERM) from None
    except NoQuorumError as exc:
        errors.print(f"[bold red]no quorum[/]: {exc.detail}")
        errors.print(json.dumps(exc.body(), indent=2))
        raise typer.Exit(3) from None
    except JuryError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {exc.detail}")
        raise typer.Exit(2) from None
