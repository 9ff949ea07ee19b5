"""The verdicts being deliberated, so that shutdown lets them finish or interrupts them.

Each verdict runs in a cancel scope of its own. At shutdown the process waits for them up to
a grace period, then cancels the rest: each records itself ``interrupted`` (in a shielded
write) before it unwinds, so no verdict is left ``running`` by a clean shutdown.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

from app.core.errors import UnavailableError


class InFlight:
    """The cancel scopes of the verdicts in progress."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self._idle: anyio.Event | None = None  # set when the last verdict ends

    def __len__(self) -> int:
        return len(self._scopes)

    @contextmanager
    def track(self) -> Iterator[anyio.CancelScope]:
        """Run the body as one in-flight verdict, cancellable by ``drain``."""
        with anyio.CancelScope() as scope:
            if not self._scopes:
                self._idle = anyio.Event()
            self._scopes.add(scope)
            try:
                yield scope
            finally:
                self._scopes.discard(scope)
                if not self._scopes and self._idle is not None:
                    self._idle.set()

    async def drain(self, grace_s: float, *, settle_s: float = 10.0) -> int:
        """Wait up to ``grace_s`` for every verdict, then interrupt the rest; return how many.

        ``settle_s`` bounds the wait for the interrupted ones to record themselves.
        """
        await self._wait(grace_s)
        late = list(self._scopes)
        for scope in late:
            scope.cancel()
        await self._wait(settle_s)
        return len(late)

    async def _wait(self, timeout_s: float) -> None:
        if not self._scopes or self._idle is None:
            return
        with anyio.move_on_after(timeout_s):
            await self._idle.wait()


@contextmanager
def shielded_until(bound: float = math.inf) -> Iterator[None]:
    """Shield the body from cancellation (shutdown's), but not past ``bound`` (anyio time).

    A verdict's record writes run to their end when shutdown interrupts it; a database that
    does not answer must still not hold the request past its deadline. Cut short by ``bound``,
    the body raises ``UnavailableError``: the caller must not go on as if it were stored.
    """
    with anyio.CancelScope(shield=True, deadline=bound) as scope:
        yield
    if scope.cancelled_caught:
        raise UnavailableError("database unavailable: no answer within the verdict's deadline")
