"""The pure protocol: ``deliberate()`` driven with a scripted hub and an in-memory observer.

No database, no Redis, no verdict service: each test seats a hearing, runs the protocol and
asserts what the transcript holds and what the observer was told, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from app.core.clock import Deadline
from app.core.config import JuryConfig
from app.deliberation.answers import JudgeAnswer
from app.deliberation.calls import CallOutcome
from app.deliberation.prompts import Case
from app.deliberation.protocol import (
    Hearing,
    JurorTurn,
    NoQuorumReachedError,
    Transcript,
    deliberate,
)
from app.providers.errors import FailureKind
from app.providers.hub import ProviderHub
from tests.builders import OPTIONS, Step, scripted_config, step

pytestmark = pytest.mark.anyio

# A guard against hangs, not a timing assertion.
GUARD_S = 20


@dataclass
class Notes:
    """An observer that keeps what the protocol tells it, in order."""

    said: list[str] = field(default_factory=list)
    judged: list[CallOutcome[JudgeAnswer]] = field(default_factory=list)

    async def juror_answered(self, turn: JurorTurn) -> None:
        """Note one juror's call: round, name, position (or failure), and a change."""
        outcome = turn.outcome
        answer = outcome.answer.position if outcome.answer is not None else None
        failure = f" failed:{outcome.failure.kind}" if outcome.failure else ""
        shifted = f" from:{turn.previous}" if turn.changed else ""
        self.said.append(f"r{outcome.round_number} {turn.juror} {answer}{failure}{shifted}")

    async def round_finished(self, number: int, turns: Sequence[JurorTurn]) -> None:
        """Note the end of a round."""
        self.said.append(f"r{number} done ({len(turns)})")

    async def judge_answered(self, outcome: CallOutcome[JudgeAnswer]) -> None:
        """Keep the judge's call (the protocol itself does not report it: it returns it)."""
        self.judged.append(outcome)


def hearing(config: JuryConfig, *, deadline_s: float = 30, max_rounds: int = 3) -> Hearing:
    """Return a hearing of the config's default panel, its judge sitting."""
    panel = config.panels["default"]
    return Hearing(
        case=Case(question="Ship release 4.2?", options=OPTIONS, context=None, nonce="n0nce"),
        jurors=tuple(config.juror(name) for name in panel.jurors),
        judge=config.judge_for(panel),
        max_rounds=max_rounds,
        quorum=config.quorum(panel),
        early_stop=True,
        deadline=Deadline.after(deadline_s),
        seed="seed",
    )


async def run(config: JuryConfig, **seat: Any) -> tuple[Transcript, Notes]:
    """Deliberate a hearing of ``config`` and return the transcript and what was observed."""
    notes = Notes()
    hub = ProviderHub(config)
    try:
        with anyio.fail_after(GUARD_S):
            transcript = await deliberate(hub, hearing(config, **seat), notes)
    finally:
        await hub.aclose()
    return transcript, notes


def panel(jurors: dict[str, Sequence[Step]], **protocol: Any) -> JuryConfig:
    """Return a scripted config with these jurors on the default panel."""
    return scripted_config(jurors=jurors, **protocol)


async def test_a_unanimous_first_round_stops_early_and_goes_to_the_judge() -> None:
    config = panel({"a": [step("approve")], "b": [step("approve")], "c": [step("approve")]})

    transcript, notes = await run(config)

    assert transcript.stop_reason == "unanimous"
    assert len(transcript.rounds) == 1
    assert sorted(notes.said[:3]) == ["r1 a approve", "r1 b approve", "r1 c approve"]
    assert notes.said[3:] == ["r1 done (3)"]
    assert transcript.judge is not None
    assert transcript.judge.answer is not None
    assert transcript.judge.answer.verdict == "approve"
    assert notes.judged == [transcript.judge]


async def test_a_juror_that_changes_its_position_is_a_shift_from_its_previous_one() -> None:
    config = panel(
        {
            "a": [step("approve"), step("approve")],
            "b": [step("approve"), step("approve")],
            "c": [step("reject"), step("approve")],
        }
    )

    transcript, notes = await run(config)

    assert transcript.stop_reason == "unanimous"
    assert [vote.position for vote in transcript.round_votes(1)].count("reject") == 1
    assert {vote.position for vote in transcript.final_votes()} == {"approve"}
    assert "r2 c approve from:reject" in notes.said
    assert notes.said[-1] == "r2 done (3)"


async def test_rounds_stop_when_nobody_changes() -> None:
    config = panel(
        {
            "a": [step("approve"), step("approve"), step("approve")],
            "b": [step("reject"), step("reject"), step("reject")],
            "c": [step("approve"), step("approve"), step("approve")],
        }
    )

    transcript, notes = await run(config, max_rounds=3)

    assert transcript.stop_reason == "no_change"
    assert len(transcript.rounds) == 2
    assert [line for line in notes.said if "done" in line] == ["r1 done (3)", "r2 done (3)"]


async def test_a_failed_juror_is_a_typed_failure_and_the_round_goes_on() -> None:
    config = panel(
        {
            "a": [step("approve")],
            "b": [step("approve")],
            "c": [step(failure="error")],
        },
        quorum=2,
    )

    transcript, notes = await run(config)

    failed = [turn for turn in transcript.rounds[0] if turn.outcome.failure is not None]
    assert [(turn.juror, turn.outcome.failure.kind) for turn in failed if turn.outcome.failure] == [
        ("c", FailureKind.PROVIDER_ERROR)
    ]
    assert "r1 c None failed:provider_error" in notes.said
    assert transcript.judge is not None
    assert transcript.judge.ok


async def test_below_quorum_the_protocol_raises_with_what_round_one_said() -> None:
    config = panel(
        {"a": [step("approve")], "b": [step(failure="auth")], "c": [step(failure="error")]},
        quorum=2,
    )

    with pytest.raises(NoQuorumReachedError) as caught:
        await run(config)

    assert (caught.value.valid, caught.value.quorum) == (1, 2)
    assert len(caught.value.transcript.rounds) == 1
    assert str(caught.value) == "only 1 juror(s) gave a valid position; the quorum is 2"


async def test_a_deadline_already_passed_times_every_call_out() -> None:
    config = panel({"a": [step("approve")], "b": [step("reject")]}, quorum=1)

    with pytest.raises(NoQuorumReachedError) as caught:
        await run(config, deadline_s=0)

    turns = caught.value.transcript.rounds[0]
    assert [(turn.juror, turn.outcome.failure.kind) for turn in turns if turn.outcome.failure] == [
        ("a", FailureKind.TIMEOUT),
        ("b", FailureKind.TIMEOUT),
    ]
    assert all(turn.outcome.attempts == 1 for turn in turns)
