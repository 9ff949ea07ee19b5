"""The deliberation protocol: independent round, rebuttal rounds, judge (product spec §3).

The protocol only talks to models and reports what happens to an observer; recording,
metrics and the public response are the service's job.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio
import anyio.abc

from app.core.clock import Deadline
from app.core.config import ModelSpec
from app.deliberation import prompts
from app.deliberation.aggregation import Vote
from app.deliberation.answers import (
    JUDGE_SCHEMA_NAME,
    JUROR_SCHEMA_NAME,
    JudgeAnswer,
    JudgeForm,
    JurorAnswer,
    juror_schema,
    parse_juror_answer,
)
from app.deliberation.budget import RoundBudget, spend_of
from app.deliberation.calibration import LabelPriors
from app.deliberation.calls import CallOutcome, CallPlan, call_model
from app.deliberation.events import no_quorum_detail
from app.deliberation.judging import JudgeCalibration, calibration_for
from app.deliberation.sequential import (
    Convening,
    SequentialPlan,
    StopConvening,
    stop_convening,
)
from app.providers.base import Message
from app.providers.chat import text_bound
from app.providers.hub import ProviderHub

StopReason = Literal["unanimous", "no_change", "max_rounds", "deadline", "budget"]


@dataclass(slots=True)
class JurorTurn:
    """One juror's call in one round, and whether it changed position."""

    outcome: CallOutcome[JurorAnswer]
    changed: bool = False
    previous: str | None = None

    @property
    def juror(self) -> str:
        """Return the juror's configured name."""
        return self.outcome.spec.name


@dataclass(slots=True)
class Transcript:
    """Everything the jurors and the judge said, round by round."""

    rounds: list[list[JurorTurn]] = field(default_factory=list)
    stop_reason: StopReason = "max_rounds"
    judge: CallOutcome[JudgeAnswer] | None = None
    judge_labels: dict[str, str] = field(default_factory=dict)
    # Sequential verdicts only: who round 1 convened and why it stopped convening.
    convening: Convening | None = None

    def final_answers(self) -> dict[str, JurorAnswer]:
        """Return each juror's latest valid answer, by juror name."""
        latest: dict[str, JurorAnswer] = {}
        for turns in self.rounds:
            for turn in turns:
                if turn.outcome.answer is not None:
                    latest[turn.juror] = turn.outcome.answer
        return latest

    def final_votes(self) -> list[Vote]:
        """Return each juror's latest valid position."""
        return [_as_vote(name, answer) for name, answer in self.final_answers().items()]

    def round_votes(self, number: int) -> list[Vote]:
        """Return the valid positions given in a 1-based round."""
        return [
            _as_vote(t.juror, t.outcome.answer)
            for t in self.rounds[number - 1]
            if t.outcome.answer is not None
        ]


class Observer(Protocol):
    """Receives the protocol's progress as it happens."""

    async def juror_answered(self, turn: JurorTurn) -> None:
        """Handle one finished juror call (valid or failed)."""
        ...

    async def round_finished(self, number: int, turns: Sequence[JurorTurn]) -> None:
        """Handle the end of a round."""
        ...

    async def judge_answered(self, outcome: CallOutcome[JudgeAnswer]) -> None:
        """Handle the judge's finished call (valid or failed)."""
        ...


class NoQuorumReachedError(Exception):
    """Round 1 produced fewer valid positions than the panel's quorum."""

    def __init__(self, transcript: Transcript, valid: int, quorum: int) -> None:
        super().__init__(no_quorum_detail(valid, quorum))
        self.transcript = transcript
        self.valid = valid
        self.quorum = quorum


@dataclass(frozen=True, slots=True)
class Hearing:
    """The fixed inputs of one deliberation."""

    case: prompts.Case
    jurors: tuple[ModelSpec, ...]
    judge: ModelSpec | None
    max_rounds: int
    quorum: int
    early_stop: bool
    deadline: Deadline
    seed: str
    budget: RoundBudget | None = None
    # Set in a category with ``sequential: true``: round 1 convenes jurors one by one.
    sequential: SequentialPlan | None = None


async def deliberate(
    hub: ProviderHub, hearing: Hearing, observer: Observer, priors: LabelPriors | None = None
) -> Transcript:
    """Run round 1, the rebuttal rounds and the judge; raise NoQuorumReachedError below quorum.

    ``priors`` keeps a calibrated judge's content-free priors across verdicts; without it,
    each verdict measures its own.
    """
    transcript = Transcript()
    calibration = calibration_for(hub, hearing.judge, hearing.case, hearing.deadline, priors)
    if calibration is None and (hearing.judge is None or not hub.reads_ahead(hearing.judge)):
        # Nothing to prepare in the background: no task group (entering and leaving an empty
        # one is a pass through the event loop, 0.05 ms of CPU per verdict).
        await _hear(hub, hearing, transcript, observer, None, None)
        return transcript
    failure: Exception | None = None
    async with anyio.create_task_group() as read_ahead:
        try:
            await _hear(hub, hearing, transcript, observer, read_ahead, calibration)
        except Exception as exc:
            # Raised outside the task group, so callers see it as it is, not in a group.
            failure = exc
        # A read-ahead still running has nothing left to prepare.
        read_ahead.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return transcript


async def _hear(
    hub: ProviderHub,
    hearing: Hearing,
    transcript: Transcript,
    observer: Observer,
    read_ahead: anyio.abc.TaskGroup | None,
    calibration: JudgeCalibration | None,
) -> None:
    """Hear the case into ``transcript``: round 1, the rebuttal rounds, then the judge.

    ``read_ahead``: where the judge's preparation runs (None: it has none to do).
    """
    _read_ahead(hub, hearing, transcript, read_ahead, calibration)
    if hearing.sequential is not None:
        turns = await _convene(hub, hearing, hearing.sequential, transcript, observer)
    else:
        turns = await _run_round(hub, hearing, transcript, 1, observer)
    valid = sum(1 for turn in turns if turn.outcome.ok)
    if valid < hearing.quorum:
        raise NoQuorumReachedError(transcript, valid, hearing.quorum)
    number = 1
    decision = _stop_reason(hearing, transcript, number)
    while decision == "continue":
        _read_ahead(hub, hearing, transcript, read_ahead, None)
        number += 1
        await _run_round(hub, hearing, transcript, number, observer)
        decision = _stop_reason(hearing, transcript, number)
    transcript.stop_reason = decision
    if hearing.judge is not None:
        transcript.judge = await _run_judge(hub, hearing, transcript, calibration)
        await observer.judge_answered(transcript.judge)


def _read_ahead(
    hub: ProviderHub,
    hearing: Hearing,
    transcript: Transcript,
    group: anyio.abc.TaskGroup | None,
    calibration: JudgeCalibration | None,
) -> None:
    """Let the judge's server read the judge's prompt as far as it is known, in the background.

    A local judge spends a third of its call reading the transcript; the part known before the
    next round (the case, the rounds so far) is read while the jurors deliberate, and the
    judge's call reuses it from the server's prompt cache. A calibrated judge's content-free
    prior is measured first, while the judge is idle anyway.
    """
    judge = hearing.judge
    reads_ahead = judge is not None and hub.reads_ahead(judge)
    if group is None or judge is None or (calibration is None and not reads_ahead):
        return

    async def prepare() -> None:
        if calibration is not None:
            await calibration.prior()
        if reads_ahead:
            # Built after the prior, not before: were round 1 over by then, an opening built
            # earlier would be read after the next one's and evict it from the server's slot.
            rounds = _judge_rounds(hearing, transcript)
            opening = prompts.judge_opening(hearing.case, rounds, quoted=judge.sides == "quoted")
            await hub.prefill(judge, opening)

    group.start_soon(prepare)


def _stop_reason(
    hearing: Hearing, transcript: Transcript, number: int
) -> StopReason | Literal["continue"]:
    """Decide whether deliberation stops after round ``number``."""
    positions = {vote.position for vote in transcript.final_votes()}
    if len(positions) <= 1 and (number > 1 or hearing.early_stop):
        return "unanimous"
    if number > 1 and not any(turn.changed for turn in transcript.rounds[-1]):
        return "no_change"
    if number >= hearing.max_rounds:
        return "max_rounds"
    if hearing.deadline.passed():
        return "deadline"
    if hearing.budget is not None and not _next_round_fits(hearing.budget, transcript):
        return "budget"
    return "continue"


def _next_round_fits(budget: RoundBudget, transcript: Transcript) -> bool:
    """Estimate the next round from the last one's actual use, against the verdict's cap."""
    spent = spend_of(t.outcome for turns in transcript.rounds for t in turns)
    last = spend_of(t.outcome for t in transcript.rounds[-1])
    return budget.allows_next(spent, last)


async def _convene(
    hub: ProviderHub,
    hearing: Hearing,
    plan: SequentialPlan,
    transcript: Transcript,
    observer: Observer,
) -> list[JurorTurn]:
    """Round 1 of a sequential verdict: convene jurors in the plan's order until it may stop.

    The first ``quorum`` jurors are asked at once (no verdict can stop before that many
    answers), then one at a time, each answer deciding whether the next juror is called.
    """
    specs = {juror.name: juror for juror in hearing.jurors}
    waiting = [specs[name] for name in plan.order if name in specs]
    turns: list[JurorTurn] = []
    batch = max(hearing.quorum, 1)
    stop: StopConvening | None = None
    while stop is None:
        called, waiting = waiting[:batch], waiting[batch:]
        await _ask_all(hub, hearing, called, 1, {}, turns, observer)
        batch = 1
        positions = {
            t.juror: t.outcome.answer.position for t in turns if t.outcome.answer is not None
        }
        stop, now = stop_convening(
            positions,
            [j.name for j in waiting],
            plan,
            hearing.case.options,
            quorum=hearing.quorum,
            deadline_passed=hearing.deadline.passed(),
        )
    sat = {turn.juror for turn in turns}
    transcript.convening = Convening(
        order=plan.order,
        convened=tuple(name for name in plan.order if name in sat),
        stop=stop,
        leader=now.leader,
        posterior=now.posterior,
        target=plan.target,
        target_source=plan.target_source,
    )
    return await _end_round(hearing, transcript, 1, turns, observer)


async def _run_round(
    hub: ProviderHub, hearing: Hearing, transcript: Transcript, number: int, observer: Observer
) -> list[JurorTurn]:
    """Ask every sitting juror concurrently; the round lasts as long as its slowest call.

    Rebuttal rounds sit only the jurors with a position: in a sequential verdict, those it
    convened.
    """
    previous = transcript.final_answers()
    sitting = [j for j in hearing.jurors if number == 1 or j.name in previous]
    turns: list[JurorTurn] = []
    await _ask_all(hub, hearing, sitting, number, previous, turns, observer)
    return await _end_round(hearing, transcript, number, turns, observer)


async def _ask_all(
    hub: ProviderHub,
    hearing: Hearing,
    sitting: Sequence[ModelSpec],
    number: int,
    previous: dict[str, JurorAnswer],
    turns: list[JurorTurn],
    observer: Observer,
) -> None:
    """Ask ``sitting`` concurrently in round ``number``, appending each turn as it ends."""
    # Round 1's messages are the same for every juror asked alike: built once per form
    # (messages are immutable).
    firsts: dict[bool, tuple[Message, ...]] = {}

    def first_round(evidence: bool) -> tuple[Message, ...]:
        if evidence not in firsts:
            firsts[evidence] = prompts.first_round(hearing.case, evidence=evidence)
        return firsts[evidence]

    async def ask(juror: ModelSpec) -> None:
        first = first_round(juror.asks_evidence) if number == 1 else None
        plan = _juror_plan(hearing, juror, number, previous, first)
        outcome = await call_model(hub, plan, deadline=hearing.deadline)
        before = previous.get(juror.name)
        turn = JurorTurn(outcome=outcome, previous=before.position if before else None)
        if outcome.answer is not None and before is not None:
            turn.changed = outcome.answer.position != before.position
        turns.append(turn)
        await observer.juror_answered(turn)

    # asyncio's TaskGroup, not anyio's: for three jurors it costs about a sixth of anyio's
    # (measured: 20 against 123 µs a round, each round of every verdict). The guarantees are
    # the same on the asyncio loop the service runs on: a cancelled caller (the verdict's
    # deadline, shutdown: anyio scopes around this call) cancels every juror and waits for
    # them, and a juror's error cancels the others and is raised in an ExceptionGroup, as
    # anyio's group does. Each call keeps its own anyio deadline (``complete_within``).
    async with asyncio.TaskGroup() as group:
        for juror in sitting:
            group.create_task(ask(juror))


async def _end_round(
    hearing: Hearing,
    transcript: Transcript,
    number: int,
    turns: list[JurorTurn],
    observer: Observer,
) -> list[JurorTurn]:
    """Put a round's turns in panel order, keep them and tell the observer."""
    order = {j.name: i for i, j in enumerate(hearing.jurors)}
    turns.sort(key=lambda turn: order[turn.juror])
    transcript.rounds.append(turns)
    await observer.round_finished(number, turns)
    return turns


def _juror_plan(
    hearing: Hearing,
    juror: ModelSpec,
    number: int,
    previous: dict[str, JurorAnswer],
    first: tuple[Message, ...] | None,
) -> CallPlan[JurorAnswer]:
    """Build a juror's call: independent in round 1 (``first``), a rebuttal afterwards."""
    case = hearing.case
    if first is not None:
        messages = first
    else:
        own = _argument("You", previous[juror.name])
        others = [answer for name, answer in previous.items() if name != juror.name]
        # Shuffled per juror and per round, so no juror can track another across rounds.
        rng = random.Random(f"{hearing.seed}:{juror.name}:{number}")
        rng.shuffle(others)
        labelled = [
            _argument(f"Juror {label}", answer)
            for label, answer in zip(_labels(), others, strict=False)
        ]
        messages = prompts.rebuttal_round(case, own, labelled, evidence=juror.asks_evidence)
    # A server's grammar cuts a reasoning at its bound: such a reasoning is marked cut.
    cut_at = text_bound(juror, "reasoning")
    return CallPlan(
        spec=juror,
        role="juror",
        round_number=number,
        messages=messages,
        schema_name=JUROR_SCHEMA_NAME,
        schema=juror_schema(case.options, evidence=juror.asks_evidence),
        parse=lambda text: parse_juror_answer(text, case.options, cut_at=cut_at),
        metadata=case.metadata,
    )


async def _run_judge(
    hub: ProviderHub,
    hearing: Hearing,
    transcript: Transcript,
    calibration: JudgeCalibration | None,
) -> CallOutcome[JudgeAnswer]:
    """Ask the judge to decide over the anonymised transcript.

    A calibrated judge's verdict is decided first (``JudgeCalibration.decide``) and fixed in
    the schema of its answer, which then argues that verdict.
    """
    assert hearing.judge is not None
    rounds = _judge_rounds(hearing, transcript)
    case = hearing.case
    form = JudgeForm(
        options=case.options,
        final=rounds[-1] if rounds else [],
        quoted=hearing.judge.sides == "quoted",
    )
    messages = prompts.judge_call(case, rounds, quoted=form.quoted)
    schema = form.schema(case.options)
    decided = await calibration.decide(messages, schema) if calibration is not None else None
    plan = CallPlan(
        spec=hearing.judge,
        role="judge",
        round_number=1,
        messages=messages,
        schema_name=JUDGE_SCHEMA_NAME,
        schema=form.schema((decided.verdict,)) if decided else schema,
        parse=form.parse,
        metadata=case.metadata,
    )
    outcome = await call_model(hub, plan, deadline=hearing.deadline)
    if calibration is not None:
        calibration.settle(outcome, decided)
    return outcome


def _judge_rounds(hearing: Hearing, transcript: Transcript) -> list[list[prompts.Argument]]:
    """Label the jurors for the judge and return the rounds' arguments as it is shown them.

    The labels depend only on the seed and on who sat in round 1, so a read-ahead after round 1
    shows round 1 exactly as the judge's call will.
    """
    sat = {turn.juror for turn in transcript.rounds[0]} if transcript.rounds else set()
    names = [juror.name for juror in hearing.jurors if juror.name in sat]
    random.Random(f"{hearing.seed}:judge").shuffle(names)
    transcript.judge_labels = {
        name: f"Juror {label}" for name, label in zip(names, _labels(), strict=False)
    }
    return [
        [
            _argument(transcript.judge_labels[t.juror], t.outcome.answer)
            for t in turns
            if t.outcome.answer is not None
        ]
        for turns in transcript.rounds
    ]


def _as_vote(juror: str, answer: JurorAnswer) -> Vote:
    return Vote(juror=juror, position=answer.position, confidence=answer.confidence)


def _argument(label: str, answer: JurorAnswer) -> prompts.Argument:
    return prompts.Argument(
        label=label,
        position=answer.position,
        confidence=answer.confidence,
        reasoning=answer.reasoning,
    )


def _labels() -> str:
    return string.ascii_uppercase
