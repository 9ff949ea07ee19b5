"""``jury serve``: loopback only in local mode, any interface once keys exist; graceful stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.security.models import Role
from tests.builders import SCRIPTED_CONFIG
from tests.security.keys import add_key

CONFIG = ["--config", str(SCRIPTED_CONFIG)]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, sqlite_database: str) -> list[dict[str, Any]]:
    """Record what ``uvicorn.run`` is asked to do instead of serving."""
    monkeypatch.setenv("JURY_DATABASE_URL", sqlite_database)
    monkeypatch.setenv("JURY_AUTO_MIGRATE", "false")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    return calls


def flat(text: str) -> str:
    """Join the words of rich's output, whatever the terminal width wrapped."""
    return " ".join(text.split())


def test_local_mode_serves_on_loopback_and_says_so(served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli, ["serve", *CONFIG])

    assert result.exit_code == 0, result.output
    assert "local mode: no API key exists, requests are not authenticated" in flat(result.stdout)
    assert "listening on 127.0.0.1 only" in flat(result.stdout)
    assert served == [
        {
            "host": "127.0.0.1",
            "port": 8000,
            "log_level": "info",
            "access_log": False,
            "timeout_graceful_shutdown": 30,
        }
    ]


def test_local_mode_refuses_another_interface(served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli, ["serve", *CONFIG, "--host", "0.0.0.0"])

    assert result.exit_code == 2
    message = flat(result.output)
    assert "refusing to serve on 0.0.0.0: no API key exists" in message
    assert "jury keys create --role admin --name NAME" in message
    assert served == []


def test_with_a_key_any_interface_is_allowed(
    served: list[dict[str, Any]], sqlite_database: str
) -> None:
    anyio.run(add_key, sqlite_database, "ops", Role.ADMIN)

    result = CliRunner().invoke(cli, ["serve", *CONFIG, "--host", "0.0.0.0", "--port", "9000"])

    assert result.exit_code == 0, result.output
    assert "API keys required" in result.stdout
    assert [(call["host"], call["port"]) for call in served] == [("0.0.0.0", 9000)]


def test_with_every_key_revoked_keys_stay_required_unless_reopened(
    served: list[dict[str, Any]], sqlite_database: str
) -> None:
    anyio.run(add_key, sqlite_database, "ops", Role.ADMIN)
    revoked = CliRunner().invoke(cli, ["keys", "revoke", "ops"])

    closed = CliRunner().invoke(cli, ["serve", *CONFIG, "--host", "0.0.0.0"])
    refused = CliRunner().invoke(
        cli, ["serve", *CONFIG, "--host", "0.0.0.0", "--reopen-local-mode"]
    )
    reopened = CliRunner().invoke(cli, ["serve", *CONFIG, "--reopen-local-mode"])

    assert revoked.exit_code == 0, revoked.output
    assert closed.exit_code == 0, closed.output
    assert "API keys required" in closed.stdout
    # Reopened, it is local mode again: loopback only.
    assert refused.exit_code == 2
    assert reopened.exit_code == 0, reopened.output
    assert "local mode: no API key exists" in flat(reopened.stdout)
    assert [call["host"] for call in served] == ["0.0.0.0", "127.0.0.1"]


def test_required_keys_allow_another_interface_and_the_grace_is_configurable(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JURY_REQUIRE_API_KEYS", "true")
    monkeypatch.setenv("JURY_SHUTDOWN_GRACE_S", "4.5")

    result = CliRunner().invoke(cli, ["serve", *CONFIG, "--host", "::"])

    assert result.exit_code == 0, result.output
    assert [(c["host"], c["timeout_graceful_shutdown"]) for c in served] == [("::", 5)]


def test_a_database_without_tables_means_local_mode(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JURY_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")

    refused = CliRunner().invoke(cli, ["serve", *CONFIG, "--host", "0.0.0.0"])
    local = CliRunner().invoke(cli, ["serve", *CONFIG])

    assert refused.exit_code == 2
    assert "refusing to serve on 0.0.0.0: no API key found (database unavailable" in flat(
        refused.output
    )
    assert local.exit_code == 0, local.output
    assert [call["host"] for call in served] == ["127.0.0.1"]
