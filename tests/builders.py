"""Small builders for the verdict-service tests: configs, settings, services, app clients.

Plain functions and context managers, not fixtures: each test builds exactly what it needs and
shares nothing with the next one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
from fastapi import FastAPI
from sqlmodel import col, select

from app.core.config import JuryConfig, ModelSpec, ScriptFailure
from app.core.db import SessionMaker, create_engine, create_sessionmaker
from app.core.settings import Settings
from app.deliberation.answers import JUROR_SCHEMA_NAME, juror_schema
from app.http.app import create_app
from app.providers.base import Completion, CompletionRequest, Message
from app.providers.hub import ProviderHub
from app.runtime import open_runtime
from app.verdicts.preparation import WeightsSource
from app.verdicts.reads import VerdictReads
from app.verdicts.record.tables import ModelCall, Verdict
from app.verdicts.service import VerdictService

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTED_CONFIG = REPO_ROOT / "config" / "scripted.yaml"
OPTIONS = ("approve", "reject")

Step = Mapping[str, Any]


def juror_request(options: Sequence[str] = ("approve", "reject")) -> CompletionRequest:
    """Return a round-1 juror's structured-output request over ``options``."""
    return CompletionRequest(
        messages=(Message(role="system", content="Judge."), Message(role="user", content="Ok?")),
        schema_name=JUROR_SCHEMA_NAME,
        output_schema=juror_schema(tuple(options)),
        call_role="juror",
        round_number=1,
    )


def step(
    position: str | None = None,
    *,
    confidence: float = 0.8,
    reasoning: str | None = None,
    latency_ms: float = 0,
    failure: ScriptFailure | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Return one scripted answer (a ``ScriptStep`` as a dict)."""
    values: dict[str, Any] = {
        "position": position,
        "confidence": confidence,
        "latency_ms": latency_ms,
        "failure": failure,
        **extra,
    }
    if reasoning is not None:
        values["reasoning"] = reasoning
    return values


def juror_spec(name: str, steps: Sequence[Step], **overrides: Any) -> dict[str, Any]:
    """Return a scripted juror entry of its own family, answering ``steps`` round by round."""
    return {
        "name": name,
        "model": "scripted",
        "family": f"family-{name}",
        "timeout_s": 5,
        "script": {"rounds": list(steps)},
        **overrides,
    }


def scripted_config(
    *,
    jurors: Mapping[str, Sequence[Step]],
    judge: Sequence[Step] = (),
    juror_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    judge_overrides: Mapping[str, Any] | None = None,
    extra_jurors: Sequence[Mapping[str, Any]] = (),
    extra_judges: Mapping[str, Sequence[Step]] | None = None,
    panel: Mapping[str, Any] | None = None,
    extra_panels: Mapping[str, Mapping[str, Any]] | None = None,
    categories: Mapping[str, Mapping[str, Any]] | None = None,
    **protocol: Any,
) -> JuryConfig:
    """Return a validated config: scripted jurors on the default panel and a scripted judge.

    ``protocol`` holds the protocol's settings (``max_rounds``, ``quorum``, …); the options
    default to approve/reject and the judge approves with confidence 0.9 unless told otherwise.
    ``extra_judges`` and ``extra_panels`` add more scripted judges and named panels.
    """
    overrides = juror_overrides or {}
    entries = [juror_spec(name, steps, **overrides.get(name, {})) for name, steps in jurors.items()]
    entries += [dict(entry) for entry in extra_jurors]
    judge_steps = list(judge) or [step("approve", confidence=0.9)]
    judge_entry = {
        "name": "judge",
        "model": "scripted",
        "family": "family-judge",
        "timeout_s": 5,
        "script": {"rounds": judge_steps},
        **(judge_overrides or {}),
    }
    judges = [judge_entry] + [
        {
            "name": name,
            "model": "scripted",
            "family": f"family-{name}",
            "timeout_s": 5,
            "script": {"rounds": list(steps)},
        }
        for name, steps in (extra_judges or {}).items()
    ]
    raw = {
        "protocol": {"default_options": list(OPTIONS), **protocol},
        "jurors": entries,
        "judges": judges,
        "panels": {
            "default": {"jurors": [e["name"] for e in entries], "judge": "judge", **(panel or {})},
            **(extra_panels or {}),
        },
        "categories": dict(categories or {}),
    }
    return JuryConfig.model_validate(raw)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Return settings on ``database_url``; the test databases are already migrated."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "config": SCRIPTED_CONFIG,
        "auto_migrate": False,
        # The tests' clients reach the app as http://jury.test (keyless requests check it).
        "allowed_hosts": ("jury.test", "127.0.0.1", "localhost"),
        **overrides,
    }
    return Settings(**values)


class RecordingHub(ProviderHub):
    """The real hub, remembering every request it was asked to answer, in order."""

    def __init__(self, config: JuryConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.requests: list[tuple[str, CompletionRequest]] = []

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Record the request, then answer it as the real hub does."""
        self.requests.append((spec.name, request))
        return await super().complete(spec, request)

    def called(self, name: str) -> list[CompletionRequest]:
        """Return the requests sent to one model."""
        return [request for called, request in self.requests if called == name]


@dataclass
class FixedWeights:
    """An approved weights version, as the trust record would supply it."""

    version: int
    weights: Mapping[str, float] = field(default_factory=dict)

    async def active(self, category: str) -> tuple[int | None, Mapping[str, float]]:
        """Return the fixed version and weights, whatever the category."""
        return self.version, self.weights


async def calls_of(sessionmaker: SessionMaker, verdict_id: str) -> list[ModelCall]:
    """Return the stored model calls of a verdict, in the order they were stored."""
    async with sessionmaker() as session:
        statement = (
            select(ModelCall).where(ModelCall.verdict_id == verdict_id).order_by(col(ModelCall.id))
        )
        return list((await session.exec(statement)).all())


async def stored_calls(database_url: str, verdict_id: str) -> list[ModelCall]:
    """Return the stored model calls of a verdict, read straight from the database."""
    engine = create_engine(database_url)
    try:
        return await calls_of(create_sessionmaker(engine), verdict_id)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Bench:
    """A verdict service on a test database, with read access to what it recorded."""

    service: VerdictService
    reads: VerdictReads
    sessionmaker: SessionMaker

    async def calls(self, verdict_id: str) -> list[ModelCall]:
        """Return the stored model calls of a verdict, in the order they were stored."""
        return await calls_of(self.sessionmaker, verdict_id)

    async def verdict_row(self, verdict_id: str) -> Verdict:
        """Return the stored verdict row."""
        async with self.sessionmaker() as session:
            row = await session.get(Verdict, verdict_id)
        assert row is not None, f"verdict {verdict_id} was not stored"
        return row


@asynccontextmanager
async def open_bench(
    database_url: str,
    config: JuryConfig,
    *,
    hub: ProviderHub | None = None,
    weights: WeightsSource | None = None,
    **settings: Any,
) -> AsyncIterator[Bench]:
    """Open the runtime on ``database_url``; ``hub`` or ``weights`` replace the service's own."""
    resolved = make_settings(database_url, **settings)
    async with open_runtime(resolved, config=config) as runtime:
        service = runtime.verdicts
        if hub is not None or weights is not None:
            service = VerdictService(
                config=config,
                hub=hub or runtime.hub,
                sessionmaker=runtime.sessionmaker,
                settings=resolved,
                weights=weights,
            )
        try:
            yield Bench(
                service=service, reads=runtime.verdict_reads, sessionmaker=runtime.sessionmaker
            )
        finally:
            if service is not runtime.verdicts:
                service.close()


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield an HTTP client on it (in-process: no server, no socket)."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://jury.test") as client,
    ):
        yield client


@asynccontextmanager
async def app_client(
    settings: Settings, config: JuryConfig | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Yield an HTTP client on a new app built from ``settings`` and ``config``."""
    async with serving(create_app(settings, config=config)) as client:
        yield client


@dataclass
class ManualClock:
    """A monotonic clock that moves only when a test moves it: caches expire without sleeping."""

    now: float = 1_000.0

    def __call__(self) -> float:
        """Return the current reading."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], object] = bool,
    *,
    what: str = "the condition",
    timeout_s: float = 20,
    every_s: float = 0.05,
) -> T:
    """Call ``probe`` until ``done`` holds for its result, and return that result.

    The one polling loop of the tests. ``timeout_s`` is a guard against hangs, not a timing
    assertion: past it the test fails saying ``what`` never happened, and what it saw last.
    """
    seen: T | None = None
    with anyio.move_on_after(timeout_s):
        while True:
            seen = await probe()
            if done(seen):
                return seen
            await anyio.sleep(every_s)
    raise AssertionError(f"{what} did not happen within {timeout_s}s (last seen: {seen!r})")


def call_values(verdict_id: str, juror: str, **overrides: Any) -> dict[str, Any]:
    """Return the column values of one successful juror call (a ``model_calls`` row)."""
    values: dict[str, Any] = {
        "verdict_id": verdict_id,
        "role": "juror",
        "round": 1,
        "juror": juror,
        "model": "scripted",
        "family": f"family-{juror}",
        "prompt_version": "test",
        "messages": [{"role": "user", "content": "Ship it?"}],
        "raw_output": '{"position": "approve"}',
        "parsed": {"position": "approve"},
        "position": "approve",
        "confidence": 0.8,
        "changed": False,
        "attempts": 1,
        "latency_ms": 1.0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.0,
        "failure_kind": None,
        "failure_detail": None,
        "started_at": datetime.now(UTC),
    }
    return {**values, **overrides}
