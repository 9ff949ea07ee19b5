"""A sequential verdict end to end: scripted jurors convened cheapest first, the record kept.

The category ``deploy`` is sequential; ``default`` is not. Each test asserts who was convened
and why convening stopped, in the response, in the verdict row and in the stored calls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from app.core.config import CategoryPolicy, JuryConfig
from app.deliberation.assembly import Docket, RiskBound
from app.deliberation.schemas import VerdictOut, VerdictRequest
from app.verdicts.preparation import sequential_plan
from tests.builders import Bench, FixedWeights, open_bench, scripted_config, step

pytestmark = pytest.mark.anyio

GUARD_S = 20

# Costs in USD per million tokens; "free" is a local model, "gpt" the dearest.
COSTS = {"gpt": 45.0, "mini": 1.0, "free": 0.0, "spare": 3.0}


def config(**categories: Any) -> JuryConfig:
    return scripted_config(
        jurors={
            "gpt": [step("approve"), step("approve")],
            "mini": [step("approve"), step("approve")],
            "free": [step("reject"), step("approve")],
            "spare": [step("approve"), step("approve")],
        },
        juror_overrides={name: {"cost": cost} for name, cost in COSTS.items()},
        categories={"deploy": {"sequential": True, **categories}},
        quorum=2,
        max_rounds=2,
    )


async def decide(bench: Bench, category: str) -> VerdictOut:
    with anyio.fail_after(GUARD_S):
        return await bench.service.decide(
            VerdictRequest(question="Ship release 4.2?", category=category)
        )


async def test_a_sequential_verdict_records_who_was_convened_and_why_it_stopped(
    database_url: str,
) -> None:
    # Weights as an approved rule would give them; the judge still decides.
    weights = FixedWeights(version=3, weights={"gpt": 2.0, "mini": 1.0, "free": 1.0, "spare": 1.0})
    async with open_bench(database_url, config(sequential_target=0.9), weights=weights) as bench:
        verdict = await decide(bench, "deploy")
        row = await bench.verdict_row(verdict.id)
        calls = await bench.calls(verdict.id)

    sequential = verdict.sequential
    assert sequential is not None
    assert sequential.order == ["free", "mini", "spare", "gpt"]
    # free (reject) and mini (approve) tie 1 to 1; spare makes it 2 to 1: lead 1 < gpt's 2
    # and posterior exp(2)/(exp(2)+exp(1)) = 0.731 < 0.9, so gpt is called: 4 to 1, nobody
    # left. Round 2 sits all four.
    assert sequential.convened == ["free", "mini", "spare", "gpt"]
    assert sequential.stop == "panel_exhausted"
    assert (row.convened, row.convening_stop) == (4, "panel_exhausted")
    assert row.response is not None
    assert row.response["sequential"]["stop"] == "panel_exhausted"
    assert len(calls) == 4 + 4 + 1


async def test_a_settled_verdict_leaves_the_dearest_juror_uncalled(database_url: str) -> None:
    weights = FixedWeights(version=3, weights={"gpt": 0.5, "mini": 1.0, "free": 1.0, "spare": 2.0})
    async with open_bench(database_url, config(sequential_target=0.99), weights=weights) as bench:
        verdict = await decide(bench, "deploy")
        row = await bench.verdict_row(verdict.id)
        calls = await bench.calls(verdict.id)

    sequential = verdict.sequential
    assert sequential is not None
    # free 0, mini 1, spare 3, gpt 45: free (reject 1) and mini (approve 1) tie; spare
    # (approve 2) makes it 3 to 1, lead 2 > 0.5 still out (gpt): settled.
    assert sequential.order == ["free", "mini", "spare", "gpt"]
    assert sequential.convened == ["free", "mini", "spare"]
    assert sequential.not_convened == ["gpt"]
    assert sequential.stop == "settled"
    assert sequential.leader == "approve"
    assert (row.convened, row.convening_stop) == (3, "settled")
    # Round 2 (free changes to approve) sits the three convened jurors only, then the judge.
    assert [[p.juror for p in r.positions] for r in verdict.rounds] == [
        ["mini", "free", "spare"],
        ["mini", "free", "spare"],
    ]
    assert {call.juror for call in calls} == {"mini", "free", "spare", "judge"}
    assert verdict.usage.calls == 3 + 3 + 1
    assert verdict.verdict == "approve"


async def test_a_category_without_the_mode_sits_the_whole_panel(database_url: str) -> None:
    async with open_bench(database_url, config()) as bench:
        verdict = await decide(bench, "default")
        row = await bench.verdict_row(verdict.id)

    assert verdict.sequential is None
    assert (row.convened, row.convening_stop) == (None, None)
    assert len(verdict.rounds[0].positions) == 4


def docket(policy: CategoryPolicy, threshold: float | None) -> Docket:
    return Docket(
        verdict_id="v1",
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        question="Ship?",
        options=("approve", "reject"),
        category="deploy",
        panel="default",
        judge=None,
        judge_recused=False,
        recused=(),
        policy=policy,
        weights={"gpt": 0.0},
        weights_version=1,
        metadata={},
        risk=RiskBound(alpha=0.1, delta=0.1, threshold=threshold, n=100),
    )


def test_the_risk_threshold_raises_the_target_but_never_lowers_it() -> None:
    jurors = config().jurors
    policy = CategoryPolicy(sequential=True, sequential_target=0.9)

    high = sequential_plan(jurors, docket(policy, 0.97))
    low = sequential_plan(jurors, docket(policy, 0.0))
    none = sequential_plan(jurors, docket(policy, None))
    off = sequential_plan(jurors, docket(CategoryPolicy(), 0.97))

    assert high is not None
    assert low is not None
    assert none is not None
    assert off is None
    assert (high.target, high.target_source) == (0.97, "risk")
    # A threshold of 0 covers every whole-panel verdict; it would stop a partial one on a tie.
    assert (low.target, low.target_source) == (0.9, "policy")
    assert (none.target, none.target_source) == (0.9, "policy")
    # gpt weighs 0 under the rule: last, though the others are ordered by cost.
    assert high.order == ("free", "mini", "spare", "gpt")
