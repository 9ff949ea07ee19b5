"""The structured answers jurors and the judge must give, and their validation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.providers.errors import InvalidOutputError

JUROR_SCHEMA_NAME = "juror_position"
JUDGE_SCHEMA_NAME = "judge_verdict"

AnswerT = TypeVar("AnswerT", bound=BaseModel)

MIN_REASON_WORDS = 3
"""A reason is a sentence: "no", "Yes." or "B is better" in two words is a label, not a reason."""
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
    """The judge's verdict on a transcript."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    verdict: str
    confidence: float
    disagreement: str = Field(max_length=4000)
    dissenter_notes: list[DissenterNote] = Field(default_factory=list, max_length=20)

    @field_validator("confidence", mode="before")
    @classmethod
    def _normalise_confidence(cls, value: Any) -> float:
        return _confidence(value)


def juror_schema(options: Sequence[str]) -> dict[str, Any]:
    """Return the JSON schema a juror must answer in."""
    return {
        "type": "object",
        "properties": {
            "position": {"type": "string", "enum": list(options)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": {"type": "string"},
            "evidence": {"type": ["string", "null"]},
        },
        "required": ["position", "confidence", "reasoning", "evidence"],
        "additionalProperties": False,
    }


def judge_schema(options: Sequence[str]) -> dict[str, Any]:
    """Return the JSON schema the judge must answer in."""
    note = {
        "type": "object",
        "properties": {"juror": {"type": "string"}, "note": {"type": "string"}},
        "required": ["juror", "note"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": list(options)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "disagreement": {"type": "string"},
            "dissenter_notes": {"type": "array", "items": note},
        },
        "required": ["verdict", "confidence", "disagreement", "dissenter_notes"],
        "additionalProperties": False,
    }


def parse_juror_answer(text: str, options: Sequence[str]) -> JurorAnswer:
    """Validate a juror's raw text, or raise ``InvalidOutputError`` saying what is wrong.

    A bare label or an empty rationale is invalid output (repaired by the one re-ask), never a
    stored reason: the other jurors and the judge read it as the juror's argument.
    """
    answer = _validate(JurorAnswer, text)
    _require_reason("reasoning", answer.reasoning, options)
    return answer.model_copy(update={"position": match_option(answer.position, options)})


def parse_judge_answer(
    text: str, options: Sequence[str], positions: Iterable[str] = ()
) -> JudgeAnswer:
    """Validate the judge's raw text, or raise ``InvalidOutputError`` saying what is wrong.

    ``positions`` are the jurors' final positions. When they differ, the disagreement must
    name every position held (an option label as a word) and say why, and each dissenter note
    must be a sentence: "The jurors disagreed." tells the agent nothing it did not know.
    """
    answer = _validate(JudgeAnswer, text)
    held = sorted(set(positions))
    if len(held) > 1:
        _require_reason("disagreement", answer.disagreement, options)
        missing = [p for p in held if not _names(answer.disagreement, p)]
        if missing:
            raise InvalidOutputError(
                f"disagreement: name each position the jurors held ({', '.join(held)}) and the "
                f"argument on each side; it does not name {', '.join(missing)}"
            )
    for number, note in enumerate(answer.dissenter_notes):
        _require_reason(f"dissenter_notes.{number}.note", note.note, options)
    return answer.model_copy(update={"verdict": match_option(answer.verdict, options)})


def words(text: str) -> list[str]:
    """Return the words of ``text`` (letters and digits, with inner apostrophes and hyphens)."""
    return _WORD.findall(text)


def _require_reason(field: str, text: str, options: Sequence[str]) -> None:
    """Raise ``InvalidOutputError`` unless ``text`` is a sentence rather than a label."""
    said = words(text)
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
