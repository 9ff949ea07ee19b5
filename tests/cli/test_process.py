"""``run_to_exit``: a teardown that a library's task hangs still ends the process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

from app.cli.process import run_to_exit
from tests.workers import REPO_ROOT

# The shape of the hang: a task that, cancelled, awaits a future nothing will ever resolve
# (SQLAlchemy's shielded aiosqlite close whose worker thread has already stopped).
STUBBORN = textwrap.dedent(
    """
    import asyncio, logging
    from app.cli.process import run_to_exit

    async def stubborn_close():
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await asyncio.get_running_loop().create_future()

    async def main():
        asyncio.get_running_loop().create_task(stubborn_close())
        await asyncio.sleep(0.1)
        return "shut down"

    logging.basicConfig(level="INFO")
    print(run_to_exit(main, linger_s=0.5), flush=True)
    """
)


def test_a_task_that_survives_cancellation_does_not_hold_the_process() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", STUBBORN],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # without the bound this would never return
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    assert "exiting anyway" in finished.stderr
    assert "stubborn_close" in finished.stderr


def test_a_clean_teardown_returns_the_result_and_disarms_the_bound() -> None:
    async def main() -> str:
        await asyncio.sleep(0)
        return "done"

    assert run_to_exit(main, linger_s=0.5) == "done"
    assert not [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)]
