"""Builders of the trust workflow tests: a scripted panel, an app client, verdicts, outcomes.

The panel answers from fixed scripts, so each juror's accuracy per category is set by the
outcomes the test records. Three jurors over three options:

    alpha    always "approve"                      (confidence 0.8)
    bravo    "approve" in round 1, "reject" after  (0.6, then 0.9): a shift on every verdict
    charlie  always "defer"                        (confidence 0.7)

Their final positions always split 1-1-1, so under neutral weights the weighted vote breaks
the tie by confidence and follows bravo ("reject"). The judge always says "reject".
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from app.core.config import JuryConfig
from app.core.db import SessionMaker, session_scope
from app.core.settings import Settings
from app.http.app import create_app
from app.runtime import Runtime
from app.trust.models import OutcomeSource
from app.trust.outcomes import OutcomeService
from app.trust.schemas import OutcomeCreate
from app.trust.service import TrustService
from app.verdicts.record.tables import Verdict

OPTIONS = ("approve", "reject", "defer")
REVIEWER = {"reviewer": "rita", "comment": "evidence checked"}
ALLOWED_HOSTS = ("jury.test", "127.0.0.1")


def _step(position: str, confidence: float) -> dict[str, Any]:
    return {"position": position, "confidence": confidence, "reasoning": f"I say {position}."}


def _model(name: str, steps: Sequence[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    entry = {
        "name": name,
        "model": "scripted",
        "family": f"family-{name}",
        "timeout_s": 5,
        "script": {"rounds": list(steps)},
    }
    return {**entry, **overrides}


def panel_config(
    *,
    judge_confidence: float = 0.6,
    second_judge_confidence: float | None = None,
    juror_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    judge_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> JuryConfig:
    """Return the scripted three-juror config; a second judge adds the panel ``second``.

    ``*_overrides`` replace entries of a model by name, e.g. another ``model`` (with
    ``api_base`` on loopback so that no credential is needed, and ``script: None``).
    """
    overrides = juror_overrides or {}
    judge_changes = judge_overrides or {}
    scripts = {
        "alpha": [_step("approve", 0.8)],
        "bravo": [_step("approve", 0.6), _step("reject", 0.9)],
        "charlie": [_step("defer", 0.7)],
    }
    jurors = [_model(name, steps, **overrides.get(name, {})) for name, steps in scripts.items()]
    judges = [
        _model("judge", [_step("reject", judge_confidence)], **judge_changes.get("judge", {}))
    ]
    panels: dict[str, Any] = {"default": {"jurors": list(scripts), "judge": "judge"}}
    if second_judge_confidence is not None:
        steps = [_step("reject", second_judge_confidence)]
        judges.append(_model("judge2", steps, **judge_changes.get("judge2", {})))
        panels["second"] = {"jurors": list(scripts), "judge": "judge2"}
    raw = {
        "protocol": {"default_options": list(OPTIONS), "max_rounds": 2, "quorum": 2},
        "jurors": jurors,
        "judges": judges,
        "panels": panels,
    }
    return JuryConfig.model_validate(raw)


def settings_for(database_url: str) -> Settings:
    """Return settings on an already migrated test database."""
    # jury.test: the host name of the in-process client, admitted to the review pages.
    return Settings(database_url=database_url, auto_migrate=False, allowed_hosts=ALLOWED_HOSTS)


@dataclass(frozen=True)
class Served:
    """An app on a test database, its HTTP client, and its runtime."""

    client: httpx.AsyncClient
    app: FastAPI

    @property
    def runtime(self) -> Runtime:
        """Return the app's runtime (opened by the lifespan)."""
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def sessionmaker(self) -> SessionMaker:
        """Return the runtime's session factory."""
        return self.runtime.sessionmaker

    @asynccontextmanager
    async def trust(self) -> AsyncIterator[TrustService]:
        """Yield a trust service in its own unit of work (committed on exit)."""
        async with session_scope(self.sessionmaker) as session:
            yield TrustService(session, config=self.runtime.config)


@asynccontextmanager
async def serve(database_url: str, config: JuryConfig | None = None) -> AsyncIterator[Served]:
    """Run the app's lifespan on ``database_url`` and yield a client (no socket involved)."""
    app = create_app(settings_for(database_url), config=config or panel_config())
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://jury.test") as client,
    ):
        yield Served(client=client, app=app)


async def ask(
    client: httpx.AsyncClient, category: str, *, panel: str | None = None
) -> dict[str, Any]:
    """Decide one verdict through the API and return its JSON."""
    body: dict[str, Any] = {"question": f"Go ahead with this {category} change?"}
    body["category"] = category
    if panel is not None:
        body["panel"] = panel
    response = await client.post("/verdict", json=body)
    assert response.status_code == 200, response.text
    verdict: dict[str, Any] = response.json()
    return verdict


async def report(
    client: httpx.AsyncClient, verdict_id: str, correct: str, **extra: Any
) -> httpx.Response:
    """Post an outcome for a verdict."""
    body = {"correct_option": correct, "source": "dataset", **extra}
    return await client.post(f"/verdicts/{verdict_id}/outcome", json=body)


def outcomes_for(counts: Mapping[str, int]) -> list[str]:
    """Return correct options in a fixed interleaved order with the given counts."""
    remaining = dict(counts)
    out: list[str] = []
    while any(remaining.values()):
        for option in OPTIONS:
            if remaining.get(option, 0) > 0:
                out.append(option)
                remaining[option] -= 1
    return out


async def decide_and_report(
    client: httpx.AsyncClient, plan: Mapping[str, Mapping[str, int]]
) -> dict[str, list[str]]:
    """For each category, decide one verdict per planned outcome and record that outcome."""
    ids: dict[str, list[str]] = {}
    for category, counts in plan.items():
        ids[category] = []
        for correct in outcomes_for(counts):
            verdict = await ask(client, category)
            response = await report(client, verdict["id"], correct)
            assert response.status_code == 201, response.text
            ids[category].append(verdict["id"])
    return ids


async def clone_verdicts(
    served: Served, template: Mapping[str, Any], *, category: str, n: int
) -> list[str]:
    """Store ``n`` copies of a decided verdict (new ids, this category, decided now).

    The scripted panel answers every question alike, so a copy is exactly what deliberating
    again would record, at a fraction of the cost (PostgreSQL commits every call).
    """
    ids: list[str] = []
    async with session_scope(served.sessionmaker) as session:
        for _ in range(n):
            verdict_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            response = {
                **template,
                "id": verdict_id,
                "category": category,
                "created_at": now.isoformat(),
            }
            session.add(
                Verdict(
                    id=verdict_id,
                    created_at=now,
                    finished_at=now,
                    status="completed",
                    question=str(template["question"]),
                    options=list(template["options"]),
                    category=category,
                    panel=str(template["panel"]),
                    request={"question": template["question"], "category": category},
                    verdict=str(template["verdict"]),
                    confidence=float(template["confidence"]),
                    weights_version=template["weights_version"],
                    response=response,
                )
            )
            ids.append(verdict_id)
        await session.flush()
    return ids


async def record_outcomes(served: Served, outcomes: Mapping[str, str]) -> None:
    """Record outcomes {verdict id: correct option} in one unit of work (as a dataset would)."""
    async with served.trust() as trust:
        service = OutcomeService(trust)
        for verdict_id, correct in outcomes.items():
            body = OutcomeCreate(correct_option=correct, source=OutcomeSource.DATASET)
            await service.record(verdict_id, body, actor="dataset")


async def seed(served: Served, plan: Mapping[str, Mapping[str, int]]) -> dict[str, list[str]]:
    """Decide one verdict per category through the API, copy it to fill ``plan``, record it."""
    ids: dict[str, list[str]] = {}
    for category, counts in plan.items():
        template = await ask(served.client, category)
        wanted = outcomes_for(counts)
        ids[category] = [
            template["id"],
            *await clone_verdicts(served, template, category=category, n=len(wanted) - 1),
        ]
        await record_outcomes(served, dict(zip(ids[category], wanted, strict=True)))
    return ids


# 40 verdicts with the accuracies of the 200-verdict scenario, rounded: a proposal needs
# ``min_evidence`` 10 to move every cell.
SMALL_PLAN = {
    "deploy": {"approve": 11, "reject": 7, "defer": 2},
    "finance": {"approve": 2, "reject": 8, "defer": 10},
}
# 20 outcomes a category cannot pass the default 5% sign test against the pooled rule; these
# tests exercise the workflow around a per-category rule, so any strict lead keeps it.
SMALL_EVIDENCE = {"min_evidence": 10, "own_rule_p": 1.0}


async def propose(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """Create a proposal (min_evidence 10 unless told otherwise) and return its JSON."""
    response = await client.post("/trust/proposals", json={**SMALL_EVIDENCE, **body})
    assert response.status_code == 201, response.text
    proposal: dict[str, Any] = response.json()
    return proposal


async def approved_version(served: Served) -> dict[str, Any]:
    """Seed the small plan, propose from it and approve: version 1 is active."""
    await seed(served, SMALL_PLAN)
    proposal = await propose(served.client)
    response = await served.client.post(f"/trust/proposals/{proposal['id']}/approve", json=REVIEWER)
    assert response.status_code == 200, response.text
    approved: dict[str, Any] = response.json()
    return approved
