"""Label calibration of a judge's verdict: reading the labels' odds and dividing the prior out.

The pure parts (reading a verdict's odds from a server's logprobs, the division, the prior
cache) are checked on their own; a whole deliberation and a recorded verdict with a scripted
judge whose script gives the logprobs a server would.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlmodel import select

from app.core.config import ModelSpec
from app.deliberation.calibration import (
    LabelPriors,
    Probabilities,
    calibrate,
    option_probabilities,
)
from app.deliberation.judging import judge_fingerprint
from app.deliberation.protocol import deliberate
from app.deliberation.schemas import VerdictRequest
from app.providers.base import TokenLogprobs
from app.providers.openai_compat import parse_completion
from app.verdicts.record.priors import RecordedPriors
from app.verdicts.record.tables import JudgePrior
from tests.builders import RecordingHub, open_bench, scripted_config, step

from .test_protocol import Notes, hearing, run

pytestmark = pytest.mark.anyio

GUARD_S = 20


def _tokens(*pieces: str | tuple[str, dict[str, float]]) -> list[TokenLogprobs]:
    """Build a completion's tokens: a bare piece, or a piece with its alternatives."""
    tokens = []
    for piece in pieces:
        text, top = piece if isinstance(piece, tuple) else (piece, {piece: 0.0})
        tokens.append(TokenLogprobs(token=text, logprob=top.get(text, 0.0), top=top))
    return tokens


def _log(p: float) -> float:
    return math.log(p)


# --- reading the verdict's odds ------------------------------------------------------------


def test_the_odds_are_read_at_the_verdicts_first_token_after_a_code_fence() -> None:
    # Qwen's answer as llama-server reports it: a fence, then the JSON.
    tokens = _tokens(
        "```", "json", "\n", "{\n", " ", ' "', "ver", "dict", '":', ' "',
        ("A", {"A": _log(0.6), "B": _log(0.3), "Answer": _log(0.1)}),
        '",\n',
    )  # fmt: skip
    odds = option_probabilities(tokens, "verdict", ["A", "B"])
    assert odds is not None
    assert odds["A"] == pytest.approx(2 / 3)
    assert odds["B"] == pytest.approx(1 / 3)


def test_a_token_holding_the_opening_quote_and_the_label_is_read_past_the_quote() -> None:
    tokens = _tokens('{"verdict":', (' "no', {' "no': _log(0.2), ' "yes': _log(0.8)}))
    odds = option_probabilities(tokens, "verdict", ["yes", "no"])
    assert odds == pytest.approx({"yes": 0.8, "no": 0.2})


def test_a_label_and_its_closing_quote_in_one_token_count_for_that_option() -> None:
    tokens = _tokens('{"verdict": "', ('yes"', {'yes"': _log(0.5), "no": _log(0.5)}))
    assert option_probabilities(tokens, "verdict", ["yes", "no"]) == pytest.approx(
        {"yes": 0.5, "no": 0.5}
    )


def test_options_that_begin_alike_cannot_be_told_apart_by_their_first_token() -> None:
    tokens = _tokens('{"verdict": "', ("approve", {"approve": _log(0.9), "re": _log(0.1)}))
    assert option_probabilities(tokens, "verdict", ["approve", "approved"]) is None


def test_an_option_missing_from_the_alternatives_gets_the_lowest_listed_odds() -> None:
    tokens = _tokens('{"verdict": "', ("A", {"A": _log(0.9), "The": _log(0.05)}))
    odds = option_probabilities(tokens, "verdict", ["A", "B"])
    assert odds == pytest.approx({"A": 0.9 / 0.95, "B": 0.05 / 0.95})


def test_no_verdict_in_the_tokens_gives_no_odds() -> None:
    tokens = _tokens('{"position": "', ("A", {"A": 0.0}))
    assert option_probabilities(tokens, "verdict", ["A", "B"]) is None


def test_a_servers_logprobs_are_read_from_its_chat_completion() -> None:
    content = {
        "choices": [
            {
                "message": {"content": '{"verdict": "A"}'},
                "logprobs": {
                    "content": [
                        {
                            "token": "A",
                            "logprob": -0.1,
                            "top_logprobs": [
                                {"token": "A", "logprob": -0.1},
                                {"token": "B", "logprob": -2.3},
                            ],
                        }
                    ]
                },
            }
        ]
    }
    spec = scripted_config(jurors={"a": [step("approve")], "b": [step("reject")]}).jurors[0]
    completion = parse_completion(spec, _json_bytes(content))
    assert completion.tokens == (
        TokenLogprobs(token="A", logprob=-0.1, top={"A": -0.1, "B": -2.3}),
    )
    plain = parse_completion(spec, _json_bytes({"choices": [{"message": {"content": "{}"}}]}))
    assert plain.tokens is None


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- the division and the prior ---------------------------------------------------------------


def test_calibration_divides_the_prior_out() -> None:
    # The judge leans to A on everything (0.8 on a blank case); 0.7 for A here is a lean to B.
    calibrated = calibrate({"A": 0.7, "B": 0.3}, {"A": 0.8, "B": 0.2})
    assert calibrated["B"] > calibrated["A"]
    assert sum(calibrated.values()) == pytest.approx(1.0)
    assert calibrated["A"] == pytest.approx((0.7 / 0.8) / (0.7 / 0.8 + 0.3 / 0.2))


def test_a_flat_prior_changes_nothing() -> None:
    assert calibrate({"A": 0.7, "B": 0.3}, {"A": 0.5, "B": 0.5}) == pytest.approx(
        {"A": 0.7, "B": 0.3}
    )


async def test_a_prior_is_measured_once_for_concurrent_verdicts_and_a_failure_is_not_kept() -> None:
    priors = LabelPriors()
    measured: list[str] = []

    async def measure() -> Probabilities | None:
        measured.append("x")
        await anyio.sleep(0.01)
        return {"A": 0.6, "B": 0.4}

    key = ("judge", "f1", ("A", "B"), "v1")
    seen: list[Probabilities | None] = []

    async def ask() -> None:
        seen.append(await priors.prior(key, measure))

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(ask)
    assert measured == ["x"]
    assert seen == [{"A": 0.6, "B": 0.4}] * 3

    async def failing() -> Probabilities | None:
        measured.append("failed")
        return None

    other = ("judge", "f1", ("yes", "no"), "v1")
    assert await priors.prior(other, failing) is None
    assert await priors.prior(other, measure) == {"A": 0.6, "B": 0.4}
    assert measured == ["x", "failed", "x"]


async def test_the_prior_cache_keeps_only_the_latest_options_sets() -> None:
    priors = LabelPriors(kept=2)
    calls: list[tuple[str, ...]] = []

    def measuring(options: tuple[str, ...]) -> Any:
        async def measure() -> Probabilities | None:
            calls.append(options)
            return dict.fromkeys(options, 1 / len(options))

        return measure

    for options in [("a", "b"), ("c", "d"), ("e", "f"), ("a", "b")]:
        await priors.prior(("judge", "f1", options, "v1"), measuring(options))
    # ("a", "b") was evicted by ("e", "f") and measured again.
    assert calls == [("a", "b"), ("c", "d"), ("e", "f"), ("a", "b")]


# --- a calibrated judge in a deliberation ----------------------------------------------------


def _calibrated_config(judge_step: dict[str, Any]) -> Any:
    return scripted_config(
        jurors={"a": [step("approve")], "b": [step("approve")], "c": [step("reject")]},
        judge=[judge_step],
        judge_overrides={"label_calibration": "content_free"},
        max_rounds=1,
    )


LEANS_APPROVE = {"approve": _log(0.8), "reject": _log(0.2)}
"""What the scripted judge's logprobs say on a blank case: it leans to approve anyway."""


async def test_a_calibrated_judge_gives_the_option_its_prior_hides() -> None:
    judge = step(
        "approve",
        confidence=0.9,
        label_logprobs={"approve": _log(0.7), "reject": _log(0.3)},
        label_prior=LEANS_APPROVE,
    )
    transcript, notes = await run(_calibrated_config(judge))

    outcome = transcript.judge
    assert outcome is not None
    assert outcome.answer is not None
    # The scripted judge would say approve; calibrated, 0.7/0.8 against 0.3/0.2 is reject.
    assert outcome.answer.verdict == "reject"
    decided = outcome.calibration
    assert decided is not None
    assert decided.uncalibrated == "approve"
    assert decided.flipped
    assert decided.prior == pytest.approx({"approve": 0.8, "reject": 0.2})
    # Its confidence is capped at the calibrated odds of the verdict it gives.
    assert outcome.answer.confidence == pytest.approx(decided.calibrated["reject"])
    assert outcome.answer.confidence < 0.9
    # The probes are charged to the judge's call (each scripted call: 50 prompt tokens).
    assert outcome.prompt_tokens == 3 * 50
    assert notes.judged == [outcome]


async def test_a_calibrated_judge_whose_choice_stands_keeps_its_verdict() -> None:
    judge = step(
        "approve",
        confidence=0.6,
        label_logprobs={"approve": _log(0.95), "reject": _log(0.05)},
        label_prior=LEANS_APPROVE,
    )
    transcript, _ = await run(_calibrated_config(judge))

    outcome = transcript.judge
    assert outcome is not None
    assert outcome.answer is not None
    assert outcome.answer.verdict == "approve"
    assert outcome.calibration is not None
    assert not outcome.calibration.flipped
    # Below the calibrated odds, the judge's own confidence stands.
    assert outcome.answer.confidence == pytest.approx(0.6)


async def test_a_judge_whose_server_gives_no_logprobs_is_uncalibrated_and_says_so() -> None:
    transcript, _ = await run(_calibrated_config(step("approve", confidence=0.9)))

    outcome = transcript.judge
    assert outcome is not None
    assert outcome.answer is not None
    assert outcome.answer.verdict == "approve"
    assert outcome.answer.confidence == pytest.approx(0.9)
    assert outcome.calibration is None
    assert outcome.calibration_skipped == "no_logprobs"


async def test_a_prior_that_failed_is_not_measured_again_at_the_verdict() -> None:
    """A second probe on the judge's path would also evict its read-ahead from the server."""
    config = _calibrated_config(step("approve", confidence=0.9))
    hub = RecordingHub(config)
    try:
        transcript = await deliberate(hub, hearing(config, max_rounds=1), Notes())
    finally:
        await hub.aclose()

    assert [request.purpose for request in hub.called("judge")] == ["prior", "answer"]
    assert transcript.judge is not None
    assert transcript.judge.calibration_skipped == "no_logprobs"


def _judge_that_flips_once_calibrated() -> dict[str, Any]:
    """Return a judge that says approve at 0.7 while its prior leans further to approve."""
    return step(
        "approve",
        label_logprobs={"approve": _log(0.7), "reject": _log(0.3)},
        label_prior=LEANS_APPROVE,
    )


async def test_a_verdict_records_its_calibration_with_the_judges_call(sqlite_database: str) -> None:
    config = _calibrated_config(_judge_that_flips_once_calibrated())

    def flipped() -> float:
        labels = {"judge": "judge", "outcome": "flipped"}
        return REGISTRY.get_sample_value("jury_judge_calibrations_total", labels) or 0.0

    before = flipped()
    async with open_bench(sqlite_database, config) as bench:
        with anyio.fail_after(GUARD_S):
            verdict = await bench.service.decide(VerdictRequest(question="Ship release 4.2?"))
        calls = await bench.calls(verdict.id)

    assert verdict.verdict == "reject"
    assert verdict.judge.calibration is not None
    assert verdict.judge.calibration.uncalibrated_verdict == "approve"
    assert verdict.judge.calibration.flipped
    (judge_call,) = [c for c in calls if c.role == "judge"]
    assert judge_call.position == "reject"
    assert judge_call.parsed is not None
    recorded = judge_call.parsed["label_calibration"]
    assert recorded["uncalibrated_verdict"] == "approve"
    assert recorded["calibrated"]["reject"] == pytest.approx(
        verdict.judge.calibration.calibrated["reject"], abs=1e-4
    )
    assert flipped() - before == 1


async def test_a_prior_measured_by_one_process_is_read_by_the_next(database_url: str) -> None:
    config = _calibrated_config(_judge_that_flips_once_calibrated())
    spent: list[int] = []
    for _ in range(2):
        # A runtime of its own each time, as each ``jury ask`` process opens.
        async with open_bench(database_url, config) as bench:
            with anyio.fail_after(GUARD_S):
                verdict = await bench.service.decide(VerdictRequest(question="Ship 4.2?"))
            (judge_call,) = [c for c in await bench.calls(verdict.id) if c.role == "judge"]
            spent.append(judge_call.prompt_tokens)
            assert verdict.verdict == "reject"
            assert verdict.judge.calibration is not None
            assert verdict.judge.calibration.prior == pytest.approx(
                {"approve": 0.8, "reject": 0.2}, abs=1e-4
            )
            async with bench.sessionmaker() as session:
                kept = (await session.exec(select(JudgePrior))).all()
    # Each scripted call reads 50 prompt tokens: prior, probe and answer, then probe and answer.
    assert spent == [3 * 50, 2 * 50]
    (row,) = kept
    assert row.judge == "judge"
    assert row.options == ["approve", "reject"]
    assert row.prior == pytest.approx({"approve": 0.8, "reject": 0.2})


async def test_a_kept_prior_for_another_options_set_or_judge_spec_is_not_read(
    sqlite_database: str,
) -> None:
    config = _calibrated_config(step("approve"))
    async with open_bench(sqlite_database, config) as bench:
        store = RecordedPriors(bench.sessionmaker)
        key = ("judge", "f1", ("approve", "reject"), "v1")
        await store.save(key, {"approve": 0.8, "reject": 0.2})
        # A concurrent process's measure of the same key does not replace the first.
        await store.save(key, {"approve": 0.5, "reject": 0.5})
        assert await store.load(key) == {"approve": 0.8, "reject": 0.2}
        assert await store.load(("judge", "f2", ("approve", "reject"), "v1")) is None
        assert await store.load(("judge", "f1", ("yes", "no"), "v1")) is None
        assert await store.load(("judge", "f1", ("approve", "reject"), "v2")) is None


def test_a_judges_fingerprint_changes_with_its_model_not_its_timeout() -> None:
    judge = ModelSpec(name="judge", model="openai/qwen", family="qwen", timeout_s=30)
    assert judge_fingerprint(judge) == judge_fingerprint(judge.model_copy(update={"timeout_s": 90}))
    other = judge.model_copy(update={"model": "openai/qwen-7b"})
    assert judge_fingerprint(judge) != judge_fingerprint(other)


# --- configuration ----------------------------------------------------------------------------


def test_label_calibration_needs_a_transport_that_returns_logprobs() -> None:
    with pytest.raises(
        ValidationError, match="label_calibration needs transport openai_compatible"
    ):
        scripted_config(
            jurors={"a": [step("approve")], "b": [step("reject")]},
            judge_overrides={
                "model": "openai/gpt-4o-mini",
                "script": None,
                "label_calibration": "content_free",
            },
        )


def test_label_calibration_is_for_judges_only() -> None:
    with pytest.raises(ValidationError, match="label_calibration is for judges only"):
        scripted_config(
            jurors={"a": [step("approve")], "b": [step("reject")]},
            juror_overrides={"a": {"label_calibration": "content_free"}},
        )
