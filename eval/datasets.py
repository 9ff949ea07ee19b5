"""Labelled datasets: the two JSONL schemas of ``shared/datasets`` turned into verdict requests.

Question records show their options as lettered choices (A), (B), … and the panel answers with
the letter. Pairwise records are judged twice, in a/b and in b/a order, to expose position bias.
``meta`` is never shown to jurors: in ASSEBench it holds the annotators' rationale.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from app.core.errors import InvalidRequestError
from app.core.validation import validation_body
from app.deliberation.schemas import VerdictRequest
from eval.records import Order

PAIRWISE_QUESTION = (
    "Which response follows the instruction better? Judge only how faithfully and correctly "
    "each response does what the instruction asks, not its length or style."
)


class EvalItem(BaseModel):
    """One request to put to the panel, with its gold answer in the presented frame."""

    model_config = ConfigDict(frozen=True)

    key: str
    item_id: str
    category: str
    gold: str
    options: list[str]
    order: Order | None = None
    pair_id: str | None = None
    request: VerdictRequest


# A record's own fields; the rest (``source``, ``meta``) is the dataset's, never the panel's.
RecordId = Annotated[str, Field(min_length=1)]
Text = Annotated[str, Field(min_length=1)]


class QuestionRecord(BaseModel):
    """A judgement or multiple-choice record: options shown as (A), (B), …; ``answer`` a letter."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: RecordId
    question: Text
    context: str | None = None
    options: Annotated[list[Text], Field(min_length=2, max_length=len(string.ascii_uppercase))]
    answer: str
    category: str | None = None

    @property
    def letters(self) -> list[str]:
        """Return the options' letters, A first."""
        return _letters(len(self.options))

    @field_validator("answer")
    @classmethod
    def _answer_is_a_letter_of_the_options(cls, answer: str, info: ValidationInfo) -> str:
        options = info.data.get("options")
        if options is None:  # refused already: its own error says why
            return answer
        letters = _letters(len(options))
        if answer.strip().upper() not in letters:
            raise ValueError(f"{answer!r} is not the letter of an option ({', '.join(letters)})")
        return answer.strip().upper()


def _letters(count: int) -> list[str]:
    return list(string.ascii_uppercase[:count])


class PairwiseRecord(BaseModel):
    """A pairwise record: which of two responses follows the instruction; ``answer`` a or b."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: RecordId
    instruction: Text
    response_a: str
    response_b: str
    answer: Annotated[Literal["a", "b"], BeforeValidator(lambda v: str(v).strip().lower())]
    category: str | None = None


def load_items(path: Path) -> Iterator[EvalItem]:
    """Yield the evaluation items of a JSONL dataset, in file order.

    A line that is not a record of either schema, or whose ``id`` an earlier line has (results
    are resumed by it), is an ``InvalidRequestError`` naming the file, the line and the field.
    """
    first_line_of: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            record = _record(line, where)
            earlier = first_line_of.setdefault(record.id, number)
            if earlier != number:
                raise InvalidRequestError(
                    f"{where}: id {record.id!r} is already the id of line {earlier}",
                    field="dataset",
                )
            try:
                yield from _items(record)
            except ValidationError as exc:  # a record the verdict request refuses
                raise _not_a_record(where, exc) from exc


def _record(line: str, where: str) -> QuestionRecord | PairwiseRecord:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"{where}: not JSON: {exc}", field="dataset") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError(f"{where}: a record must be a JSON object", field="dataset")
    schema = PairwiseRecord if "instruction" in data else QuestionRecord
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise _not_a_record(where, exc) from exc


def _not_a_record(where: str, exc: ValidationError) -> InvalidRequestError:
    fields = validation_body(exc.errors())["detail"]
    return InvalidRequestError(f"{where}: not a dataset record: {fields}", field="dataset")


def _items(record: QuestionRecord | PairwiseRecord) -> Iterator[EvalItem]:
    if isinstance(record, PairwiseRecord):
        yield _pairwise(record, "ab")
        yield _pairwise(record, "ba")
    else:
        yield _question(record)


def _question(record: QuestionRecord) -> EvalItem:
    letters = record.letters
    choices = "\n".join(
        f"({letter}) {text}" for letter, text in zip(letters, record.options, strict=True)
    )
    question = f"{record.question}\n\nChoices:\n{choices}\n\nAnswer with the letter."
    category = record.category or "default"
    return EvalItem(
        key=record.id,
        item_id=record.id,
        category=category,
        gold=record.answer,
        options=letters,
        request=VerdictRequest(
            question=question,
            context=record.context,
            options=letters,
            category=category,
            metadata={"eval_item": record.id, "item_id": record.id},
        ),
    )


def _pairwise(record: PairwiseRecord, order: Order) -> EvalItem:
    first, second = (
        (record.response_a, record.response_b)
        if order == "ab"
        else (record.response_b, record.response_a)
    )
    context = f"INSTRUCTION:\n{record.instruction}\n\nRESPONSE A:\n{first}\n\nRESPONSE B:\n{second}"
    gold = record.answer.upper() if order == "ab" else ("B" if record.answer == "a" else "A")
    category = record.category or "default"
    return EvalItem(
        key=f"{record.id}:{order}",
        item_id=record.id,
        category=category,
        gold=gold,
        options=["A", "B"],
        order=order,
        pair_id=record.id,
        request=VerdictRequest(
            question=PAIRWISE_QUESTION,
            context=context,
            options=["A", "B"],
            category=category,
            metadata={"eval_item": record.id, "item_id": record.id, "order": order},
        ),
    )
