"""``jury bench``: what Jury adds to a verdict beyond the time of its models.

One ``jury serve`` process on loopback, a fake upstream (``eval/perf/upstream.py``) answering
the benchmark panel (``eval/perf/bench.yaml``: 3 jurors x 2 rounds + judge = 7 calls), and an
open-loop load generator in this process. The phases:

1. **sweep**: ``POST /verdict`` at fixed rates; overhead (latency minus the upstream critical
   path Jury records) percentiles, throughput, errors, server CPU per verdict, RSS;
2. **ceiling**: the highest rate whose overhead p99 stays under 50 ms with no error;
3. **critical path**: with ~1 s jurors, verdict latency over the recorded critical path;
4. **soak** (optional): half the ceiling for a while, RSS sampled every second, its slope;
5. **workers**: ``jury serve --workers 1`` and ``--workers 2``, both on the same Redis (more
   than one worker needs it), each swept over ``worker_rates`` for its ceiling; the ratio of
   the two ceilings is how Jury scales with cores (skipped without a Redis URL);
6. **baselines** (``eval/perf/without_jury.py``): the same 7 calls without Jury: the floor
   (bare aiohttp and one row insert), plain litellm from one script, and through a LiteLLM
   proxy on loopback.

The server's CPU and memory are those of its whole process tree (its workers included).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from eval.perf import procs
from eval.perf.loadgen import Step, client_for, open_loop, verdict_sender
from eval.perf.report import render_markdown, step_report, summarize_results, workers_summary
from eval.perf.stats import per_verdict_ms, slope_per_minute, summarize
from eval.perf.upstream import run_fast
from eval.perf.without_jury import run_baselines

PERF_DIR = Path(__file__).resolve().parent
BENCH_CONFIG = PERF_DIR / "bench.yaml"
OVERHEAD_P99_LIMIT_MS = 50.0
# Rates the sweep picks itself (refining, stepping down) are multiples of this, never below the
# lowest: under 5 v/s a 4 s step holds too few verdicts for a p99.
RATE_QUANTUM = 5.0
LOWEST_RATE = 5.0
CALLS_PER_VERDICT_ROUNDS = 3  # upstream latencies on the critical path: round 1, round 2, judge


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What one ``jury bench`` run does."""

    out: Path
    quick: bool = False
    rates: tuple[float, ...] = (5, 10, 25, 50, 75, 100, 150, 200, 300)
    step_s: float = 10.0
    latency_ms: float = 50.0
    critical_latency_ms: float = 1000.0
    critical_dist: str = "lognormal"
    critical_s: float = 10.0
    soak_s: float = 0.0
    soak_rate: float | None = None  # default: half the ceiling
    baseline_rate: float = 50.0
    # A rate every client sustains, where overhead is per-verdict cost, not queueing (0: skip).
    low_rate: float = 5.0
    proxy: bool = True
    # Bisections between the sweep's highest pass and lowest fail.
    refinements: int = 2
    # The sweep's transport; the other one is measured at ``baseline_rate`` for comparison.
    transport: str = "openai_compatible"
    compare_transports: bool = True
    # How long a step waits for its last answers; what is still out then counts as errors.
    drain_s: float = 30.0
    # The workers phase: 1 and 2 workers on this Redis (None: the phase is skipped).
    redis_url: str | None = None
    compare_workers: bool = True
    worker_rates: tuple[float, ...] = (25, 50, 75, 100, 125, 150, 200, 250, 300)
    # The workers goal is a ratio of two ceilings: on the rates' grid alone both can land on one
    # step (1.00) or a step apart (2.00) whatever the servers do, so this phase always refines,
    # --quick too, to within RATE_QUANTUM of a 40 v/s gap.
    worker_refinements: int = 3
    # A step's p99 over 4 s at 40 v/s is its second-worst verdict: one stall fails the step,
    # and the ratio of two ceilings doubles the noise. --quick keeps 8 s here.
    worker_step_s: float = 10.0

    @classmethod
    def quick_run(cls, out: Path, **overrides: Any) -> BenchOptions:
        """Return the about-a-minute run: 3 rates, no refinement, no proxy, one transport."""
        values: dict[str, Any] = {
            "quick": True,
            "rates": (10, 50, 100),
            "step_s": 4.0,
            "critical_s": 4.0,
            "refinements": 0,
            "drain_s": 8.0,
            "proxy": False,
            "compare_transports": False,
            "low_rate": 0.0,
            "worker_rates": (25, 50, 75, 100, 150, 200),
            "worker_step_s": 8.0,
            **overrides,
        }
        return cls(out=out, **values)


@dataclass(frozen=True, slots=True)
class Server:
    """How one ``jury serve`` of the run is started."""

    transport: str
    workers: int = 1
    redis_url: str = ""  # empty: no Redis, the in-process equivalents

    @property
    def label(self) -> str:
        """Return the name of its folder and log."""
        if self.workers == 1 and not self.redis_url:
            return self.transport
        return f"{self.transport}-{self.workers}-workers"


@dataclass(slots=True)
class Context:
    """The processes of one run and what the phases collect."""

    options: BenchOptions
    upstream_url: str
    upstream_pid: int
    jury_url: str
    server: procs.Managed
    results: dict[str, Any] = field(default_factory=dict)


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run every phase and write ``results.json`` and ``results.md`` into ``options.out``."""
    options.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_start = procs.load_average()
    with tempfile.TemporaryDirectory(prefix="jury-bench-") as tmp:
        upstream_port = procs.free_port()
        upstream = procs.start(
            "fake upstream",
            procs.python_module(
                "eval.perf.upstream",
                "--port",
                str(upstream_port),
                "--latency-ms",
                str(options.latency_ms),
            ),
            log=options.out / "upstream.log",
        )
        with procs.running(upstream):
            upstream_url = f"http://127.0.0.1:{upstream_port}"
            procs.wait_healthy(upstream, f"{upstream_url}/health")
            fake = (upstream, upstream_url)
            jury = _run_jury(options, Path(tmp), fake, Server(options.transport), _drive)
            if options.compare_transports:
                other = "litellm" if options.transport != "litellm" else "openai_compatible"
                compared = _run_jury(options, Path(tmp), fake, Server(other), _one_step)
                jury["transport_comparison"] = {
                    options.transport: _step_at(jury.get("steps", []), options.baseline_rate),
                    other: compared.get("steps", [None])[0],
                }
            jury["workers"] = _compare_workers(options, Path(tmp), fake)
            baselines = run_baselines(options, Path(tmp), upstream_url)
    results = summarize_results(
        jury,
        baselines,
        meta={
            "command": shlex.join(["jury", *sys.argv[1:]]),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1),
            "quick": options.quick,
            "cpus": _cpu_count(),
            "load_average_start": load_start,
            "load_average_end": procs.load_average(),
            "upstream_latency_ms": options.latency_ms,
            "upstream_latency_dist": "fixed",
            "transport": options.transport,
            "overhead_p99_limit_ms": OVERHEAD_P99_LIMIT_MS,
            "headline_rate": options.baseline_rate,
            "panel": "3 jurors x 2 rounds + judge (7 upstream calls per verdict)",
        },
    )
    (options.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (options.out / "results.md").write_text(render_markdown(results))
    return results


def write_config(folder: Path, upstream_url: str, transport: str) -> Path:
    """Write the benchmark config with every model on the fake upstream through ``transport``."""
    data = yaml.safe_load(BENCH_CONFIG.read_text())
    for spec in (*data["jurors"], *data["judges"]):
        spec["api_base"] = f"{upstream_url}/v1"
        if transport != "litellm":  # litellm is the default (and the only one before issue 7)
            spec["transport"] = transport
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run_jury(
    options: BenchOptions,
    tmp: Path,
    upstream: tuple[procs.Managed, str],
    serve: Server,
    phases: Callable[[Context], Awaitable[None]],
) -> dict[str, Any]:
    """Start ``serve`` on a fresh database, run ``phases`` against it, return what they found.

    ``upstream``: the fake upstream's process and its URL.
    """
    folder = tmp / serve.label
    folder.mkdir()
    upstream_process, upstream_url = upstream
    config = write_config(folder, upstream_url, serve.transport)
    port = procs.free_port()
    env = {
        "JURY_CONFIG": str(config),
        "JURY_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'jury.db'}",
        "JURY_REQUIRE_API_KEYS": "false",
        "JURY_SHUTDOWN_GRACE_S": "5",
        "JURY_REDIS_URL": serve.redis_url,
        # The bench's progress events need not outlive it in someone's Redis.
        "JURY_EVENTS_TTL_S": "60",
    }
    argv = ["serve", "--config", str(config), "--port", str(port)]
    server = procs.start(
        "jury serve",
        procs.jury_command(*argv, "--workers", str(serve.workers)),
        log=options.out / f"server-{serve.label}.log",
        env=env,
    )
    with procs.running(server):
        jury_url = f"http://127.0.0.1:{port}"
        # Spawned workers import everything again: minutes on a loaded 2-core machine.
        procs.wait_healthy(server, f"{jury_url}/healthz", timeout_s=600)
        context = Context(options, upstream_url, upstream_process.pid, jury_url, server)
        run_fast(phases(context))
        _, peak = procs.tree_memory_mb(server.pid)
        context.results["peak_rss_mb"] = round(peak, 1)
    return context.results


def _compare_workers(
    options: BenchOptions, tmp: Path, upstream: tuple[procs.Managed, str]
) -> dict[str, Any] | None:
    """Sweep 1 and 2 workers on the same Redis; return each ceiling and their ratio."""
    if not options.compare_workers:
        return None
    if not options.redis_url:
        return {"skipped": "no Redis URL (--redis-url or JURY_REDIS_URL): 2 workers need one"}
    runs: dict[str, Any] = {}
    for workers in (1, 2):
        serve = Server(options.transport, workers=workers, redis_url=options.redis_url)
        runs[str(workers)] = _run_jury(options, tmp, upstream, serve, _worker_sweep)
    return workers_summary(runs)


async def _drive(context: Context) -> None:
    options = context.options
    async with client_for(context.jury_url) as client:
        send = verdict_sender(client, "/verdict")
        await _warm_up(context, send, rate=10)
        steps = await _sweep(context, send, refinements=options.refinements)
        passing = [s for s in steps if s["pass"]]
        ceiling = max((s["rate"] for s in passing), default=None)
        context.results["steps"] = steps
        context.results["ceiling_vps"] = ceiling
        context.results["critical_path"] = await _critical_path(context, send)
        soak_rate = options.soak_rate or _half_of_sustained(steps, ceiling)
        if options.soak_s > 0 and soak_rate:
            await _set_latency(context, options.latency_ms, "fixed")
            context.results["soak"] = await _soak(context, send, rate=soak_rate)


async def _worker_sweep(context: Context) -> None:
    """Warm up, then sweep the worker rates for this server's ceiling."""
    options = context.options
    async with client_for(context.jury_url) as client:
        send = verdict_sender(client, "/verdict")
        # At the first step's rate: its connections and the workers' first verdicts each (with
        # two workers, the kernel hands each its share only under load) are opened here, not
        # in the first measured step.
        await _warm_up(context, send, rate=min(options.worker_rates))
        steps = await _sweep(
            context,
            send,
            options.worker_rates,
            refinements=options.worker_refinements,
            step_s=options.worker_step_s,
        )
        context.results["steps"] = steps
        context.results["ceiling_vps"] = max((s["rate"] for s in steps if s["pass"]), default=None)


def _half_of_sustained(steps: list[dict[str, Any]], ceiling: float | None) -> float | None:
    """Return half the ceiling, or, with none, half the highest rate served without error."""
    if ceiling:
        return ceiling / 2
    served = [
        s["rate"] for s in steps if s["errors"] == 0 and (s["achieved_vps"] or 0) >= 0.9 * s["rate"]
    ]
    return max(served) / 2 if served else None


async def _one_step(context: Context) -> None:
    """Warm up, then measure the headline rate alone (the transport comparison)."""
    rate = context.options.baseline_rate
    async with client_for(context.jury_url) as client:
        send = verdict_sender(client, "/verdict")
        await _warm_up(context, send, rate=10)
        context.results["steps"] = [await _measured_step(context, send, rate)]


async def _warm_up(context: Context, send: Any, *, rate: float) -> None:
    """Set the fixed upstream latency, send ``rate`` v/s for a moment, wait for the server to
    go idle: what every measured phase does first."""
    await _set_latency(context, context.options.latency_ms, "fixed")
    await open_loop(send, rate=rate, duration_s=2 if context.options.quick else 4, drain_s=30)
    await _settle(context.server.pid)


def _step_at(steps: list[dict[str, Any]], rate: float) -> dict[str, Any] | None:
    return next((s for s in steps if s["rate"] == rate), None)


async def _sweep(
    context: Context,
    send: Any,
    rates: tuple[float, ...] | None = None,
    *,
    refinements: int,
    step_s: float | None = None,
) -> list[dict[str, Any]]:
    """Run the rate steps up to two failures in a row, step down while none has passed, then
    refine between a pass and a fail up to ``refinements`` times."""
    options = context.options
    steps: list[dict[str, Any]] = []
    failures_in_a_row = 0
    for rate in sorted(rates or options.rates):
        # The headline rate is always measured; above it, two failures in a row end the climb.
        if failures_in_a_row >= 2 and rate > options.baseline_rate:
            break
        report = await _measured_step(context, send, rate, step_s)
        steps.append(report)
        failures_in_a_row = 0 if report["pass"] else failures_in_a_row + 1
    # A slower machine than the rates were chosen for: step down until a rate passes, so the
    # run still has a ceiling (and two runs a ratio of ceilings) instead of none.
    while (lower := rate_below(steps)) is not None:
        steps.append(await _measured_step(context, send, lower, step_s))
    for _ in range(refinements):
        if (between := rate_between(steps)) is None:
            break
        steps.append(await _measured_step(context, send, between, step_s))
    return sorted(steps, key=lambda s: s["rate"])


def rate_between(steps: list[dict[str, Any]]) -> float | None:
    """Return the rate halfway between the highest pass and the lowest fail above it.

    Rounded to ``RATE_QUANTUM``; None without such a pair or once they are one quantum apart.
    """
    passed = [s["rate"] for s in steps if s["pass"]]
    failed = [s["rate"] for s in steps if not s["pass"] and s["rate"] > max(passed, default=0)]
    if not passed or not failed:
        return None
    low, high = max(passed), min(failed)
    rate = round((low + high) / 2 / RATE_QUANTUM) * RATE_QUANTUM
    return None if rate in (low, high) else rate


def rate_below(steps: list[dict[str, Any]]) -> float | None:
    """Return the next rate down while no step has passed: half the lowest one tried.

    Rates stay multiples of ``RATE_QUANTUM`` and no lower than ``LOWEST_RATE``; None once a
    step has passed or the lowest rate has been tried.
    """
    if not steps or any(s["pass"] for s in steps):
        return None
    lowest = min(s["rate"] for s in steps)
    rate = max(LOWEST_RATE, round(lowest / 2 / RATE_QUANTUM) * RATE_QUANTUM)
    return rate if rate < lowest else None


async def _measured_step(
    context: Context, send: Any, rate: float, step_s: float | None = None
) -> dict[str, Any]:
    """Drive one rate for ``step_s`` (default the options') and return its report; wait for the
    server to go idle afterwards."""
    pid = context.server.pid
    others = (os.getpid(), context.upstream_pid)
    cpu_before = procs.tree_cpu_seconds(pid)
    others_before = [procs.cpu_seconds(p) for p in others]
    options = context.options
    step: Step = await open_loop(
        send, rate=rate, duration_s=step_s or options.step_s, drain_s=options.drain_s
    )
    cpu = procs.tree_cpu_seconds(pid) - cpu_before
    client_cpu, upstream_cpu = (
        procs.cpu_seconds(p) - before for p, before in zip(others, others_before, strict=True)
    )
    rss, peak = procs.tree_memory_mb(pid)
    report = step_report(
        step,
        cpu_s=cpu,
        rss_mb=rss,
        peak_rss_mb=peak,
        load=procs.load_average(),
        upstream_path_ms=CALLS_PER_VERDICT_ROUNDS * context.options.latency_ms,
        limit_ms=OVERHEAD_P99_LIMIT_MS,
    )
    completed = report["completed"]
    report["client_cpu_ms_per_verdict"] = per_verdict_ms(client_cpu, completed)
    report["upstream_cpu_ms_per_verdict"] = per_verdict_ms(upstream_cpu, completed)
    print(_step_line(report), file=sys.stderr, flush=True)
    await _settle(pid)
    return report


async def _critical_path(context: Context, send: Any) -> dict[str, Any]:
    """With ~1 s jurors, compare each verdict's latency with its recorded critical path."""
    options = context.options
    await _set_latency(context, options.critical_latency_ms, options.critical_dist)
    rate = 5.0
    step = await open_loop(send, rate=rate, duration_s=options.critical_s, drain_s=60)
    await _set_latency(context, options.latency_ms, "fixed")
    ok = [s for s in step.samples if s.outcome.ok and s.outcome.critical_path_ms]
    ratios = [s.latency_ms / (s.outcome.critical_path_ms or 1) for s in ok]
    server_ratios = [
        (s.outcome.server_latency_ms or 0) / (s.outcome.critical_path_ms or 1) for s in ok
    ]
    await _settle(context.server.pid)
    return {
        "juror_latency_ms": options.critical_latency_ms,
        "dist": options.critical_dist,
        "rate": rate,
        "verdicts": len(ok),
        "errors": step.errors,
        "ratio": summarize(ratios).as_dict(4),
        "server_ratio": summarize(server_ratios).as_dict(4),
        "critical_path_ms": summarize([s.outcome.critical_path_ms or 0 for s in ok]).as_dict(1),
        "load_average": procs.load_average(),
    }


async def _soak(context: Context, send: Any, *, rate: float) -> dict[str, Any]:
    """Run at ``rate`` for the soak duration, sampling the server's RSS every second."""
    pid = context.server.pid
    points: list[tuple[float, float]] = []
    started = time.monotonic()

    async def sample() -> None:
        while True:
            points.append((time.monotonic() - started, procs.tree_memory_mb(pid)[0]))
            await asyncio.sleep(1.0)

    sampler = asyncio.get_running_loop().create_task(sample())
    try:
        step = await open_loop(send, rate=rate, duration_s=context.options.soak_s, drain_s=30)
    finally:
        sampler.cancel()
    warm = [p for p in points if p[0] >= 0.2 * context.options.soak_s]
    overheads = [o for s in step.samples if (o := s.overhead_ms) is not None]
    return {
        "rate": rate,
        "duration_s": context.options.soak_s,
        "verdicts": step.completed,
        "errors": step.errors,
        "rss_start_mb": round(points[0][1], 1) if points else None,
        "rss_end_mb": round(points[-1][1], 1) if points else None,
        "rss_max_mb": round(max(v for _, v in points), 1) if points else None,
        "rss_slope_mb_per_min": _round(slope_per_minute(points)),
        "rss_slope_after_warmup_mb_per_min": _round(slope_per_minute(warm)),
        "overhead_ms": summarize(overheads).as_dict(),
        "rss_series": [
            (round(t, 1), round(v, 1)) for t, v in points[:: max(1, len(points) // 120)]
        ],
        "load_average": procs.load_average(),
    }


async def _set_latency(context: Context, latency_ms: float, dist: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            f"{context.upstream_url}/control",
            json={"latency_ms": latency_ms, "dist": dist, "sigma": 0.25},
        )
        response.raise_for_status()


async def _settle(pid: int, *, timeout_s: float = 30.0) -> None:
    """Wait until the server uses under 10% of a core (the last step's stragglers are done)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = procs.tree_cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if procs.tree_cpu_seconds(pid) - before < 0.05:
            return


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def _step_line(report: dict[str, Any]) -> str:
    overhead = report["overhead_ms"]
    return (
        f"{report['rate']:>6g} v/s: {report['completed']}/{report['sent']} ok, "
        f"{report['errors']} errors, overhead p50 {overhead['p50']} p99 {overhead['p99']} ms, "
        f"{report['cpu_ms_per_verdict']} CPU ms/verdict, load {report['load_average'][0]:.2f}"
    )
