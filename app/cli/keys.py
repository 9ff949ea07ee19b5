"""``jury keys …``: create, list and revoke API keys; and the bind check of ``jury serve``."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import anyio
import typer
from rich.table import Table

from app.cli.context import console, errors, parsed
from app.core.db import about, create_engine, create_sessionmaker, session_scope
from app.core.errors import JuryError, UnavailableError
from app.core.settings import Settings
from app.migrations.migrate import upgrade
from app.security.models import Role
from app.security.repository import KeyRepository
from app.security.schemas import KeyCreate
from app.security.service import KeyService, keys_required

T = TypeVar("T")

keys_app = typer.Typer(help="API keys and their roles.", no_args_is_help=True)


def run_with_keys(settings: Settings, work: Callable[[KeyService], Awaitable[T]]) -> T:
    """Run ``work`` in one unit of work on the database; Jury errors become a clean exit."""

    async def main() -> T:
        url = settings.resolved_database_url()
        if settings.auto_migrate:
            await upgrade(url)
        engine = create_engine(url, timeout_s=settings.database_timeout_s)
        try:
            with about("jury keys"):
                async with session_scope(create_sessionmaker(engine)) as session:
                    return await work(KeyService(session))
        finally:
            await engine.dispose()

    try:
        return anyio.run(main)
    except JuryError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {exc.detail}")
        raise typer.Exit(2) from None


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    name: Annotated[str, typer.Option(help="Who holds it; recorded as the actor of its steps.")],
) -> None:
    """Create a key and print it once, alone on the last line."""
    body = parsed(KeyCreate, name=name, role=role)
    created = run_with_keys(Settings(), lambda keys: keys.create(body))
    console.print(f"created key {created.id} '{created.name}' ({created.role}), {created.prefix}…")
    console.print("Store it now: Jury keeps only its hash and cannot show it again.")
    typer.echo(created.key)


@keys_app.command("list")
def keys_list() -> None:
    """List every key by prefix, revoked ones included."""
    keys = run_with_keys(Settings(), lambda service: service.list())
    table = Table("id", "name", "role", "prefix", "created", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.role.value,
            key.prefix,
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    console.print(table)
    if not keys:
        console.print("no key: Jury runs in local mode (no authentication, loopback only)")
    elif not any(key.revoked_at is None for key in keys):
        console.print(
            "no active key: every request is refused until a key is created; local mode "
            "returns only with JURY_REOPEN_LOCAL_MODE=true (`jury serve --reopen-local-mode`)"
        )


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's name or id.")],
) -> None:
    """Revoke a key; requests with it are refused from now on."""
    revoked = run_with_keys(Settings(), lambda service: service.revoke(key))
    console.print(f"revoked key {revoked.id} '{revoked.name}' ({revoked.role})")


def is_loopback(host: str) -> bool:
    """Return whether ``host`` names a loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _keys_exist(settings: Settings) -> bool:
    engine = create_engine(settings.resolved_database_url(), timeout_s=settings.database_timeout_s)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            return await keys_required(
                KeyRepository(session), reopen_local=settings.reopen_local_mode
            )
    finally:
        await engine.dispose()


def serving_mode(settings: Settings, host: str) -> str:
    """Say how ``jury serve`` will authenticate, or raise ``typer.Exit`` if ``host`` is unsafe.

    With no API key Jury authenticates nobody, so it listens on loopback only.
    """
    if settings.require_api_keys:
        return "API keys required (JURY_REQUIRE_API_KEYS)"
    try:
        keys = anyio.run(_keys_exist, settings)
        why = "no API key exists"
    except UnavailableError as exc:
        # No database, or no table yet: no key can exist there.
        keys, why = False, f"no API key found ({exc.detail})"
    if keys:
        return "API keys required"
    if not is_loopback(host):
        errors.print(
            f"[bold red]refusing to serve on {host}[/]: {why}, so Jury runs in local mode "
            "without authentication and listens on 127.0.0.1 only. Create a key with "
            "`jury keys create --role admin --name NAME` (or set JURY_REQUIRE_API_KEYS=true) "
            "to serve on other interfaces."
        )
        raise typer.Exit(2)
    return f"local mode: {why}, requests are not authenticated; listening on {host} only"
