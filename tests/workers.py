"""Workers for the asynchronous-verdict tests: in this process, or as ``jury worker`` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio

from app.cli.worker import run_worker
from app.core.config import JuryConfig
from app.core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def worker_in_process(
    settings: Settings, config: JuryConfig | None = None
) -> AsyncIterator[None]:
    """Run a worker (a runtime of its own, on ``settings``) in a task of this event loop."""
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: run_worker(settings, config=config, stop=stop))
        try:
            yield
        finally:
            stop.set()


@contextmanager
def worker_process(environ: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``jury worker`` as a process of its own; it is killed if still running at the end."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", "from app.cli.main import main; main()", "worker"],
            cwd=REPO_ROOT,
            env={**os.environ, **environ},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
