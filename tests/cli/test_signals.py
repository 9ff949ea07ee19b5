"""SIGTERM ends a ``jury`` command only after its runtime's clean-up has run and been recorded.

Run from the suite, which CI may start in the background: then SIGINT is ignored (a shell
without job control does that), so the handling must not go through SIGINT.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.verdicts.test_async import slow_panel_file
from tests.workers import REPO_ROOT


def verdict_statuses(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        return [row[0] for row in connection.execute("SELECT status FROM verdicts")]


def wait_for_a_running_verdict(database: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a hang guard, not a speed goal
    while verdict_statuses(database) != ["running"]:
        assert process.poll() is None, "jury ask ended before its verdict started"
        assert time.monotonic() < deadline, "no verdict started"
        time.sleep(0.1)


def test_sigterm_mid_verdict_records_it_as_interrupted(
    sqlite_database: str, tmp_path: Path
) -> None:
    database = Path(sqlite_database.split(":///", 1)[1])
    # Jurors that take 60 s: the signal lands while they deliberate, never after the record.
    config = slow_panel_file(tmp_path / "slow.yaml", juror_s=60)
    environ = {"JURY_DATABASE_URL": sqlite_database, "JURY_AUTO_MIGRATE": "false"}
    command = [sys.executable, "-c", "from app.cli.main import main; main()"]
    with subprocess.Popen(
        [*command, "ask", "Ship release 4.2?", "--config", str(config), "--json"],
        cwd=REPO_ROOT,
        env={**os.environ, **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            wait_for_a_running_verdict(database, process)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()

    # Not killed where it stood (-SIGTERM): the runtime closed, then the command exited 143.
    assert process.returncode == 128 + signal.SIGTERM, stderr.decode()
    assert verdict_statuses(database) == ["interrupted"]
