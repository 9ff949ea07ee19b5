"""Useful words: a reason is a sentence, and a judge's disagreement names the positions."""

from __future__ import annotations

import json

import pytest

from app.deliberation import prompts
from app.deliberation.answers import parse_judge_answer, parse_juror_answer
from app.providers.chat import LOCAL_TEXT_BOUNDS
from app.providers.errors import FailureKind, InvalidOutputError
from tests.builders import step

from .test_protocol import panel, run

OPTIONS = ("approve", "reject")


def juror_text(reasoning: str) -> str:
    return json.dumps(
        {"position": "reject", "confidence": 0.7, "reasoning": reasoning, "evidence": None}
    )


def judge_text(disagreement: str, notes: tuple[str, ...] = ()) -> str:
    return json.dumps(
        {
            "verdict": "reject",
            "confidence": 0.7,
            "disagreement": disagreement,
            "dissenter_notes": [{"juror": "Juror A", "note": note} for note in notes],
        }
    )


@pytest.mark.parametrize(
    "reasoning", ["reject", "Reject.", " no ", "B is", "...", "\u2014", "1.0, 1.0, 1.0, 1.0"]
)
def test_a_bare_label_or_an_empty_rationale_is_invalid_output(reasoning: str) -> None:
    with pytest.raises(InvalidOutputError, match=r"^reasoning: .* is a label, not a reason"):
        parse_juror_answer(juror_text(reasoning), OPTIONS)
    with pytest.raises(InvalidOutputError, match=r"^reasoning: String should have at least"):
        parse_juror_answer(juror_text(""), OPTIONS)


def test_a_sentence_is_a_reason() -> None:
    answer = parse_juror_answer(juror_text("The migration has no backup step."), OPTIONS)
    assert (answer.position, answer.reasoning) == ("reject", "The migration has no backup step.")


def test_a_disagreement_must_name_every_position_held() -> None:
    positions = ["approve", "reject", "reject"]
    with pytest.raises(InvalidOutputError, match=r"it does not name approve, reject$"):
        parse_judge_answer(judge_text("The jurors disagreed."), OPTIONS, positions)
    with pytest.raises(InvalidOutputError, match=r"it does not name approve$"):
        parse_judge_answer(judge_text("Two jurors reject: no backup."), OPTIONS, positions)
    # A word inside another word does not name it: "rejected" is not the label "reject".
    with pytest.raises(InvalidOutputError, match=r"does not name reject$"):
        parse_judge_answer(judge_text("One would approve; two rejected it."), OPTIONS, positions)

    answer = parse_judge_answer(
        judge_text("One juror would approve (tests pass); two reject: there is no backup."),
        OPTIONS,
        positions,
    )
    assert answer.verdict == "reject"


def sides_text(sides: dict[str, str]) -> str:
    return json.dumps(
        {"verdict": "reject", "confidence": 0.7, "sides": sides, "dissenter_notes": []}
    )


def test_a_split_panels_sides_become_a_disagreement_naming_each_position() -> None:
    positions = ["approve", "reject", "reject"]
    answer = parse_judge_answer(
        sides_text({"reject": "There is no backup step", "approve": "The tests pass on CI."}),
        OPTIONS,
        positions,
    )
    assert answer.disagreement == (
        "For approve: The tests pass on CI. For reject: There is no backup step."
    )
    with pytest.raises(InvalidOutputError, match=r"^sides: give the argument for approve too$"):
        parse_judge_answer(sides_text({"reject": "There is no backup step."}), OPTIONS, positions)
    with pytest.raises(InvalidOutputError, match=r"^sides\.approve: 'approve' is a label"):
        parse_judge_answer(
            sides_text({"reject": "There is no backup step.", "approve": "approve"}),
            OPTIONS,
            positions,
        )
    with pytest.raises(InvalidOutputError, match="give the disagreement"):
        parse_judge_answer(
            json.dumps({"verdict": "reject", "confidence": 0.7, "dissenter_notes": []}), OPTIONS
        )


def test_an_argument_cut_at_the_local_bound_ends_in_an_ellipsis_not_a_full_stop() -> None:
    bound = LOCAL_TEXT_BOUNDS["sides"][1]
    cut = ("Juror A believes that dropping the table frees space, but the data " * 3)[:bound]
    assert len(cut) == bound
    assert cut.endswith("space,")
    answer = parse_judge_answer(
        sides_text({"reject": "There is no backup step", "approve": cut}),
        OPTIONS,
        ["approve", "reject"],
    )
    assert answer.disagreement == (
        f"For approve: {cut[:-1]}\u2026 For reject: There is no backup step."
    )


def test_agreeing_jurors_need_no_named_sides_but_a_note_is_a_sentence() -> None:
    agreed = parse_judge_answer(judge_text("The jurors agreed."), OPTIONS, ["reject", "reject"])
    assert agreed.disagreement == "The jurors agreed."
    with pytest.raises(InvalidOutputError, match=r"dissenter_notes\.0\.note: 'approve'"):
        parse_judge_answer(judge_text("The jurors agreed.", ("approve",)), OPTIONS, ["reject"])


pytestmark = pytest.mark.anyio


async def test_a_juror_that_only_gives_its_label_is_repaired_then_failed() -> None:
    config = panel(
        {
            "a": [step("approve")],
            "b": [step("approve")],
            "c": [step("reject", reasoning="reject")],
        },
        quorum=2,
    )

    transcript, _ = await run(config)

    turn = next(t for t in transcript.rounds[0] if t.juror == "c")
    assert turn.outcome.attempts == 2  # the one repair re-ask
    assert turn.outcome.failure is not None
    assert turn.outcome.failure.kind == FailureKind.INVALID_OUTPUT
    assert "is a label, not a reason" in turn.outcome.failure.detail


async def test_a_judge_that_does_not_name_the_sides_is_repaired_then_failed() -> None:
    config = panel(
        {"a": [step("approve")], "b": [step("reject")], "c": [step("reject")]},
        judge=[step("reject", disagreement="The jurors disagreed.")],
        max_rounds=1,
    )

    transcript, _ = await run(config, max_rounds=1)

    assert transcript.judge is not None
    assert transcript.judge.attempts == 2
    assert transcript.judge.failure is not None
    assert transcript.judge.failure.kind == FailureKind.INVALID_OUTPUT
    assert "name each position the jurors held (approve, reject)" in (
        transcript.judge.failure.detail
    )


def test_a_split_last_round_asks_the_judge_for_each_sides_argument() -> None:
    case = prompts.Case(question="Ship it?", options=OPTIONS, context=None, nonce="n")
    approve = prompts.Argument("Juror B", "approve", 0.9, "The tests pass on CI.")
    reject = prompts.Argument("Juror A", "reject", 0.8, "There is no backup step.")
    split = prompts.judge_call(case, [[approve, reject], [reject, reject]])[1].content
    # Only the last round decides: this one is unanimous, so no sides.
    assert '"sides"' not in split
    assert '"disagreement"' in split
    assert "The tests pass on CI." in split
    still_split = prompts.judge_call(case, [[approve, reject]])[1].content
    assert '"sides"' in still_split


def test_a_reason_a_juror_repeats_is_not_written_out_again_for_the_judge() -> None:
    case = prompts.Case(question="Ship it?", options=OPTIONS, context=None, nonce="n")
    held = prompts.Argument("Juror A", "reject", 0.8, "There is no backup step.")
    first = [held, prompts.Argument("Juror B", "approve", 0.9, "The tests pass on CI.")]
    second = [
        prompts.Argument("Juror A", "reject", 0.6, "There is no backup step."),
        prompts.Argument("Juror B", "reject", 0.7, "A backup matters more than green tests."),
    ]

    for quoted in (False, True):
        body = prompts.judge_call(case, [first, second], quoted=quoted)[1].content
        assert body.count("There is no backup step.") == 1
        assert "Juror A: reject (confidence 0.60), with the same reasoning as in round 1." in body
        assert "Juror B: reject (confidence 0.70). A backup matters more" in body
        # The read-ahead before round 2 is still a prefix of the call.
        opening = prompts.judge_opening(case, [first], quoted=quoted)[1].content
        assert body.startswith(opening)
