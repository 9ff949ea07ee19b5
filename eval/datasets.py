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
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from app.core.errors import InvalidRequestError
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


def load_items(path: Path) -> Iterator[EvalItem]:
    """Yield the evaluation items of a JSONL dataset, in file order."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                yield from _items(record)
            except (json.JSONDecodeError, KeyError, ValidationError, ValueError) as exc:
                raise InvalidRequestError(
                    f"{path}:{number}: not a dataset record: {exc}", field="dataset"
                ) from exc


def _items(record: dict[str, Any]) -> Iterator[EvalItem]:
    if "instruction" in record:
        yield _pairwise(record, "ab")
        yield _pairwise(record, "ba")
    else:
        yield _question(record)


def _question(record: dict[str, Any]) -> EvalItem:
    texts: list[str] = record["options"]
    letters = list(string.ascii_uppercase[: len(texts)])
    choices = "\n".join(f"({letter}) {text}" for letter, text in zip(letters, texts, strict=True))
    question = f"{record['question']}\n\nChoices:\n{choices}\n\nAnswer with the letter."
    category = str(record.get("category") or "default")
    return EvalItem(
        key=record["id"],
        item_id=record["id"],
        category=category,
        gold=record["answer"],
        options=letters,
        request=VerdictRequest(
            question=question,
            context=record.get("context"),
            options=letters,
            category=category,
            metadata={"eval_item": record["id"], "item_id": record["id"]},
        ),
    )


def _pairwise(record: dict[str, Any], order: Order) -> EvalItem:
    first, second = ("response_a", "response_b") if order == "ab" else ("response_b", "response_a")
    context = (
        f"INSTRUCTION:\n{record['instruction']}\n\n"
        f"RESPONSE A:\n{record[first]}\n\nRESPONSE B:\n{record[second]}"
    )
    original = str(record["answer"]).lower()
    gold = original.upper() if order == "ab" else ("B" if original == "a" else "A")
    category = str(record.get("category") or "default")
    return EvalItem(
        key=f"{record['id']}:{order}",
        item_id=record["id"],
        category=category,
        gold=gold,
        options=["A", "B"],
        order=order,
        pair_id=record["id"],
        request=VerdictRequest(
            question=PAIRWISE_QUESTION,
            context=context,
            options=["A", "B"],
            category=category,
            metadata={"eval_item": record["id"], "item_id": record["id"], "order": order},
        ),
    )
