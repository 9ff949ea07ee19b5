"""Validation and correctness rules of eval.records.ItemResult."""

from __future__ import annotations

import pydantic
import pytest

from eval.records import ItemResult, JurorTrace


def _item(**overrides: object) -> ItemResult:
    fields: dict[str, object] = {
        "item_id": "i1",
        "category": "c",
        "gold": "A",
        "options": ["A", "B"],
        "judge": "A",
        "round1_majority": "A",
    }
    fields.update(overrides)
    return ItemResult.model_validate(fields)


def test_gold_must_be_an_option() -> None:
    with pytest.raises(pydantic.ValidationError, match="not one of options"):
        _item(gold="C")


def test_records_are_frozen() -> None:
    item = _item()
    with pytest.raises(pydantic.ValidationError):
        item.judge = "B"  # type: ignore[misc]


def test_not_ok_items_count_as_wrong_for_every_method() -> None:
    assert _item().is_correct("judge")
    failed = _item(status="no_quorum")
    assert failed.verdict("judge") is None
    assert not failed.is_correct("judge")
    assert not failed.is_correct("round1_majority")


def test_juror_trace_round1_and_final() -> None:
    trace = JurorTrace(positions=["A", None], confidences=[0.7, None], failures=[None, "timeout"])
    assert trace.round1 == "A"
    assert trace.final is None  # a failed last round is not replaced by an earlier answer
    assert JurorTrace().round1 is None


def test_confidence_out_of_range_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError):
        _item(judge_confidence=1.5)
