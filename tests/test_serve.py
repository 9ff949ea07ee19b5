"""``jury serve``: the worker counts it refuses, what every worker reads, and how one exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.cli.serve import worker_environment
from app.core.settings import Settings
from tests.builders import SCRIPTED_CONFIG
from tests.workers import REPO_ROOT


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


# uvicorn's exit code for a server that never started (uvicorn.main.STARTUP_FAILURE).
UVICORN_STARTUP_FAILURE = 3


def _serve_process(port: int, sqlite_database: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from app.cli.main import main; main()"]
    environ = {"JURY_DATABASE_URL": sqlite_database, "JURY_REDIS_URL": ""}
    return subprocess.Popen(
        [*command, "serve", "--config", str(SCRIPTED_CONFIG), "--port", str(port)],
        cwd=REPO_ROOT,
        env={**os.environ, **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_one_worker_shuts_down_its_application_on_sigterm(sqlite_database: str) -> None:
    port = _free_port()
    with _serve_process(port, sqlite_database) as process:
        try:
            deadline = time.monotonic() + 120  # a hang guard, not a speed goal
            while True:
                assert process.poll() is None, "jury serve exited before it answered"
                assert time.monotonic() < deadline, "jury serve never answered /healthz"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()

    # The lifespan's shutdown ran to its end; then uvicorn re-raises the signal it caught, so the
    # process ends by SIGTERM there, before the event loop's own teardown could hang it.
    assert "Application shutdown complete" in stderr.decode()
    assert process.returncode == -signal.SIGTERM, stderr.decode()


def test_one_worker_on_a_taken_port_exits_with_uvicorns_startup_failure(
    sqlite_database: str,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with _serve_process(taken.getsockname()[1], sqlite_database) as process:
            _, stderr = process.communicate(timeout=120)

    assert process.returncode == UVICORN_STARTUP_FAILURE, stderr.decode()
    assert "address already in use" in stderr.decode().lower()
