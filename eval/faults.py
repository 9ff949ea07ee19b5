"""``jury eval faults``: the fault gates of issue 13, against real ``jury serve`` processes.

Each gate starts its own ``jury serve`` (and ``jury worker``, Redis, a TCP relay or a fake
upstream where it needs one) on ``config/scripted.yaml`` with a fresh database, does to it what
an outage or an attacker would, and returns one ``GateRow``: requests sent, their answers by
class, the rows left ``running``/``queued`` at the end, the longest request against its bound,
and whether the gate's rule held. ``render`` writes the rows as a markdown table.

The gates (names as ``--gates`` takes them):

- ``pg-frozen``: PostgreSQL frozen mid-run (a relay SIGSTOPped): every verdict ends within its
  deadline plus one database timeout, ``/readyz`` within a second, no row left after the sweep;
- ``pg-killed``: every PostgreSQL connection of the server terminated mid-verdict, twice;
- ``redis-worker``: Redis frozen, then stopped and started empty, under a running
  ``jury worker``: every asynchronous verdict ends, the worker never exits;
- ``kill9``: ``jury serve`` killed (SIGKILL) with sync and async verdicts in flight, then
  started again: the sweeper leaves no row running, the async ones end with a terminal event;
- ``idempotency``: one ``Idempotency-Key`` sent concurrently to two servers while Redis is
  frozen: exactly one verdict;
- ``csrf-host``: cross-origin review forms are refused, a foreign Host header is refused and
  never reflected;
- ``canary``: an upstream that echoes the juror's key (a canary) in its errors: the canary is
  in no log line, database row, response or metric.

The PostgreSQL gates need a server (``--postgres-url``, a database on it the gates may create
databases beside); without one they are skipped, and the idempotency race runs on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiohttp import web
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.settings import REPO_CONFIG_DIR
from eval.chat_upstreams import chat_upstream
from eval.perf import procs
from eval.redis_servers import RedisServer, redis_server
from eval.tcp_relay import relay

SCRIPTED = REPO_CONFIG_DIR / "scripted.yaml"
DATABASE_TIMEOUT_S = 1.0
SHUTDOWN_GRACE_S = 2.0
REDIS_TIMEOUT_S = 0.3
# This 2-core machine is shared: a bound is the stated one plus this scheduling margin.
MARGIN_S = 1.0
READY_BOUND_S = 1.0
UNFINISHED = "SELECT count(*) FROM verdicts WHERE status IN ('running', 'queued')"
INTERRUPTED = "SELECT count(*) FROM verdicts WHERE status = 'interrupted'"
TERMINAL = ("verdict", "no_quorum", "failed")
ASYNC = {"Prefer": "respond-async"}
QUESTION = "Ship release 4.2 to production?"


@dataclass(slots=True)
class GateRow:
    """What one gate sent, what came back, and whether its rule held."""

    gate: str
    rule: str
    requests: int = 0
    ok: int = 0
    client_error: int = 0
    unavailable: int = 0
    other_5xx: int = 0
    no_answer: int = 0
    left_unfinished: int | None = None
    longest_s: float = 0.0
    bound_s: float | None = None
    passed: bool = False
    skipped: bool = False
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def count(self, status: int | None, elapsed_s: float) -> None:
        """Count one request: its status class (None: no answer) and how long it took."""
        self.requests += 1
        self.longest_s = max(self.longest_s, elapsed_s)
        if status is None:
            self.no_answer += 1
        elif status == 503:
            self.unavailable += 1
        elif status >= 500:
            self.other_5xx += 1
        elif status >= 400:
            self.client_error += 1
        else:
            self.ok += 1

    def within_bound(self) -> bool:
        """Return whether the longest request ended within the bound (with the margin)."""
        return self.bound_s is None or self.longest_s <= self.bound_s + MARGIN_S

    def note(self, line: str) -> None:
        """Add a line to the gate's notes."""
        self.notes.append(line)


@dataclass(frozen=True, slots=True)
class Lab:
    """Where the gates run: a work folder for configs, databases and logs, and PostgreSQL."""

    work: Path
    postgres_url: str | None = None

    @property
    def logs(self) -> Path:
        """Return the folder of the servers' logs."""
        path = self.work / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(slots=True)
class Server:
    """A running ``jury serve`` or ``jury worker``."""

    managed: procs.Managed
    url: str

    def log_text(self) -> str:
        """Return everything the process wrote."""
        return self.managed.log.read_text(errors="replace")


# --- processes ------------------------------------------------------------------------------


def panel_config(
    folder: Path, *, latency_ms: float, extra_jurors: Sequence[dict[str, Any]] = ()
) -> Path:
    """Write config/scripted.yaml with every step taking ``latency_ms``, plus extra jurors."""
    data = yaml.safe_load(SCRIPTED.read_text())
    for spec in (*data["jurors"], *data["judges"]):
        for step in spec["script"]["rounds"]:
            step["latency_ms"] = latency_ms
    for juror in extra_jurors:
        data["jurors"].append(dict(juror))
        data["panels"]["default"]["jurors"].append(juror["name"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"scripted-{int(latency_ms)}ms{'-extra' if extra_jurors else ''}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def server_env(database_url: str, redis_url: str = "", **extra: str) -> dict[str, str]:
    """Return a gate server's environment: short timeouts and sweeps, so the gates end soon."""
    return {
        "JURY_DATABASE_URL": database_url,
        "JURY_REDIS_URL": redis_url,
        "JURY_REQUIRE_API_KEYS": "false",
        "JURY_DATABASE_TIMEOUT_S": str(DATABASE_TIMEOUT_S),
        "JURY_SHUTDOWN_GRACE_S": str(SHUTDOWN_GRACE_S),
        "JURY_REDIS_TIMEOUT_S": str(REDIS_TIMEOUT_S),
        "JURY_REDIS_RETRY_AFTER_S": "1",
        "JURY_SWEEP_INTERVAL_S": "1",
        "JURY_QUEUE_REDELIVERY_S": "5",
        "JURY_WORKER_LEASE_S": "3",
        "JURY_RATE_LIMIT_PER_MINUTE": "0",
        **extra,
    }


async def start_serve(lab: Lab, name: str, config: Path, env: dict[str, str]) -> Server:
    """Start ``jury serve`` on a free port and wait until it answers /healthz."""
    port = procs.free_port()
    argv = procs.jury_command("serve", "--config", str(config), "--port", str(port))
    managed = procs.start(name, argv, log=lab.logs / f"{name}.log", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(procs.wait_healthy, managed, f"{url}/healthz")
    except BaseException:
        managed.stop()
        raise
    return Server(managed=managed, url=url)


async def start_worker(lab: Lab, name: str, config: Path, env: dict[str, str]) -> Server:
    """Start ``jury worker`` and wait until it says it is ready."""
    argv = procs.jury_command("worker", "--config", str(config))
    managed = procs.start(name, argv, log=lab.logs / f"{name}.log", env=env)
    deadline = time.monotonic() + 120
    while "worker ready" not in managed.tail(200):
        if not managed.alive() or time.monotonic() > deadline:
            managed.stop()
            raise RuntimeError(f"{name} did not start:\n{managed.tail()}")
        await asyncio.sleep(0.2)
    return Server(managed=managed, url="")


@contextlib.asynccontextmanager
async def serving(starting: Awaitable[Server]) -> AsyncIterator[Server]:
    """Stop the server when the block ends, however it ends."""
    server = await starting
    try:
        yield server
    finally:
        await asyncio.to_thread(server.managed.stop)


@contextlib.asynccontextmanager
async def served(
    lab: Lab, name: str, config: Path, env: dict[str, str]
) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    """Start ``jury serve`` and yield it with a client; both closed when the block ends."""
    async with serving(start_serve(lab, name, config, env)) as server, client_for(server) as client:
        yield server, client


def client_for(server: Server, timeout_s: float = 120.0) -> httpx.AsyncClient:
    """Return a client of ``server``; the long timeout lets a hang show as a long request."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=server.url, timeout=timeout_s, trust_env=False, limits=limits)


async def send(
    row: GateRow, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response | None:
    """Send one request, count it in ``row``; None when no answer came (connection lost)."""
    started = time.monotonic()
    try:
        response: httpx.Response | None = await client.request(method, url, **kwargs)
    except httpx.HTTPError:
        response = None
    row.count(response.status_code if response is not None else None, time.monotonic() - started)
    return response


async def hammer(
    row: GateRow, client: httpx.AsyncClient, body: dict[str, Any], stop: asyncio.Event, n: int
) -> None:
    """Keep ``n`` synchronous verdicts in flight until ``stop`` is set."""

    async def one() -> None:
        while not stop.is_set():
            await send(row, client, "POST", "/verdict", json=body)

    await asyncio.gather(*(one() for _ in range(n)))


# --- databases -------------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    """Return the async SQLAlchemy URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def fresh_database(lab: Lab, name: str, *, postgres: bool) -> AsyncIterator[str]:
    """Yield the URL of an empty database of the gate's own, dropped afterwards."""
    if not postgres or lab.postgres_url is None:
        path = lab.work / f"{name}.db"
        path.unlink(missing_ok=True)
        yield sqlite_url(path)
        return
    database = f"jury_gate_{name.replace('-', '_')}_{os.getpid()}"
    await _admin(lab.postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await _admin(lab.postgres_url, f'CREATE DATABASE "{database}"')
    try:
        yield (
            make_url(lab.postgres_url).set(database=database).render_as_string(hide_password=False)
        )
    finally:
        await _admin(lab.postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


async def scalar(url: str, statement: str) -> int:
    """Return the integer one SQL statement selects."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text(statement))).scalar_one())
    finally:
        await engine.dispose()


async def left_after_sweep(url: str, within_s: float) -> int:
    """Wait up to ``within_s`` for the sweeper to end every unfinished row; return what is left."""
    deadline = time.monotonic() + within_s
    while True:
        left = await scalar(url, UNFINISHED)
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


def sweep_bound_s(deadline_s: float) -> float:
    """Return how long after its start the sweeper may take to end an abandoned verdict."""
    # Past the deadline, the shutdown grace and one database timeout; then one sweep interval.
    return deadline_s + SHUTDOWN_GRACE_S + DATABASE_TIMEOUT_S + 1.0


async def database_text(url: str) -> str:
    """Return every row of every table as text (for a grep)."""
    engine = create_async_engine(url)
    lines: list[str] = []
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            for table in tables:
                result = await connection.execute(text(f'SELECT * FROM "{table}"'))
                lines += [json.dumps(list(row), default=str) for row in result]
    finally:
        await engine.dispose()
    return "\n".join(lines)


# --- async verdicts --------------------------------------------------------------------------


async def submit_async(row: GateRow, client: httpx.AsyncClient) -> str | None:
    """Ask for an asynchronous verdict; return its id if it was accepted."""
    response = await send(
        row, client, "POST", "/verdict", json={"question": QUESTION}, headers=ASYNC
    )
    if response is not None and response.status_code == 202:
        return str(response.json()["id"])
    return None


async def statuses(
    client: httpx.AsyncClient, ids: Sequence[str], within_s: float
) -> dict[str, str]:
    """Poll the verdicts until none is queued or running (or ``within_s`` passes)."""
    deadline = time.monotonic() + within_s
    seen: dict[str, str] = {}
    while True:
        for verdict_id in ids:
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                seen[verdict_id] = str(
                    (await client.get(f"/verdicts/{verdict_id}")).json()["status"]
                )
        unfinished = [v for v in ids if seen.get(v) in (None, "queued", "running")]
        if not unfinished or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.5)


async def last_event(client: httpx.AsyncClient, verdict_id: str) -> str | None:
    """Return the type of the last event of a verdict's stream, reading it for at most 10 s."""
    last: str | None = None
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(10):
            async with client.stream("GET", f"/verdicts/{verdict_id}/events") as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        last = line.removeprefix("event: ").strip()
                        if last in TERMINAL:
                            return last
    return last


# --- the gates -------------------------------------------------------------------------------


async def gate_pg_frozen(lab: Lab) -> GateRow:
    """PostgreSQL frozen (its relay SIGSTOPped) for 8 s while sync verdicts run."""
    deadline_s = 3.0
    row = GateRow(
        "pg-frozen",
        f"every verdict (deadline_s {deadline_s:g}) ends within deadline + one database "
        f"timeout; /readyz within {READY_BOUND_S:g} s; 0 rows left after the sweep",
        bound_s=deadline_s + DATABASE_TIMEOUT_S,
    )
    if lab.postgres_url is None:
        return _skipped(row)
    async with fresh_database(lab, row.gate, postgres=True) as url:
        target = make_url(url)
        with relay(target.host or "127.0.0.1", target.port or 5432) as tcp:
            behind = target.set(host="127.0.0.1", port=tcp.port).render_as_string(
                hide_password=False
            )
            config = panel_config(lab.work, latency_ms=300)
            async with served(lab, row.gate, config, server_env(behind)) as (_server, client):
                stop = asyncio.Event()
                body = {"question": QUESTION, "deadline_s": deadline_s}
                load = asyncio.create_task(hammer(row, client, body, stop, n=4))
                await asyncio.sleep(2)
                tcp.freeze()
                try:
                    await asyncio.sleep(1)
                    ready = GateRow("readyz", "")
                    await send(ready, client, "GET", "/readyz")
                    await asyncio.sleep(7)
                finally:
                    tcp.thaw()
                await asyncio.sleep(3)
                stop.set()
                await load
                row.left_unfinished = await left_after_sweep(url, sweep_bound_s(deadline_s) + 5)
        interrupted = await scalar(url, INTERRUPTED)
    row.figures.update(readyz_s=round(ready.longest_s, 2), interrupted=interrupted)
    row.note(f"/readyz while frozen: {ready.longest_s:.2f} s (503: {ready.unavailable} of 1)")
    row.note(f"{interrupted} rows the freeze left running were interrupted by the sweeper")
    row.passed = (
        row.within_bound()
        and row.other_5xx == row.no_answer == 0
        and ready.longest_s <= READY_BOUND_S
        and row.left_unfinished == 0
    )
    return row


async def gate_pg_killed(lab: Lab) -> GateRow:
    """Every PostgreSQL connection of the server terminated mid-verdict, twice."""
    deadline_s = 3.0
    row = GateRow(
        "pg-killed",
        "every verdict ends within deadline + one database timeout, answered 2xx or 503; "
        "the next verdicts succeed; 0 rows left after the sweep",
        bound_s=deadline_s + DATABASE_TIMEOUT_S,
    )
    if lab.postgres_url is None:
        return _skipped(row)
    async with fresh_database(lab, row.gate, postgres=True) as url:
        database = make_url(url).database
        kill = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        config = panel_config(lab.work, latency_ms=300)
        async with served(lab, row.gate, config, server_env(url)) as (_server, client):
            stop = asyncio.Event()
            body = {"question": QUESTION, "deadline_s": deadline_s}
            load = asyncio.create_task(hammer(row, client, body, stop, n=4))
            killed = 0
            for _ in range(2):
                await asyncio.sleep(2.5)
                killed += await scalar(lab.postgres_url, kill)
            await asyncio.sleep(2.5)
            stop.set()
            await load
            after = [await send(row, client, "POST", "/verdict", json=body) for _ in range(3)]
            recovered = sum(1 for r in after if r is not None and r.status_code == 200)
            row.left_unfinished = await left_after_sweep(url, sweep_bound_s(deadline_s) + 5)
        interrupted = await scalar(url, INTERRUPTED)
    row.figures.update(connections_killed=killed, recovered=recovered, interrupted=interrupted)
    row.note(
        f"{killed} server connections terminated; {recovered}/3 verdicts right after: 200; "
        f"{interrupted} rows interrupted by the sweeper"
    )
    row.passed = (
        row.within_bound()
        and row.other_5xx == row.no_answer == 0
        and killed > 0
        and recovered == 3
        and row.left_unfinished == 0
    )
    return row


async def gate_redis_worker(lab: Lab) -> GateRow:
    """Redis frozen 3 s, then stopped and started empty, under a running ``jury worker``."""
    row = GateRow(
        "redis-worker",
        "every async verdict ends (completed or a terminal state); the worker never exits; "
        "0 rows left",
    )
    async with fresh_database(lab, row.gate, postgres=False) as url:
        with contextlib.ExitStack() as first_redis:
            redis = first_redis.enter_context(redis_server(lab.work))
            config = panel_config(lab.work, latency_ms=100)
            env = server_env(url, redis.url)
            async with (
                served(lab, row.gate, config, env) as (_server, client),
                serving(start_worker(lab, f"{row.gate}-worker", config, env)) as worker,
            ):
                ids = await _redis_outages(row, client, redis, first_redis)
                with redis_server(lab.work, port=redis.port):
                    await asyncio.sleep(1)
                    ids += await _submit_some(row, client, 3)
                    seen = await statuses(client, ids, within_s=90)
                    worker_alive = worker.managed.alive()
                    # What the worker met and survived: each logged traceback is a Redis error.
                    worker_errors = worker.log_text().count("Traceback")
                    row.left_unfinished = await scalar(url, UNFINISHED)
    ended = sum(1 for v in ids if seen.get(v) not in (None, "queued", "running"))
    completed = sum(1 for v in ids if seen.get(v) == "completed")
    row.figures.update(
        accepted=len(ids),
        ended=ended,
        completed=completed,
        worker_alive=worker_alive,
        worker_errors=worker_errors,
    )
    row.note(
        f"{len(ids)} accepted, {ended} ended ({completed} completed); "
        f"worker alive at the end: {worker_alive}, after {worker_errors} Redis errors in its log"
    )
    row.passed = (
        worker_alive
        and ended == len(ids) == row.requests
        and row.other_5xx == row.no_answer == 0
        and row.left_unfinished == 0
    )
    return row


async def _redis_outages(
    row: GateRow, client: httpx.AsyncClient, redis: RedisServer, owner: contextlib.ExitStack
) -> list[str]:
    """Submit async verdicts before, during and after a 3 s freeze, and with Redis stopped."""
    ids = await _submit_some(row, client, 3)
    redis.pause()
    try:
        ids += await _submit_some(row, client, 3)
        await asyncio.sleep(3)
    finally:
        redis.resume()
    ids += await _submit_some(row, client, 3)
    owner.close()  # stops this Redis; the caller starts another, empty, on its port
    ids += await _submit_some(row, client, 3)
    await asyncio.sleep(2)
    return ids


async def _submit_some(row: GateRow, client: httpx.AsyncClient, n: int) -> list[str]:
    accepted = await asyncio.gather(*(submit_async(row, client) for _ in range(n)))
    return [verdict_id for verdict_id in accepted if verdict_id is not None]


async def gate_kill9(lab: Lab) -> GateRow:
    """``jury serve`` killed (SIGKILL) with 3 sync and 3 async verdicts in flight."""
    deadline_s = 8.0
    row = GateRow(
        "kill9",
        "after a restart and the sweep, 0 rows left running or queued; the async verdicts "
        "completed or failed, each stream ending with a terminal event",
    )
    async with fresh_database(lab, row.gate, postgres=False) as url:
        config = panel_config(lab.work, latency_ms=1500)
        env = server_env(url)
        first = await start_serve(lab, row.gate, config, env)
        try:
            async with client_for(first) as client:
                body = {"question": QUESTION, "deadline_s": deadline_s}
                sync = [
                    asyncio.create_task(send(row, client, "POST", "/verdict", json=body))
                    for _ in range(3)
                ]
                async_ids = await _submit_some(row, client, 3)
                await asyncio.sleep(1)
                first.managed.process.kill()
                await asyncio.gather(*sync)
        finally:
            await asyncio.to_thread(first.managed.stop)
        in_flight = await scalar(url, UNFINISHED)
        async with served(lab, f"{row.gate}-restarted", config, env) as (_second, client):
            row.left_unfinished = await left_after_sweep(url, sweep_bound_s(deadline_s) + 15)
            seen = await statuses(client, async_ids, within_s=30)
            events = [await last_event(client, v) for v in async_ids]
    interrupted = await scalar(url, INTERRUPTED)
    ended = sum(1 for v in async_ids if seen.get(v) in ("completed", "failed", "interrupted"))
    terminal = sum(1 for event in events if event in TERMINAL)
    async_statuses = sorted(seen.get(v, "unknown") for v in async_ids)
    row.figures.update(
        unfinished_at_kill=in_flight,
        interrupted=interrupted,
        async_ended=ended,
        async_statuses=async_statuses,
        terminal=terminal,
    )
    row.note(
        f"{in_flight} rows unfinished at the kill; after the restart {interrupted} interrupted, "
        f"{ended}/{len(async_ids)} async ended ({', '.join(async_statuses)}), "
        f"{terminal} with a terminal event "
        "(the sync requests lose their connection: no answer)"
    )
    row.passed = (
        row.left_unfinished == 0
        and len(async_ids) == 3
        and ended == terminal == 3
        and row.other_5xx == 0
    )
    return row


async def gate_idempotency(lab: Lab) -> GateRow:
    """One Idempotency-Key sent 8 times at once to two servers with Redis frozen."""
    row = GateRow(
        "idempotency",
        "8 concurrent requests with one Idempotency-Key over two servers, Redis frozen: "
        "exactly 1 verdict id and 1 row; the others 409 in progress, replays the same id",
    )
    async with fresh_database(lab, row.gate, postgres=True) as url:
        with redis_server(lab.work) as redis:
            config = panel_config(lab.work, latency_ms=300)
            # The breaker stays open through the race: both servers fall back to the database.
            env = server_env(url, redis.url, JURY_REDIS_RETRY_AFTER_S="300")
            async with (
                serving(start_serve(lab, f"{row.gate}-a", config, env)) as one,
                serving(start_serve(lab, f"{row.gate}-b", config, env)) as two,
                client_for(one) as first,
                client_for(two) as second,
            ):
                for client in (first, second):
                    await client.get("/readyz")  # connections to Redis open before the freeze
                headers = {"Idempotency-Key": "gate-race-1"}
                body = {"question": QUESTION}
                redis.pause()
                try:
                    race = await asyncio.gather(
                        *(
                            send(row, client, "POST", "/verdict", json=body, headers=headers)
                            for client in (first, second)
                            for _ in range(4)
                        )
                    )
                    replays = [
                        await send(row, client, "POST", "/verdict", json=body, headers=headers)
                        for client in (first, second)
                    ]
                finally:
                    redis.resume()
            rows = await scalar(url, "SELECT count(*) FROM verdicts")
            row.left_unfinished = await scalar(url, UNFINISHED)
    ids = {r.json()["id"] for r in race if r is not None and r.status_code == 200}
    in_progress = sum(1 for r in race if r is not None and r.status_code == 409)
    same = all(r is not None and r.status_code == 200 and r.json()["id"] in ids for r in replays)
    row.figures.update(verdict_ids=len(ids), rows=rows, in_progress=in_progress, replays_same=same)
    row.note(
        f"database: {'PostgreSQL' if lab.postgres_url else 'SQLite'}; {len(ids)} verdict id, "
        f"{rows} row, {in_progress} x 409 request_in_progress; replays give the same id: {same}"
    )
    row.passed = len(ids) == 1 and rows == 1 and same and row.other_5xx == row.no_answer == 0
    return row


async def gate_csrf_host(lab: Lab) -> GateRow:
    """Cross-origin review forms and a foreign Host header, on a server in local mode."""
    row = GateRow(
        "csrf-host",
        "every cross-origin or token-less form POST to /review is refused (403), a foreign "
        "Host on the review pages and on the keyless JSON API refused (400), never reflected; "
        "they answer a local Host",
    )
    evil_host = "rebind.evil.example"
    async with fresh_database(lab, row.gate, postgres=False) as url:
        config = panel_config(lab.work, latency_ms=10)
        async with served(lab, row.gate, config, server_env(url)) as (server, client):
            refused, reflected, expected = await _csrf_and_host(row, client, server, evil_host)
            row.left_unfinished = await scalar(url, UNFINISHED)
    row.figures.update(refused=refused, expected_refusals=expected, reflected=reflected)
    row.note(f"{refused}/{expected} refused as expected; foreign Host reflected {reflected} times")
    row.passed = refused == expected and reflected == 0 and row.other_5xx == row.no_answer == 0
    return row


async def _csrf_and_host(
    row: GateRow, client: httpx.AsyncClient, server: Server, evil_host: str
) -> tuple[int, int, int]:
    """Return (requests refused as expected, times the foreign Host was reflected, expected)."""
    own = server.url
    forms = {
        "/review/weights/rollback": {"version": "1", "reviewer": "x", "comment": "y"},
        "/review/proposals/1/approve": {"reviewer": "x", "comment": "y"},
        "/review/signout": {},
    }
    refused = reflected = expected = 0
    for path, form in forms.items():
        for origin in ("http://evil.example", "null", own):
            # Another site's form (no token it could read), and our own origin without a token.
            response = await send(row, client, "POST", path, data=form, headers={"Origin": origin})
            expected += 1
            refused += int(response is not None and response.status_code == 403)
    for path in ("/review", "/review/signin", "/review/proposals/1"):
        response = await send(row, client, "GET", path, headers={"Host": evil_host})
        expected += 1
        refused += int(response is not None and response.status_code == 400)
        if response is not None:
            reflected += _reflections(response, evil_host)
    # Keyless (local mode), the JSON API checks the Host too: a rebinding page could read it.
    for path in ("/verdicts", "/trust/weights"):
        response = await send(row, client, "GET", path, headers={"Host": evil_host})
        expected += 1
        refused += int(response is not None and response.status_code == 400)
        if response is not None:
            reflected += _reflections(response, evil_host)
    # Outside the rule, measured: the stylesheet is public and holds no data.
    answered = []
    for path in ("/review/review.css",):
        response = await send(row, client, "GET", path, headers={"Host": evil_host})
        if response is not None and response.status_code == 200:
            answered.append(path)
        if response is not None:
            reflected += _reflections(response, evil_host)
    row.figures["answered_foreign_host"] = answered
    row.note(
        "outside the rule: under the foreign Host, "
        + (", ".join(answered) + " answered 200" if answered else "nothing else answered")
    )
    control = await send(row, client, "GET", "/review")
    row.note(f"GET /review with a loopback Host: {control.status_code if control else 'no answer'}")
    if control is None or control.status_code != 200:
        refused -= 1  # the refusals above mean nothing if the page never answers
    return refused, reflected, expected


def _reflections(response: httpx.Response, needle: str) -> int:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return response.text.count(needle) + headers.count(needle)


# The canaries: the juror's own key (no known credential shape), and credential-shaped text the
# upstream adds to its error. None is a live credential.
CANARY_KEY_ENV = "JURY_GATE_CANARY_KEY"
CANARY_KEY = "canary-gate-key-7d41c9e02b6a"
CANARY_ECHOED = (
    "ghp_CanaryGateToken000000000000000000000",
    "sk-proj-CanaryGateKey11111111111111111111",
)
CANARIES = (CANARY_KEY, *CANARY_ECHOED)


@contextlib.asynccontextmanager
async def echoing_upstream() -> AsyncIterator[tuple[str, list[int]]]:
    """Serve an upstream that refuses every call echoing its key; yield its URL and call count."""
    calls: list[int] = []

    async def refuse(request: web.Request) -> web.Response:
        calls.append(1)
        authorization = request.headers.get("Authorization", "")
        message = (
            f"Incorrect API key provided: {authorization.removeprefix('Bearer ')}. "
            f"Upstream tokens {' / '.join(CANARY_ECHOED)}; echoed header: {authorization}"
        )
        status = 401 if CANARY_KEY in authorization else 500
        return web.json_response({"error": {"message": message, "type": "invalid"}}, status=status)

    async with chat_upstream(refuse) as api_base:
        yield api_base, calls


def canary_jurors(api_base: str) -> list[dict[str, Any]]:
    """Two jurors on the echoing upstream: via litellm with the canary key, and direct.

    The direct transport takes no key (a keyless self-hosted server): its errors echo only
    the credential-shaped canaries.
    """
    common = {"model": "openai/leaky-model", "api_base": api_base, "timeout_s": 10}
    return [
        {"name": "hosted", "family": "family-hosted", "api_key_env": CANARY_KEY_ENV, **common},
        {"name": "direct", "family": "family-direct", "transport": "openai_compatible", **common},
    ]


def canary_hits(text_: str) -> int:
    """Return how many times any canary occurs in ``text_``."""
    return sum(text_.count(canary) for canary in CANARIES)


async def gate_canary(lab: Lab) -> GateRow:
    """Jurors whose upstream echoes the canaries: grep it everywhere Jury writes."""
    row = GateRow(
        "canary",
        "the canary key is in 0 log lines, database rows, responses and /metrics; "
        "the upstream was called and its failures are on record",
    )
    async with fresh_database(lab, row.gate, postgres=False) as url, echoing_upstream() as up:
        api_base, calls = up
        config = panel_config(lab.work, latency_ms=10, extra_jurors=canary_jurors(api_base))
        env = server_env(url, JURY_LOG_LEVEL="DEBUG", **{CANARY_KEY_ENV: CANARY_KEY})
        bodies: list[str] = []
        async with served(lab, row.gate, config, env) as (server, client):
            failures = await _canary_requests(row, client, bodies)
            log = server.log_text()
        database = await database_text(url)
        row.left_unfinished = await scalar(url, UNFINISHED)
    hits = {
        "responses": sum(canary_hits(body) for body in bodies[:-1]),
        "metrics": canary_hits(bodies[-1]) if bodies else 0,
        "log": canary_hits(log),
        "database": canary_hits(database),
    }
    row.figures.update(hits=hits, upstream_calls=len(calls), failures_recorded=failures)
    row.note(
        "canary hits: "
        + ", ".join(f"{where} {n}" for where, n in hits.items())
        + f"; upstream calls {len(calls)}; juror failures on record {failures}"
    )
    row.passed = (
        sum(hits.values()) == 0
        and len(calls) > 0
        and failures > 0
        and row.other_5xx == row.no_answer == 0
    )
    return row


async def _canary_requests(row: GateRow, client: httpx.AsyncClient, bodies: list[str]) -> int:
    """Ask three verdicts and read them back every way; keep each answer (headers and body).

    Return the number of recorded juror failures; /metrics is the last body kept.
    """

    def keep(response: httpx.Response | None) -> httpx.Response | None:
        if response is not None:
            headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
            bodies.append(headers + "\n" + response.text)
        return response

    failures = 0
    for _ in range(3):
        answered = keep(await send(row, client, "POST", "/verdict", json={"question": QUESTION}))
        if answered is None or answered.status_code != 200:
            continue
        verdict_id = answered.json()["id"]
        fetched = keep(await send(row, client, "GET", f"/verdicts/{verdict_id}"))
        keep(await send(row, client, "GET", f"/verdicts/{verdict_id}/events"))
        if fetched is not None and fetched.status_code == 200:
            failures += sum(
                1
                for round_ in fetched.json()["rounds"]
                for position in round_["positions"]
                if position.get("failure")
            )
    keep(await send(row, client, "GET", "/verdicts"))
    keep(await send(row, client, "GET", "/metrics"))
    return failures


def _skipped(row: GateRow) -> GateRow:
    row.skipped = True
    row.note("skipped: needs PostgreSQL (--postgres-url)")
    return row


Gate = Callable[[Lab], Awaitable[GateRow]]
GATES: dict[str, Gate] = {
    "pg-frozen": gate_pg_frozen,
    "pg-killed": gate_pg_killed,
    "redis-worker": gate_redis_worker,
    "kill9": gate_kill9,
    "idempotency": gate_idempotency,
    "csrf-host": gate_csrf_host,
    "canary": gate_canary,
}


async def run_gates(lab: Lab, names: Sequence[str]) -> list[GateRow]:
    """Run the named gates one after the other (they share the machine, not state)."""
    unknown = [name for name in names if name not in GATES]
    if unknown:
        raise ValueError(f"unknown gate(s) {', '.join(unknown)}; known: {', '.join(GATES)}")
    lab.work.mkdir(parents=True, exist_ok=True)
    return [await GATES[name](lab) for name in names]


# --- the report -------------------------------------------------------------------------------

HEADER = (
    "| gate | requests | 2xx | 4xx | 503 | other 5xx | no answer | left running/queued "
    "| longest s | bound s | result |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
)


def table_row(row: GateRow) -> str:
    """Return one gate as a markdown table row."""
    result = "skipped" if row.skipped else "pass" if row.passed else "**FAIL**"
    bound = f"{row.bound_s:g} (+{MARGIN_S:g})" if row.bound_s is not None else "-"
    left = "-" if row.left_unfinished is None else str(row.left_unfinished)
    cells = (
        row.gate,
        row.requests,
        row.ok,
        row.client_error,
        row.unavailable,
        row.other_5xx,
        row.no_answer,
        left,
        f"{row.longest_s:.2f}",
        bound,
        result,
    )
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def render(rows: Sequence[GateRow], *, command: str, load: Sequence[float], took_s: float) -> str:
    """Return the report: the table, each gate's rule and notes, how it was run."""
    lines = [
        "# Fault gates (issue 13)",
        "",
        f"Command: `{command}`  ",
        f"Load average (1, 5, 15 min) at the start: {', '.join(f'{x:.2f}' for x in load[:3])}; "
        f"at the end: {', '.join(f'{x:.2f}' for x in load[3:])}; {took_s:.0f} s in all.",
        "",
        "Every gate runs real `jury serve` processes (and `jury worker`, Redis, a TCP relay or a "
        "fake upstream where it needs one) on `config/scripted.yaml` with a fresh database. "
        f"Database timeout {DATABASE_TIMEOUT_S:g} s, shutdown grace {SHUTDOWN_GRACE_S:g} s, "
        f"Redis timeout {REDIS_TIMEOUT_S:g} s, a sweep every second. A bound is checked with "
        f"a {MARGIN_S:g} s margin for this shared 2-core machine's scheduling.",
        "",
        *HEADER,
        *(table_row(row) for row in rows),
        "",
    ]
    for row in rows:
        lines += [f"- **{row.gate}**: {row.rule}.", *(f"  - {note}" for note in row.notes)]
    return "\n".join(lines) + "\n"


def report_json(rows: Sequence[GateRow]) -> str:
    """Return the rows as JSON (for scripts)."""
    payload = [
        {
            "gate": row.gate,
            "passed": row.passed,
            "skipped": row.skipped,
            "requests": row.requests,
            "2xx": row.ok,
            "4xx": row.client_error,
            "503": row.unavailable,
            "other_5xx": row.other_5xx,
            "no_answer": row.no_answer,
            "left_unfinished": row.left_unfinished,
            "longest_s": round(row.longest_s, 3),
            "bound_s": row.bound_s,
            "figures": row.figures,
        }
        for row in rows
    ]
    return json.dumps(payload, indent=2) + "\n"
