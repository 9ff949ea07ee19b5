"""How a local juror is asked and read: no evidence unless told, a cut reasoning marked cut.

A small local model's evidence was a cut-off repeat of its reasoning, decoded at about a fifth of
its answer's tokens: local jurors answer position, confidence and reasoning only. Their server's
grammar closes a reasoning at its length bound, often inside a word: that one reads as cut.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import JuryConfig, ModelSpec
from app.deliberation import prompts
from app.deliberation.answers import (
    LOCAL_REASONING_CUT_AT,
    juror_schema,
    marked_cut,
    parse_juror_answer,
)
from app.deliberation.protocol import _juror_plan, deliberate
from tests.builders import RecordingHub, scripted_config, step

from .test_protocol import Notes, hearing

LOCAL = {
    "name": "small",
    "model": "openai/smollm2-135m",
    "family": "smollm",
    "local": {"catalog": "smollm2-135m", "port": 8471},
    "transport": "openai_compatible",
}
HOSTED = {"name": "hosted", "model": "anthropic/claude-sonnet-4-5", "family": "claude"}
CASE = prompts.Case(
    question="Drop the table?", options=("approve", "reject"), context=None, nonce="n"
)


def test_hosted_jurors_are_asked_for_evidence_and_local_ones_are_not() -> None:
    assert ModelSpec.model_validate(HOSTED).asks_evidence
    assert not ModelSpec.model_validate(LOCAL).asks_evidence
    assert ModelSpec.model_validate({**LOCAL, "evidence": True}).asks_evidence
    assert not ModelSpec.model_validate({**HOSTED, "evidence": False}).asks_evidence


def test_a_judge_may_not_be_told_about_evidence() -> None:
    with pytest.raises(ValidationError, match="judge 'judge': evidence is for jurors only"):
        scripted_config(jurors={"a": [step("approve")]}, judge_overrides={"evidence": False})


def test_the_schema_and_the_format_without_evidence_do_not_mention_it() -> None:
    schema = juror_schema(["yes", "no"], evidence=False)

    assert list(schema["properties"]) == ["position", "confidence", "reasoning"]
    assert schema["required"] == ["position", "confidence", "reasoning"]
    assert "evidence" in juror_schema(["yes", "no"])["required"]
    assert "evidence" not in prompts.JUROR_FORMAT_WITHOUT_EVIDENCE
    answer = parse_juror_answer(
        '{"position": "yes", "confidence": 0.6, "reasoning": "The backup ran an hour ago."}',
        ["yes", "no"],
    )
    assert answer.evidence is None


def _mixed_panel() -> JuryConfig:
    evidence = "The changelog lists no migration."
    return scripted_config(
        jurors={
            "plain": [step("approve", evidence=evidence), step("approve", evidence=evidence)],
            "asked": [step("reject", evidence=evidence), step("reject", evidence=evidence)],
        },
        juror_overrides={"plain": {"evidence": False}},
        max_rounds=2,
    )


@pytest.mark.anyio
async def test_each_juror_is_asked_in_its_own_form_in_every_round() -> None:
    config = _mixed_panel()
    hub = RecordingHub(config)
    try:
        transcript = await deliberate(hub, hearing(config, max_rounds=2), Notes())
    finally:
        await hub.aclose()

    for name, asked in (("plain", False), ("asked", True)):
        requests = hub.called(name)
        assert [r.round_number for r in requests] == [1, 2]
        for request in requests:
            assert ("evidence" in request.output_schema["properties"]) is asked
            prompt = request.messages[-1].content
            assert (prompts.JUROR_FORMAT in prompt) is asked
            assert (prompts.JUROR_FORMAT_WITHOUT_EVIDENCE in prompt) is not asked
    for turns in transcript.rounds:
        evidence = {
            turn.juror: turn.outcome.answer.evidence for turn in turns if turn.outcome.answer
        }
        assert evidence == {"plain": None, "asked": "The changelog lists no migration."}


CUT_REASON = (
    "Running 'DROP TABLE users' on the production database to free disk space is not safe "
    "because it will remove all data from the table, which can lead to data loss in a"
)


def test_a_reasoning_the_local_bound_cut_ends_at_a_whole_word_marked_as_cut() -> None:
    bound = len(CUT_REASON)
    answer = parse_juror_answer(
        f'{{"position": "no", "confidence": 0.7, "reasoning": "{CUT_REASON}"}}',
        ["yes", "no"],
        cut_at=bound,
    )

    assert answer.reasoning == CUT_REASON.removesuffix(" a") + "\u2026"
    assert marked_cut(CUT_REASON, bound + 1) == CUT_REASON  # shorter than the bound: whole
    assert marked_cut("It ends as a sentence.", 10) == "It ends as a sentence."
    assert marked_cut("The backup is missing, and", 10) == "The backup is missing\u2026"


@pytest.mark.anyio
async def test_only_a_local_jurors_reasoning_is_read_against_the_bound() -> None:
    config = _mixed_panel()
    local = ModelSpec.model_validate(LOCAL)
    reasoning = CUT_REASON[:LOCAL_REASONING_CUT_AT]
    text = f'{{"position": "reject", "confidence": 0.7, "reasoning": "{reasoning}"}}'

    for juror, marked in ((local, True), (config.juror("asked"), False)):
        plan = _juror_plan(hearing(config), juror, 1, {}, prompts.first_round(CASE))
        assert plan.parse(text).reasoning.endswith("\u2026") is marked
