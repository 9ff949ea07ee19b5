"""The same 7 upstream calls as one benchmark verdict, without Jury: what a script would pay.

``floor``: the least any service could spend on them, no framework: the 7 calls as plain
OpenAI-compatible requests from one shared aiohttp session (the bodies Jury's
``openai_compatible`` transport sends), then one row inserted into a SQLite file through
aiosqlite. ``litellm``: one script calls ``litellm.acompletion`` directly (round 1: three
jurors at once; round 2: three rebuttals at once; then the judge), with Jury's own prompts,
response format and call arguments. ``proxy``: the same calls as plain OpenAI-compatible
requests through a LiteLLM proxy on loopback. Each "verdict" is sent open-loop at the
benchmark's rate; the result is printed as JSON on stdout for ``jury bench`` to read.

    python -m eval.perf.baseline --target floor --api-base http://127.0.0.1:18471/v1 \\
        --rate 50 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import aiosqlite

from app.deliberation import prompts
from app.deliberation.answers import (
    JUDGE_SCHEMA_NAME,
    JUROR_SCHEMA_NAME,
    judge_schema,
    juror_schema,
)
from app.providers.base import Message
from eval.perf.loadgen import KEEPALIVE_S, REQUEST_BODY, Outcome, open_loop
from eval.perf.procs import cpu_seconds
from eval.perf.upstream import run_fast

JURORS = ("fake-a", "fake-b", "fake-c")
JUDGE = "fake-judge"
OPTIONS: tuple[str, ...] = tuple(REQUEST_BODY["options"])

# (model alias, messages, schema name, schema) -> (latency in ms, the parsed answer)
Call = Callable[[str, tuple[Message, ...], str, dict[str, Any]], Awaitable[tuple[float, Any]]]
# Stores a finished verdict (its id and its answer as JSON), the floor's one row insert.
Record = Callable[[str, str], Awaitable[None]]
FLOOR_TABLE = "CREATE TABLE IF NOT EXISTS verdict (id TEXT PRIMARY KEY, answer TEXT NOT NULL)"


def _format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def litellm_call(api_base: str) -> Call:
    """Return a call through ``litellm.acompletion``, with Jury's call arguments."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True

    async def call(
        model: str, messages: tuple[Message, ...], name: str, schema: dict[str, Any]
    ) -> tuple[float, Any]:
        started = time.perf_counter()
        response = await litellm.acompletion(
            model=f"openai/{model}",
            messages=[m.model_dump() for m in messages],
            max_tokens=300,
            temperature=0.0,
            timeout=30,
            num_retries=0,
            api_base=api_base,
            api_key="bench-no-key",
            response_format=_format(name, schema),
        )
        answer = json.loads(response.choices[0].message.content or "{}")
        return (time.perf_counter() - started) * 1000, answer

    return call


def proxy_call(session: aiohttp.ClientSession, base_url: str) -> Call:
    """Return a call through an OpenAI-compatible proxy (plain HTTP from the script).

    aiohttp, not httpx: httpx costs several times more CPU per request, the more so with a
    backlog of queued requests, and that would be the script's cost, not the proxy's.
    """
    headers = {
        "Authorization": f"Bearer {os.environ.get('JURY_BENCH_PROXY_KEY', '')}",
        "Content-Type": "application/json",
    }

    async def call(
        model: str, messages: tuple[Message, ...], name: str, schema: dict[str, Any]
    ) -> tuple[float, Any]:
        started = time.perf_counter()
        body = {
            "model": model,
            "messages": [m.model_dump() for m in messages],
            "max_tokens": 300,
            "temperature": 0.0,
            "response_format": _format(name, schema),
        }
        async with session.post(
            f"{base_url}/v1/chat/completions", data=json.dumps(body), headers=headers
        ) as response:
            response.raise_for_status()
            data = json.loads(await response.read())
        answer = json.loads(data["choices"][0]["message"]["content"])
        return (time.perf_counter() - started) * 1000, answer

    return call


def floor_call(session: aiohttp.ClientSession, api_base: str) -> Call:
    """Return a bare OpenAI-compatible call: one POST on a shared session, the body parsed."""
    url = f"{api_base.rstrip('/')}/chat/completions"
    headers = {"Authorization": "Bearer bench-no-key", "Content-Type": "application/json"}

    async def call(
        model: str, messages: tuple[Message, ...], name: str, schema: dict[str, Any]
    ) -> tuple[float, Any]:
        started = time.perf_counter()
        body = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": 300,
            "temperature": 0.0,
            "response_format": _format(name, schema),
        }
        async with session.post(url, data=json.dumps(body).encode(), headers=headers) as response:
            response.raise_for_status()
            data = json.loads(await response.read())
        answer = json.loads(data["choices"][0]["message"]["content"])
        return (time.perf_counter() - started) * 1000, answer

    return call


def floor_record(database: aiosqlite.Connection) -> Record:
    """Return the floor's write: one row per verdict, committed before the verdict returns."""

    async def record(verdict_id: str, answer: str) -> None:
        await database.execute("INSERT INTO verdict VALUES (?, ?)", (verdict_id, answer))
        await database.commit()

    return record


def _argument(label: str, answer: dict[str, Any]) -> prompts.Argument:
    return prompts.Argument(
        label=label,
        position=str(answer["position"]),
        confidence=float(answer["confidence"]),
        reasoning=str(answer["reasoning"]),
    )


async def one_verdict(call: Call, record: Record | None = None) -> Outcome:
    """Make the verdict's 7 calls: 3 jurors, 3 rebuttals, the judge; return the critical path.

    With ``record``, the judge's answer is stored before the verdict counts as done.
    """
    case = prompts.Case(
        question=str(REQUEST_BODY["question"]),
        options=OPTIONS,
        context=str(REQUEST_BODY["context"]),
        nonce=secrets.token_hex(6),
    )
    schema = juror_schema(OPTIONS)
    first = await asyncio.gather(
        *(call(j, prompts.first_round(case), JUROR_SCHEMA_NAME, schema) for j in JURORS)
    )
    answers = dict(zip(JURORS, (answer for _, answer in first), strict=True))

    def rebuttal(juror: str) -> tuple[Message, ...]:
        others = [
            _argument(f"Juror {label}", answers[other])
            for label, other in zip("AB", [o for o in JURORS if o != juror], strict=True)
        ]
        return prompts.rebuttal_round(case, _argument("You", answers[juror]), others)

    second = await asyncio.gather(
        *(call(j, rebuttal(j), JUROR_SCHEMA_NAME, schema) for j in JURORS)
    )
    rounds = [
        [_argument(f"Juror {label}", answer) for label, (_, answer) in zip("ABC", r, strict=True)]
        for r in (first, second)
    ]
    judge_ms, judged = await call(
        JUDGE, prompts.judge_call(case, rounds), JUDGE_SCHEMA_NAME, judge_schema(OPTIONS)
    )
    if record is not None:
        await record(case.nonce, json.dumps(judged))
    path = max(ms for ms, _ in first) + max(ms for ms, _ in second) + judge_ms
    return Outcome(ok=True, critical_path_ms=path, calls=7)


async def run(
    target: str,
    api_base: str,
    rate: float,
    duration_s: float,
    drain_s: float = 60.0,
    database: str | None = None,
) -> dict[str, Any]:
    """Warm up, then drive the calls open-loop and return the samples and the CPU spent."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1024, keepalive_timeout=KEEPALIVE_S),
        timeout=aiohttp.ClientTimeout(total=120),
    )
    call = _call_for(target, session, api_base)
    async with session, aiosqlite.connect(database or ":memory:") as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(FLOOR_TABLE)
        record = floor_record(db) if target == "floor" else None
        await open_loop(lambda: one_verdict(call, record), rate=5, duration_s=1, drain_s=30)
        cpu_before = cpu_seconds(os.getpid())
        step = await open_loop(
            lambda: one_verdict(call, record), rate=rate, duration_s=duration_s, drain_s=drain_s
        )
        cpu = cpu_seconds(os.getpid()) - cpu_before
    return {
        "target": target,
        "rate": rate,
        "duration_s": duration_s,
        "wall_s": step.wall_s,
        "cpu_s": cpu,
        "unfinished": step.unfinished,
        "samples": [
            {
                "latency_ms": s.latency_ms,
                "lag_ms": s.lag_ms,
                "ok": s.outcome.ok,
                "error": s.outcome.error,
                "critical_path_ms": s.outcome.critical_path_ms,
            }
            for s in step.samples
        ],
    }


def _call_for(target: str, session: aiohttp.ClientSession, api_base: str) -> Call:
    if target == "litellm":
        return litellm_call(api_base)
    if target == "floor":
        return floor_call(session, api_base)
    return proxy_call(session, api_base)


def main(argv: Sequence[str] | None = None) -> None:
    """Run one baseline step and print its JSON."""
    parser = argparse.ArgumentParser(description="The benchmark's calls without Jury.")
    parser.add_argument("--target", choices=["floor", "litellm", "proxy"], required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--database", help="The floor's SQLite file (default: in memory).")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}

    async def work() -> None:
        result.update(
            await run(
                args.target, args.api_base, args.rate, args.duration, args.drain, args.database
            )
        )

    run_fast(work())
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
