"""Run a long-lived command's event loop, and bound the process's exit once it has returned.

When the command's coroutine returns, Jury's own shutdown is complete: verdicts in progress are
recorded or released, the record writer has committed, the engine is disposed. What remains is
the loop cancelling whatever tasks are left. A library
task that survives its cancellation hangs that teardown forever: SQLAlchemy closes an
invalidated aiosqlite connection in a shielded task, and when a cancellation races it, the task
ends up awaiting a worker thread that has already stopped (sqlalchemy#13039; seen here as a
``jury worker`` that never exited after SIGTERM). So the teardown gets ``EXIT_LINGER_S``; past
that the process logs what it left and exits anyway, with the code it would have had.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger("jury.process")

# Long enough for any well-behaved teardown (cancelled tasks unwind in milliseconds).
EXIT_LINGER_S = 10.0

T = TypeVar("T")


def run_to_exit(
    main: Callable[[], Coroutine[Any, Any, T]], *, linger_s: float = EXIT_LINGER_S
) -> T:
    """Run ``main`` on a new event loop; once it has ended, tear the loop down within ``linger_s``.

    The bound is disarmed when the teardown ends: an in-process caller goes on unharmed.
    """
    runner = asyncio.Runner()
    code = 1
    try:
        result = runner.run(main())
        code = 0
    finally:
        timer = threading.Timer(linger_s, _force_exit, args=(linger_s, runner.get_loop(), code))
        timer.daemon = True
        timer.start()
        try:
            runner.close()
        finally:
            timer.cancel()
            timer.join()
    return result


def _force_exit(linger_s: float, loop: asyncio.AbstractEventLoop, code: int) -> None:
    logger.warning(
        "shutdown: still tearing down %.0f s after Jury's own shutdown ended; exiting anyway. "
        "Left behind: %s",
        linger_s,
        "; ".join(_leftovers(loop)) or "(could not list the tasks)",
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(code)


def _leftovers(loop: asyncio.AbstractEventLoop) -> list[str]:
    try:
        return [repr(task.get_coro()) for task in asyncio.all_tasks(loop)]
    except RuntimeError:  # read from another thread while the set changed: say nothing
        return []
