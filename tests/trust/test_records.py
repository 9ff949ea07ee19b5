"""Validation of the input records."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.trust.records import JurorRecord, OutcomeRecord

from .factories import juror, record


def test_record_rejects_labels_outside_the_options() -> None:
    with pytest.raises(ValidationError, match="not among the options"):
        record("v1", "yes", [juror("a", "maybe")])


def test_record_rejects_the_reserved_category() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        record("v1", "yes", [juror("a", "yes")], category="*")


def test_record_rejects_duplicate_juror_names() -> None:
    with pytest.raises(ValidationError, match="unique"):
        record("v1", "yes", [juror("a", "yes"), juror("a", "no", model="other")])


def test_record_accepts_lists_and_is_frozen() -> None:
    built = OutcomeRecord.model_validate(
        {
            "verdict_id": "v1",
            "category": "deploy",
            "options": ["yes", "no"],
            "correct": "no",
            "jurors": [{"name": "a", "model": "m", "final_position": None}],
        }
    )
    assert built.options == ("yes", "no")
    assert built.jurors[0] == JurorRecord(name="a", model="m")
    with pytest.raises(ValidationError):
        built.correct = "yes"  # type: ignore[misc]
