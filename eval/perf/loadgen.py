"""An open-loop load generator: send at planned times, whatever the responses do.

A closed loop (send the next request when one returns) slows down exactly when the server
does and hides its queueing ("coordinated omission"). Here request ``i`` of a step at ``rate``
per second is planned at ``i / rate`` seconds and its latency is measured from that planned
time, so a late send (the generator itself starved of CPU) counts against the latency too;
``lag_ms`` says how late each send was.

The client is aiohttp's: measured here, a loopback round trip costs it 0.4 ms where httpx
took 1.5 ms, and that time would count as Jury's overhead.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from eval.perf.stats import critical_path_ms, upstream_calls

# Long enough for the question to be realistic, short enough not to measure prompt size.
REQUEST_BODY: dict[str, Any] = {
    "question": "Deploy release 4.2 to production now?",
    "context": (
        "diff --git a/app/billing.py b/app/billing.py\n"
        "@@ -41,7 +41,9 @@ def charge(customer, amount):\n"
        "-    if amount <= 0:\n"
        "+    if amount <= 0 or customer.suspended:\n"
        "         raise ValueError('nothing to charge')\n"
        "+    audit.log('charge', customer.id, amount)\n"
    )
    * 4,
    "options": ["approve", "reject"],
    "category": "default",
}


# Shorter than the keep-alive of the servers measured (uvicorn: 5 s).
KEEPALIVE_S = 2.0


@dataclass(slots=True)
class Outcome:
    """What one request produced, as the sender reports it."""

    ok: bool
    error: str | None = None
    critical_path_ms: float | None = None
    server_latency_ms: float | None = None
    calls: int = 0
    # When the whole answer had arrived (the event loop's clock): the latency ends there, not
    # after the generator has parsed and checked it.
    received_at: float | None = None


@dataclass(slots=True)
class Sample:
    """One request's timing (milliseconds from its planned send time) and outcome."""

    planned_s: float
    lag_ms: float
    latency_ms: float
    outcome: Outcome

    @property
    def overhead_ms(self) -> float | None:
        """Return the latency beyond the upstream critical path, when it is known."""
        if not self.outcome.ok or self.outcome.critical_path_ms is None:
            return None
        return self.latency_ms - self.outcome.critical_path_ms


@dataclass(slots=True)
class Step:
    """The samples of one rate step and how long it really took."""

    rate: float
    duration_s: float
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    unfinished: int = 0

    @property
    def errors(self) -> int:
        """Return the failed and the unfinished requests."""
        return sum(1 for s in self.samples if not s.outcome.ok) + self.unfinished

    @property
    def completed(self) -> int:
        """Return the successful requests."""
        return sum(1 for s in self.samples if s.outcome.ok)


Send = Callable[[], Awaitable[Outcome]]


async def open_loop(send: Send, *, rate: float, duration_s: float, drain_s: float) -> Step:
    """Send ``rate`` requests per second for ``duration_s``, then wait ``drain_s`` at most."""
    step = Step(rate=rate, duration_s=duration_s)
    total = max(1, round(rate * duration_s))
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    start = loop.time()

    async def one(planned: float) -> None:
        sent = loop.time()
        try:
            outcome = await send()
        except Exception as exc:  # the generator records every failure, whatever it is
            outcome = Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:200])
        done = outcome.received_at or loop.time()
        step.samples.append(
            Sample(
                planned_s=planned - start,
                lag_ms=(sent - planned) * 1000,
                latency_ms=(done - planned) * 1000,
                outcome=outcome,
            )
        )

    for index in range(total):
        planned = start + index / rate
        delay = planned - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(one(planned))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=drain_s)
        for task in pending:
            task.cancel()
        step.unfinished = len(pending)
    step.wall_s = loop.time() - start
    return step


def verdict_sender(client: aiohttp.ClientSession, url: str) -> Send:
    """Return a sender that asks ``POST /verdict`` and reads the critical path from the answer."""
    body = json.dumps(REQUEST_BODY).encode()
    headers = {"Content-Type": "application/json"}

    async def send() -> Outcome:
        async with client.post(url, data=body, headers=headers) as response:
            content = await response.read()
            status = response.status
        received_at = asyncio.get_running_loop().time()
        if status != 200:
            return Outcome(
                ok=False, error=f"HTTP {status}: {content[:150].decode(errors='replace')}"
            )
        verdict = json.loads(content)
        problem = shape_problem(verdict)
        return Outcome(
            ok=problem is None,
            error=problem,
            critical_path_ms=critical_path_ms(verdict),
            server_latency_ms=float(verdict.get("latency_ms") or 0.0),
            calls=upstream_calls(verdict),
            received_at=received_at,
        )

    return send


def shape_problem(verdict: dict[str, Any]) -> str | None:
    """Return why a verdict is not the benchmark's 2-round, 7-call one, or None."""
    if verdict.get("failures"):
        kinds = sorted({f.get("kind", "?") for f in verdict["failures"]})
        return f"failed calls: {', '.join(kinds)}"
    if len(verdict.get("rounds") or []) != 2 or upstream_calls(verdict) != 7:
        return f"{len(verdict.get('rounds') or [])} rounds, {upstream_calls(verdict)} calls"
    return None


def client_for(base_url: str, *, connections: int = 1024) -> aiohttp.ClientSession:
    """Return a loopback client with a bounded pool, generous timeouts and no env proxies."""
    return aiohttp.ClientSession(
        base_url=base_url,
        # Idle connections are dropped before uvicorn's 5 s keep-alive closes them: reusing one
        # the server has just closed is a reset (seen after the pool's idle pauses).
        connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=KEEPALIVE_S),
        timeout=aiohttp.ClientTimeout(total=120.0, connect=10.0),
        trust_env=False,
    )


def monotonic_ms() -> float:
    """Return a monotonic clock reading in milliseconds."""
    return time.perf_counter() * 1000
