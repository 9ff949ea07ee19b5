"""``jury serve --workers``: the worker counts it refuses, and what every worker process reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.cli.serve import worker_environment
from app.core.settings import Settings
from tests.builders import SCRIPTED_CONFIG


@pytest.fixture
def runner(sqlite_database: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Return a runner on this test's database, with no Redis configured."""
    monkeypatch.setenv("JURY_DATABASE_URL", sqlite_database)
    monkeypatch.setenv("JURY_AUTO_MIGRATE", "false")
    monkeypatch.delenv("JURY_REDIS_URL", raising=False)
    return CliRunner()


def serve(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["serve", "--config", str(SCRIPTED_CONFIG), *args])
    return result.exit_code, " ".join(result.output.split())


def test_two_workers_without_redis_are_refused_naming_the_setting(runner: CliRunner) -> None:
    code, output = serve(runner, "--workers", "2")

    assert code == 2
    assert "--workers 2 needs JURY_REDIS_URL" in output
    assert "idempotency keys, rate limits, SSE progress and the verdict queue" in output


def test_zero_workers_are_refused(runner: CliRunner) -> None:
    code, output = serve(runner, "--workers", "0")

    assert code == 2
    assert "--workers must be at least 1, not 0" in output


def test_every_worker_reads_this_config_and_does_not_migrate_again(tmp_path: Path) -> None:
    config = tmp_path / "panel.yaml"
    config.write_text(SCRIPTED_CONFIG.read_text())

    environment = worker_environment(Settings(config=config))

    assert environment == {"JURY_CONFIG": str(config.resolve()), "JURY_AUTO_MIGRATE": "false"}
