"""``jury mcp``: Jury's MCP tools over stdio, for desktop agents and IDEs.

The agent's host starts ``jury mcp`` and speaks MCP on its stdin and stdout (so nothing else may
write to stdout). The API key is read from the environment variable the host sets (``--key-env``,
``JURY_API_KEY`` by default), never from the command line where other users could see it; with no
key, local mode applies (no API key exists in the database).
"""

from __future__ import annotations

import os
from typing import Annotated

import anyio
import typer

from app.cli.context import ConfigOption, errors, settings_for
from app.core.errors import JuryError
from app.core.settings import Settings

DEFAULT_KEY_ENV = "JURY_API_KEY"


async def serve_stdio(settings: Settings, key: str | None) -> None:
    """Open the runtime, check the key, and serve MCP on stdin/stdout until the host closes it."""
    # Imported on use: the MCP SDK and the runtime cost time at every other command's start-up.
    from app.http.mcp.server import KeyCallers, RuntimeRef, build_server
    from app.runtime import open_runtime

    runtime_ref = RuntimeRef()
    server = build_server(runtime_ref, KeyCallers(runtime_ref, key))
    # This process runs its queued verdicts itself: a pending verdict goes on between calls.
    async with open_runtime(settings, run_queue=True) as runtime:
        # A wrong key fails the start, not the agent's first verdict.
        await runtime.auth.authenticate(key)
        runtime_ref.set(runtime)
        await server.run_stdio_async()


def mcp(
    config: ConfigOption = None,
    key_env: Annotated[
        str, typer.Option(help="The environment variable that holds the API key.")
    ] = DEFAULT_KEY_ENV,
) -> None:
    """Serve Jury's MCP tools over stdio; the API key comes from $JURY_API_KEY (--key-env)."""
    settings = settings_for(config)
    key = os.environ.get(key_env) or None
    try:
        anyio.run(serve_stdio, settings, key)
    except JuryError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {exc.detail}")
        raise typer.Exit(2) from None
