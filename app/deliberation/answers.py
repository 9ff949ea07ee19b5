"""The structured answers jurors and the judge must give, and their validation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.deliberation.prompts import Argument
from app.providers.chat import LOCAL_TEXT_BOUNDS
from app.providers.errors import InvalidOutputError

JUROR_SCHEMA_NAME = "juror_position"
JUDGE_SCHEMA_NAME = "judge_verdict"

AnswerT = TypeVar("AnswerT", bound=BaseModel)

MIN_REASON_WORDS = 3
"""A reason is a sentence: "no", "Yes." or "B is better" in two words is a label, not a reason."""
# A locally served juror's reasoning bound (app/providers/chat.py): text that long was cut.
LOCAL_REASONING_CUT_AT: Final = LOCAL_TEXT_BOUNDS["reasoning"][1]
# How a text ends as a sentence, what a cut leaves trailing, and how a cut is marked.
_SENTENCE_ENDS: Final = (".", "!", "?", "\u2026")
_TRAILING_JOINERS: Final = " ,;:-\u2013\u2014"
_CUT_MARK: Final = "\u2026"
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def _confidence(value: Any) -> float:
    """Accept 0 to 1, and read 1 to 100 as a percentage: small models often answer "85"."""
    number = float(value)
    if 0.0 <= number <= 1.0:
        return number
    if 1.0 < number <= 100.0:
        return number / 100.0
    raise ValueError(f"confidence must be between 0 and 1, got {number}")


class JurorAnswer(BaseModel):
    """A juror's position in one round."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    position: str
    confidence: float
    reasoning: str = Field(min_length=1, max_length=4000)
    evidence: str | None = Field(default=None, max_length=4000)

    @field_validator("confidence", mode="before")
    @classmethod
    def _normalise_confidence(cls, value: Any) -> float:
        return _confidence(value)


class DissenterNote(BaseModel):
    """The judge's note on one dissenting juror, by anonymous label."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    juror: str
    note: str


class JudgeAnswer(BaseModel):
    """The judge's verdict on a transcript.

    A split panel's judge is asked for ``sides`` (the strongest argument for each position
    held, keyed by the position's label) rather than free prose: the schema then names every
    position by construction, and ``disagreement`` is rendered from them. A judge may still
    answer a free ``disagreement`` (hosted models asked by older prompts, scripted judges).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    verdict: str
    confidence: float
    disagreement: str | None = Field(default=None, max_length=4000)
    sides: dict[str, str] | None = Field(default=None, max_length=10)
    dissenter_notes: list[DissenterNote] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _summarised(self) -> JudgeAnswer:
        if self.disagreement is None and self.sides is None:
            raise ValueError("give the disagreement (or the sides)")
        return self

    @field_validator("confidence", mode="before")
    @classmethod
    def _normalise_confidence(cls, value: Any) -> float:
        return _confidence(value)


def juror_schema(options: Sequence[str], *, evidence: bool = True) -> dict[str, Any]:
    """Return the JSON schema a juror must answer in (without ``evidence`` if not asked)."""
    properties: dict[str, Any] = {
        "position": {"type": "string", "enum": list(options)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reasoning": {"type": "string"},
    }
    if evidence:
        properties["evidence"] = {"type": ["string", "null"]}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def judge_schema(
    options: Sequence[str], positions: Iterable[str] = (), labels: Sequence[str] = ()
) -> dict[str, Any]:
    """Return the JSON schema the judge must answer in.

    ``positions`` are the jurors' final positions: when they differ, the judge gives
    ``sides``, one argument per position held, instead of a free ``disagreement``. ``labels``
    are the jurors' anonymous labels: a dissenter note must name one of them.
    """
    held = held_positions(positions)
    juror: dict[str, Any] = (
        {"type": "string", "enum": list(labels)} if labels else {"type": "string"}
    )
    note = {
        "type": "object",
        "properties": {"juror": juror, "note": {"type": "string"}},
        "required": ["juror", "note"],
        "additionalProperties": False,
    }
    summary: dict[str, Any] = {"type": "string"}
    key = "disagreement"
    if len(held) > 1:
        key = "sides"
        summary = {
            "type": "object",
            "properties": {position: {"type": "string"} for position in held},
            "required": held,
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": list(options)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            key: summary,
            "dissenter_notes": {"type": "array", "items": note},
        },
        "required": ["verdict", "confidence", key, "dissenter_notes"],
        "additionalProperties": False,
    }


def held_positions(positions: Iterable[str]) -> list[str]:
    """Return the distinct positions held, in a stable order."""
    return sorted(set(positions))


def parse_juror_answer(
    text: str, options: Sequence[str], *, cut_at: int | None = None
) -> JurorAnswer:
    """Validate a juror's raw text, or raise ``InvalidOutputError`` saying what is wrong.

    A bare label or an empty rationale is invalid output (repaired by the one re-ask), never a
    stored reason: the other jurors and the judge read it as the juror's argument. ``cut_at``
    is the reasoning's length bound on the juror's server (``text_bound``): a reasoning that
    reaches it is marked as cut off (``marked_cut``).
    """
    answer = _validate(JurorAnswer, text)
    _require_reason("reasoning", answer.reasoning, options)
    reasoning = answer.reasoning if cut_at is None else marked_cut(answer.reasoning, cut_at)
    return answer.model_copy(
        update={"position": match_option(answer.position, options), "reasoning": reasoning}
    )


def marked_cut(text: str, cut_at: int) -> str:
    """End ``text`` at its last whole word with an ellipsis if its length bound cut it off.

    A local server's grammar closes the string at ``cut_at`` characters, usually inside a
    clause and often inside a word ("... it will remove a"): shown as the juror's whole
    argument (its dissent, its shift, the judge's quote), the fragment reads as a complete
    claim. The last word may be split, so it is dropped.
    """
    stripped = text.strip()
    if len(text) < cut_at or stripped.endswith(_SENTENCE_ENDS):
        return text
    head = stripped.rpartition(" ")[0] or stripped
    return head.rstrip(_TRAILING_JOINERS) + _CUT_MARK


def parse_judge_answer(
    text: str, options: Sequence[str], positions: Iterable[str] = ()
) -> JudgeAnswer:
    """Validate the judge's raw text, or raise ``InvalidOutputError`` saying what is wrong.

    ``positions`` are the jurors' final positions. When they differ, the disagreement must
    name every position held (an option label as a word) and say why, and each dissenter note
    must be a sentence: "The jurors disagreed." tells the agent nothing it did not know.
    """
    answer = _validate(JudgeAnswer, text)
    held = held_positions(positions)
    if answer.sides is not None:
        answer = _with_sides_rendered(answer, held, options)
    disagreement = answer.disagreement or ""
    if len(held) > 1:
        _require_reason("disagreement", disagreement, options)
        missing = [p for p in held if not _names(disagreement, p)]
        if missing:
            raise InvalidOutputError(
                f"disagreement: name each position the jurors held ({', '.join(held)}) and the "
                f"argument on each side; it does not name {', '.join(missing)}"
            )
    for number, note in enumerate(answer.dissenter_notes):
        _require_reason(f"dissenter_notes.{number}.note", note.note, options)
    return answer.model_copy(update={"verdict": match_option(answer.verdict, options)})


def quoting_judge_schema(options: Sequence[str], final: Sequence[Argument]) -> dict[str, Any]:
    """Return the schema of a quoting judge (``sides: quoted``).

    For each position held in the last round (``final``), the judge names the juror who gave
    the strongest argument for it, from an enum of the jurors who held it; Jury quotes that
    juror's reasoning as the side's argument. No notes: a dissenter's own reason is its note.
    """
    held = held_positions(argument.position for argument in final)
    sides = {
        position: {
            "type": "string",
            "enum": [argument.label for argument in final if argument.position == position],
        }
        for position in held
    }
    return {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": list(options)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "sides": {
                "type": "object",
                "properties": sides,
                "required": held,
                "additionalProperties": False,
            },
        },
        "required": ["verdict", "confidence", "sides"],
        "additionalProperties": False,
    }


def parse_quoting_judge_answer(
    text: str, options: Sequence[str], final: Sequence[Argument]
) -> JudgeAnswer:
    """Validate a quoting judge's raw text and render its disagreement from the quotes.

    Each side must name a juror who held that position in the last round (``final``); its
    reasoning, already checked as a reason when the juror gave it, is the side's argument.
    """
    answer = _validate(JudgeAnswer, text)
    if answer.sides is None:
        raise InvalidOutputError("sides: name the juror with the strongest argument per position")
    by_label = {argument.label: argument for argument in final}
    quotes: dict[str, str] = {}
    for key, label in answer.sides.items():
        position = match_option(key, options)
        quoted = by_label.get(label.strip())
        if quoted is None or quoted.position != position:
            holders = [a.label for a in final if a.position == position]
            raise InvalidOutputError(
                f"sides.{position}: {label.strip()[:40]!r} did not hold {position}; name one "
                f"of {holders}"
            )
        quotes[position] = quoted.reasoning
    held = held_positions(argument.position for argument in final)
    disagreement = _render_sides(quotes, held, options, cut_at=LOCAL_REASONING_CUT_AT)
    return answer.model_copy(
        update={"verdict": match_option(answer.verdict, options), "disagreement": disagreement}
    )


@dataclass(frozen=True, slots=True)
class JudgeForm:
    """What the judge answers in and how its answer is read, given the last round it is shown.

    ``quoted``: the judge quotes (``sides: quoted``), else it writes its sides or summary.
    """

    options: tuple[str, ...]
    final: Sequence[Argument]
    quoted: bool

    def schema(self, verdicts: Sequence[str]) -> dict[str, Any]:
        """Return the judge's schema with ``verdicts`` as its verdict's options."""
        if self.quoted:
            return quoting_judge_schema(verdicts, self.final)
        positions = [argument.position for argument in self.final]
        return judge_schema(verdicts, positions, [argument.label for argument in self.final])

    def parse(self, text: str) -> JudgeAnswer:
        """Validate the judge's raw text against the case's options."""
        if self.quoted:
            return parse_quoting_judge_answer(text, self.options, self.final)
        positions = [argument.position for argument in self.final]
        return parse_judge_answer(text, self.options, positions)


def _with_sides_rendered(
    answer: JudgeAnswer, held: Sequence[str], options: Sequence[str]
) -> JudgeAnswer:
    """Check the judge's ``sides`` and render them as its ``disagreement``."""
    assert answer.sides is not None
    given = {match_option(label, options): text for label, text in answer.sides.items()}
    rendered = _render_sides(given, held, options, cut_at=_SIDE_CUT_AT)
    return answer.model_copy(update={"disagreement": rendered})


def _render_sides(
    given: Mapping[str, str], held: Sequence[str], options: Sequence[str], *, cut_at: int
) -> str:
    """Render one argument per position as a disagreement (or the agreed position's reason)."""
    # In the order of the positions held, then any other the judge argued for.
    sides = {position: given[position] for position in held if position in given} | dict(given)
    missing = [position for position in held if position not in sides]
    if missing:
        raise InvalidOutputError(f"sides: give the argument for {', '.join(missing)} too")
    for position, text in sides.items():
        _require_reason(f"sides.{position}", text, options)
    if len(sides) == 1:
        ((position, text),) = sides.items()
        return f"The jurors agreed on {position}: {_sentence(text, cut_at)}"
    return " ".join(f"For {p}: {_sentence(text, cut_at)}" for p, text in sides.items())


_SIDE_CUT_AT: Final = LOCAL_TEXT_BOUNDS["sides"][1]


def _sentence(text: str, cut_at: int) -> str:
    """End ``text`` as a sentence, marking one the length bound cut off with an ellipsis.

    A local model's text stops at the schema's bound (``cut_at``), often mid-clause ("... is
    not a"): a full stop there would present a fragment as the whole argument.
    """
    stripped = text.strip()
    if stripped.endswith(_SENTENCE_ENDS):
        return stripped
    if len(text) >= cut_at:
        return stripped.rstrip(_TRAILING_JOINERS) + _CUT_MARK
    return f"{stripped}."


def words(text: str) -> list[str]:
    """Return the words of ``text`` (letters and digits, with inner apostrophes and hyphens)."""
    return _WORD.findall(text)


def _require_reason(field: str, text: str, options: Sequence[str]) -> None:
    """Raise ``InvalidOutputError`` unless ``text`` is a sentence rather than a label.

    Numbers are not words here: "1.0, 1.0, 1.0" (a small model looping on the confidence) is
    filler, not a reason.
    """
    said = [word for word in words(text) if any(map(str.isalpha, word))]
    labels = {option.casefold() for option in options}
    if " ".join(said).casefold() in labels or len(said) < MIN_REASON_WORDS:
        raise InvalidOutputError(
            f"{field}: {text.strip()[:80]!r} is a label, not a reason; give one to three "
            "sentences saying why"
        )


def _names(text: str, option: str) -> bool:
    """Whether ``text`` names ``option`` as a whole word or phrase, ignoring case."""
    pattern = r"(?<![^\W_])" + re.escape(option) + r"(?![^\W_])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def match_option(value: str, options: Sequence[str]) -> str:
    """Return the option ``value`` names (case and surrounding space ignored)."""
    wanted = value.strip().casefold()
    for option in options:
        if option.casefold() == wanted:
            return option
    raise InvalidOutputError(f"{value!r} is not one of the options {list(options)}")


def _validate(model: type[AnswerT], text: str) -> AnswerT:
    try:
        data = json.loads(_strip_code_fence(text))
    except json.JSONDecodeError as exc:
        raise InvalidOutputError(f"not valid JSON: {exc.msg} at char {exc.pos}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidOutputError(problems) from exc


def _strip_code_fence(text: str) -> str:
    """Remove a Markdown code fence some models wrap JSON in."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        body = stripped[3:-3]
        first_newline = body.find("\n")
        return body[first_newline + 1 :] if first_newline >= 0 else body
    return stripped
