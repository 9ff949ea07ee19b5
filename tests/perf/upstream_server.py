"""Run the fake upstream inside a test's event loop, on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eval.perf.upstream import FakeUpstream, Latency, State


@asynccontextmanager
async def fake_upstream(latency_ms: float = 0.0) -> AsyncIterator[str]:
    """Serve the fake upstream for the block; yield its ``/v1`` base URL."""
    state = State(latency=Latency(median_ms=latency_ms))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeUpstream(state), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()
