"""A quoting judge (``sides: quoted``) names the juror with each side's strongest argument.

Jury then quotes that juror's final reasoning as the side's argument: the judge decodes a label
per side instead of two sentences, and the disagreement still names every position and says why.
"""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from app.deliberation import prompts
from app.deliberation.answers import (
    JudgeForm,
    parse_quoting_judge_answer,
    quoting_judge_schema,
)
from app.deliberation.protocol import deliberate
from app.providers.chat import LOCAL_TEXT_BOUNDS, bounded_schema
from app.providers.errors import InvalidOutputError
from tests.builders import RecordingHub, scripted_config, step

from .test_protocol import Notes, hearing, run

OPTIONS = ("approve", "reject")
TESTS_PASS = prompts.Argument("Juror B", "approve", 0.9, "The tests pass on CI and in staging.")
NO_BACKUP = prompts.Argument("Juror A", "reject", 0.8, "There is no backup step before the drop.")
NO_ROLLBACK = prompts.Argument("Juror C", "reject", 0.6, "Nothing says how to roll it back")
SPLIT = (TESTS_PASS, NO_BACKUP, NO_ROLLBACK)


def log(probability: float) -> float:
    return math.log(probability)


def quoting(sides: dict[str, str], verdict: str = "reject") -> str:
    return json.dumps({"verdict": verdict, "confidence": 0.7, "sides": sides})


def test_each_side_offers_only_the_jurors_who_held_it_and_no_notes() -> None:
    schema = quoting_judge_schema(OPTIONS, SPLIT)

    sides = schema["properties"]["sides"]
    assert sides["properties"] == {
        "approve": {"type": "string", "enum": ["Juror B"]},
        "reject": {"type": "string", "enum": ["Juror A", "Juror C"]},
    }
    assert sides["required"] == ["approve", "reject"]
    assert "dissenter_notes" not in schema["properties"]
    assert schema["required"] == ["verdict", "confidence", "sides"]
    # A local server's length bounds leave the enums alone: a label is not free text.
    assert bounded_schema(schema)["properties"]["sides"] == sides


def test_agreeing_jurors_give_one_side_any_of_them_may_argue() -> None:
    schema = quoting_judge_schema(OPTIONS, (NO_BACKUP, NO_ROLLBACK))

    assert schema["properties"]["sides"]["properties"] == {
        "reject": {"type": "string", "enum": ["Juror A", "Juror C"]}
    }
    answer = parse_quoting_judge_answer(
        quoting({"reject": "Juror A"}), OPTIONS, (NO_BACKUP, NO_ROLLBACK)
    )
    assert answer.disagreement == (
        "The jurors agreed on reject: There is no backup step before the drop."
    )


def test_the_named_jurors_reasons_become_a_disagreement_naming_each_position() -> None:
    answer = parse_quoting_judge_answer(
        quoting({"reject": "Juror C", "approve": "Juror B"}), OPTIONS, SPLIT
    )

    assert answer.verdict == "reject"
    assert answer.disagreement == (
        "For approve: The tests pass on CI and in staging. "
        "For reject: Nothing says how to roll it back."
    )


def test_a_side_must_name_a_juror_who_held_it_and_every_side_is_argued() -> None:
    with pytest.raises(
        InvalidOutputError, match=r"^sides\.approve: 'Juror A' did not hold approve; name one of"
    ):
        parse_quoting_judge_answer(
            quoting({"approve": "Juror A", "reject": "Juror C"}), OPTIONS, SPLIT
        )
    with pytest.raises(InvalidOutputError, match=r"^sides\.reject: 'Juror Z' did not hold"):
        parse_quoting_judge_answer(
            quoting({"approve": "Juror B", "reject": "Juror Z"}), OPTIONS, SPLIT
        )
    with pytest.raises(InvalidOutputError, match=r"^sides: give the argument for approve too$"):
        parse_quoting_judge_answer(quoting({"reject": "Juror A"}), OPTIONS, SPLIT)
    with pytest.raises(InvalidOutputError, match=r"^sides: name the juror"):
        parse_quoting_judge_answer(
            json.dumps({"verdict": "reject", "confidence": 0.7, "disagreement": "They split."}),
            OPTIONS,
            SPLIT,
        )


def test_a_reason_cut_at_the_jurors_bound_is_quoted_with_an_ellipsis() -> None:
    bound = LOCAL_TEXT_BOUNDS["reasoning"][1]
    cut = ("Dropping the table frees space, but the users' data goes with it, " * 4)[:bound]
    assert cut.endswith(" spa")
    cut_juror = prompts.Argument("Juror B", "approve", 0.5, cut)

    answer = parse_quoting_judge_answer(
        quoting({"approve": "Juror B", "reject": "Juror A"}), OPTIONS, (cut_juror, NO_BACKUP)
    )

    assert answer.disagreement is not None
    assert answer.disagreement.startswith(f"For approve: {cut}\u2026 For reject:")


def test_the_judge_is_told_to_name_a_juror_per_side_whether_or_not_they_split() -> None:
    case = prompts.Case(question="Ship it?", options=OPTIONS, context=None, nonce="n")

    for last in ([TESTS_PASS, NO_BACKUP], [NO_BACKUP, NO_ROLLBACK]):
        body = prompts.judge_call(case, [last], quoted=True)[1].content
        # Ahead of the transcript: the part of the prompt the judge's server reads ahead.
        opening = prompts.judge_opening(case, [], quoted=True)[1].content
        assert prompts.JUDGE_QUOTED_FORMAT in opening
        assert body.startswith(opening)
        assert body.endswith(prompts.JUDGE_QUOTED_ASK)
        assert '"dissenter_notes"' not in body
    written = prompts.judge_call(case, [[TESTS_PASS, NO_BACKUP]])[1].content
    assert written.endswith(prompts.JUDGE_SIDES_FORMAT)


def test_only_a_judge_may_quote() -> None:
    with pytest.raises(ValidationError, match="juror 'a': sides is for judges only"):
        scripted_config(
            jurors={"a": [step("approve")], "b": [step("reject")]},
            juror_overrides={"a": {"sides": "quoted"}},
        )


@pytest.mark.anyio
async def test_a_quoting_judge_argues_each_side_in_its_jurors_words() -> None:
    config = scripted_config(
        jurors={
            "a": [step("approve", reasoning="The change is covered by tests that pass.")],
            "b": [step("reject", reasoning="The migration drops a column still read.")],
            "c": [step("reject", reasoning="Nobody has reviewed the rollback plan.")],
        },
        judge=[step("reject", confidence=0.7)],
        judge_overrides={"sides": "quoted"},
        max_rounds=1,
    )

    transcript, _ = await run(config, max_rounds=1)

    judge = transcript.judge
    assert judge is not None
    assert judge.answer is not None, judge.failure
    assert judge.attempts == 1
    disagreement = judge.answer.disagreement or ""
    assert disagreement.startswith("For approve: The change is covered by tests that pass. ")
    # The scripted judge names the first juror each side offers: either reject juror's words.
    rejecting = ("The migration drops a column still read.", "Nobody has reviewed the rollback")
    assert disagreement.split("For reject: ")[1].startswith(rejecting)


def test_the_form_of_a_quoting_judge_fixes_a_decided_verdict_but_keeps_the_sides() -> None:
    form = JudgeForm(options=OPTIONS, final=SPLIT, quoted=True)

    decided = form.schema(("reject",))

    assert decided["properties"]["verdict"]["enum"] == ["reject"]
    assert decided["properties"]["sides"] == form.schema(OPTIONS)["properties"]["sides"]
    assert form.parse(quoting({"approve": "Juror B", "reject": "Juror A"})).disagreement == (
        "For approve: The tests pass on CI and in staging. "
        "For reject: There is no backup step before the drop."
    )


@pytest.mark.anyio
async def test_a_calibrated_quoting_judge_probes_and_answers_in_the_quoting_form() -> None:
    config = scripted_config(
        jurors={"a": [step("approve")], "b": [step("approve")], "c": [step("reject")]},
        judge=[
            step(
                "approve",
                label_logprobs={"approve": log(0.7), "reject": log(0.3)},
                label_prior={"approve": log(0.8), "reject": log(0.2)},
            )
        ],
        judge_overrides={"label_calibration": "content_free", "sides": "quoted"},
        max_rounds=1,
    )
    hub = RecordingHub(config)
    try:
        transcript = await deliberate(hub, hearing(config, max_rounds=1), Notes())
    finally:
        await hub.aclose()

    prior, probe, answer = hub.called("judge")
    assert [r.purpose for r in (prior, probe, answer)] == ["prior", "probe", "answer"]
    # The blank case's prior is measured on the prompt and form the judge answers in.
    for request in (prior, probe, answer):
        assert prompts.JUDGE_QUOTED_FORMAT in request.messages[-1].content
        assert "dissenter_notes" not in request.output_schema["properties"]
    # Calibrated, 0.7/0.8 against 0.3/0.2 is reject: the answer must argue it, sides and all.
    assert answer.output_schema["properties"]["verdict"]["enum"] == ["reject"]
    assert set(answer.output_schema["properties"]["sides"]["properties"]) == set(OPTIONS)
    assert transcript.judge is not None
    assert transcript.judge.answer is not None
    assert transcript.judge.answer.verdict == "reject"
