"""The sequential stop rule, by hand, and the protocol convening a scripted panel in cost order.

The pure cases are computed by hand: the posterior of an option is exp(its summed weight)
over the sum of those, and "settled" means the leader's lead exceeds the weight not yet heard.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

from app.core.clock import Deadline
from app.core.config import JuryConfig
from app.deliberation.prompts import Case
from app.deliberation.protocol import Hearing, NoQuorumReachedError, Transcript, deliberate
from app.deliberation.sequential import (
    SequentialPlan,
    convening_order,
    posterior,
    standing,
    stop_convening,
)
from app.providers.pricing import call_cost
from tests.builders import OPTIONS, RecordingHub, scripted_config, step

AB = ("A", "B")
GUARD_S = 20


def plan(weights: dict[str, float], target: float = 0.95, *order: str) -> SequentialPlan:
    return SequentialPlan(order=tuple(order or weights), weights=weights, target=target)


# --- the pure rule, by hand -------------------------------------------------------------


def test_the_posterior_is_the_softmax_of_the_summed_weights() -> None:
    # exp(2) / (exp(2) + exp(0)) = 7.389 / 8.389 = 0.8808
    result = posterior({"A": 2.0, "B": 0.0})
    assert result["A"] == pytest.approx(0.880797, abs=1e-6)
    assert result["B"] == pytest.approx(0.119203, abs=1e-6)
    assert posterior({"A": 0.0, "B": 0.0}) == {"A": 0.5, "B": 0.5}


def test_the_order_is_weighted_jurors_cheapest_first_then_weightless_ones() -> None:
    costs = {"gpt4": 45.0, "local": 0.0, "mini": 1.0, "ignored": 0.0}
    weights = {"gpt4": 2.0, "local": 0.5, "mini": 1.0, "ignored": 0.0}

    order = convening_order(["gpt4", "local", "mini", "ignored"], costs, weights)

    # "ignored" is free but weighs 0 under the approved rule: it cannot move the posterior.
    assert order == ("local", "mini", "gpt4", "ignored")


def test_a_juror_the_rule_does_not_name_weighs_neutral_one() -> None:
    now = standing({"x": "A"}, ["y"], {}, AB)
    # x and y weigh 1 each: A leads by 1, and 1 is still out.
    assert (now.leader, now.margin, now.remaining_weight) == ("A", 1.0, 1.0)
    assert now.posterior == pytest.approx(math.e / (math.e + 1))


def test_below_the_quorum_convening_goes_on_even_when_the_posterior_is_high() -> None:
    stop, _ = stop_convening({"a": "A"}, ["b"], plan({"a": 10.0, "b": 1.0}), AB, quorum=2)
    assert stop is None


def test_settled_when_the_lead_exceeds_the_weight_not_yet_heard() -> None:
    weights = {"a": 1.5, "b": 1.0, "c": 1.0, "d": 0.4}
    # a and b vote A (2.5), c votes B (1.0): lead 1.5 > 0.4 still out (d). Posterior
    # exp(2.5)/(exp(2.5)+exp(1)) = 0.8176, below the 0.95 target: settled, not target.
    stop, now = stop_convening(
        {"a": "A", "b": "A", "c": "B"}, ["d"], plan(weights, 0.95), AB, quorum=2
    )
    assert stop == "settled"
    assert now.leader == "A"
    assert now.margin == pytest.approx(1.5)
    assert now.posterior == pytest.approx(0.817574, abs=1e-6)


def test_a_lead_equal_to_the_weight_still_out_is_not_settled() -> None:
    # A 2.0 vs B 1.0: lead 1.0, and d's 1.0 could tie it (the tie-break would then decide).
    weights = {"a": 2.0, "c": 1.0, "d": 1.0}
    stop, _ = stop_convening({"a": "A", "c": "B"}, ["d"], plan(weights, 0.99), AB, quorum=2)
    assert stop is None


def test_target_when_the_posterior_passes_it_though_the_rest_could_still_overturn() -> None:
    weights = {"a": 2.0, "b": 1.5, "c": 3.0, "d": 3.0}
    # A 3.5 vs B 0: posterior exp(3.5)/(exp(3.5)+1) = 0.9707 >= 0.95, but c and d (6.0)
    # could still overturn a lead of 3.5: the target stops it.
    stop, now = stop_convening({"a": "A", "b": "A"}, ["c", "d"], plan(weights, 0.95), AB, quorum=2)
    assert stop == "target"
    assert now.posterior == pytest.approx(0.970688, abs=1e-6)
    stop, _ = stop_convening({"a": "A", "b": "A"}, ["c", "d"], plan(weights, 0.98), AB, quorum=2)
    assert stop is None


def test_the_single_juror_rule_settles_once_its_juror_and_the_quorum_are_in() -> None:
    weights = {"gpt4": 1.0, "x": 0.0, "y": 0.0}
    # gpt4 votes B, x votes A: B leads 1.0 to 0.0 and only y (weight 0) is out.
    stop, now = stop_convening({"gpt4": "B", "x": "A"}, ["y"], plan(weights), AB, quorum=2)
    assert (stop, now.leader) == ("settled", "B")


def test_weightless_votes_alone_never_lead() -> None:
    weights = {"gpt4": 1.0, "x": 0.0, "y": 0.0}
    stop, now = stop_convening({"x": "A", "y": "A"}, ["gpt4"], plan(weights), AB, quorum=2)
    assert stop is None
    assert now.leader is None


def test_exhausted_and_deadline_end_convening() -> None:
    weights = {"a": 1.0, "b": 1.0}
    assert stop_convening({"a": "A", "b": "B"}, [], plan(weights), AB, quorum=2)[0] == (
        "panel_exhausted"
    )
    stop, _ = stop_convening({"a": "A"}, ["b"], plan(weights), AB, quorum=2, deadline_passed=True)
    assert stop == "deadline"


def test_the_cost_of_a_call_is_configured_known_or_free() -> None:
    config = scripted_config(
        jurors={"a": [step("approve")], "b": [step("approve")]},
        juror_overrides={"a": {"cost": 3.5}},
        extra_jurors=[{"name": "hosted", "model": "gpt-4", "family": "openai"}],
    )
    assert call_cost(config.juror("a")) == 3.5
    assert call_cost(config.juror("b")) == 0.0  # scripted: nothing paid per call
    # litellm's list price of gpt-4: $30 in, $60 out per million tokens.
    assert call_cost(config.juror("hosted")) == pytest.approx(45.0)


# --- the protocol with a scripted panel -------------------------------------------------


def sequential_config(jurors: dict[str, list[dict[str, Any]]], **protocol: Any) -> JuryConfig:
    return scripted_config(jurors=jurors, **protocol)


def seat(config: JuryConfig, sequential: SequentialPlan, *, max_rounds: int = 1) -> Hearing:
    panel = config.panels["default"]
    return Hearing(
        case=Case(question="Ship release 4.2?", options=OPTIONS, context=None, nonce="n0nce"),
        jurors=tuple(config.juror(name) for name in panel.jurors),
        judge=config.judge_for(panel),
        max_rounds=max_rounds,
        quorum=config.quorum(panel),
        early_stop=True,
        deadline=Deadline.after(30),
        seed="seed",
        sequential=sequential,
    )


class Silent:
    async def juror_answered(self, turn: Any) -> None:
        return None

    async def round_finished(self, number: int, turns: Any) -> None:
        return None

    async def judge_answered(self, outcome: Any) -> None:
        return None


async def hear(config: JuryConfig, hearing: Hearing) -> tuple[Transcript, RecordingHub]:
    hub = RecordingHub(config)
    try:
        with anyio.fail_after(GUARD_S):
            return await deliberate(hub, hearing, Silent()), hub
    finally:
        await hub.aclose()


@pytest.mark.anyio
async def test_a_settled_panel_stops_convening_and_never_calls_the_rest() -> None:
    config = sequential_config(
        {n: [step("approve")] for n in ("pricey", "cheap", "mid", "spare")}, quorum=2
    )
    costs = {"pricey": 40.0, "cheap": 0.0, "mid": 2.0, "spare": 5.0}
    weights = {"pricey": 1.0, "cheap": 1.0, "mid": 1.0, "spare": 1.0}
    names = ["pricey", "cheap", "mid", "spare"]
    order = convening_order(names, costs, weights)
    assert order == ("cheap", "mid", "spare", "pricey")

    transcript, hub = await hear(config, seat(config, SequentialPlan(order, weights, 0.99)))

    # cheap and mid agree (2 to 0, posterior 0.88 < 0.99); 2 > 2 still out is false, so
    # spare is called: 3 to 0, lead 3 > 1 (pricey): settled, pricey is never asked.
    called = [name for name, _ in hub.requests if name != "judge"]
    # The quorum's two are asked at once (either may answer first), then one at a time.
    assert sorted(called[:2]) == ["cheap", "mid"]
    assert called[2:] == ["spare"]
    assert transcript.convening is not None
    assert transcript.convening.convened == ("cheap", "mid", "spare")
    assert transcript.convening.stop == "settled"
    assert [t.juror for t in transcript.rounds[0]] == ["cheap", "mid", "spare"]


@pytest.mark.anyio
async def test_rebuttal_rounds_sit_only_the_convened_jurors() -> None:
    config = sequential_config(
        {
            "a": [step("approve"), step("approve")],
            "b": [step("reject"), step("approve")],
            "c": [step("approve"), step("approve")],
            "d": [step("reject"), step("reject")],
        },
        quorum=2,
    )
    # a and b split (1 to 1), c breaks it (2 to 1) and the target 0.7 is met
    # (exp(2)/(exp(2)+exp(1)) = 0.731); d is never convened.
    weights = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}
    hearing = seat(config, SequentialPlan(("a", "b", "c", "d"), weights, 0.7), max_rounds=2)

    transcript, hub = await hear(config, hearing)

    assert transcript.convening is not None
    assert (transcript.convening.convened, transcript.convening.stop) == (("a", "b", "c"), "target")
    assert len(transcript.rounds) == 2
    assert [t.juror for t in transcript.rounds[1]] == ["a", "b", "c"]
    assert hub.called("d") == []
    # The rebuttal shows each juror the other convened jurors only: two arguments.
    rebuttal = hub.called("a")[1].messages[-1].content
    assert "Juror A:" in rebuttal
    assert "Juror B:" in rebuttal
    assert "Juror C:" not in rebuttal


@pytest.mark.anyio
async def test_a_failed_juror_does_not_count_and_the_next_one_is_called() -> None:
    config = sequential_config(
        {
            "a": [step(failure="error")],
            "b": [step("approve")],
            "c": [step("approve")],
        },
        quorum=2,
    )
    weights = {"a": 1.0, "b": 1.0, "c": 1.0}

    transcript, _ = await hear(config, seat(config, SequentialPlan(("a", "b", "c"), weights, 0.8)))

    assert transcript.convening is not None
    assert transcript.convening.convened == ("a", "b", "c")
    # b and c agree: 2 to 0, nobody left.
    assert transcript.convening.stop == "panel_exhausted"


@pytest.mark.anyio
async def test_below_quorum_after_everyone_is_no_quorum() -> None:
    config = sequential_config({"a": [step(failure="error")], "b": [step("approve")]}, quorum=2)
    weights = {"a": 1.0, "b": 1.0}

    with pytest.raises(NoQuorumReachedError):
        await hear(config, seat(config, SequentialPlan(("a", "b"), weights, 0.8)))
