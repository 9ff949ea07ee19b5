"""The deterministic train/test split: same halves for the same seed, pairs kept together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.harness import RunPlan, select_items
from eval.split import split_ids


def test_the_split_is_deterministic_disjoint_and_sized_by_the_ratio() -> None:
    ids = [f"item-{n:02d}" for n in range(10)]

    train, test = split_ids(ids, seed=7, ratio=0.3)
    again = split_ids(list(reversed(ids)), seed=7, ratio=0.3)
    other = split_ids(ids, seed=8, ratio=0.3)

    assert (train, test) == again  # the file's order does not matter
    assert len(train) == 3
    assert len(test) == 7
    assert train | test == set(ids)
    assert not train & test
    assert other != (train, test)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.5])
def test_a_ratio_outside_the_open_interval_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="train ratio"):
        split_ids(["a", "b"], ratio=ratio)


def test_both_orders_of_a_pairwise_record_fall_on_the_same_side(tmp_path: Path) -> None:
    dataset = tmp_path / "pairs.jsonl"
    rows = [
        {
            "id": f"p{n}",
            "instruction": "Say hi.",
            "response_a": "hi",
            "response_b": "no",
            "answer": "a",
            "category": "Natural",
        }
        for n in range(6)
    ]
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    def side(split: str) -> list[tuple[str, str | None]]:
        plan = RunPlan(dataset=dataset, out=tmp_path, split=split, split_seed=1)  # type: ignore[arg-type]
        return [(item.item_id, item.order) for item in select_items(plan)]

    train, test = side("train"), side("test")

    assert len(train) == len(test) == 6
    assert {i for i, _ in train}.isdisjoint({i for i, _ in test})
    assert sorted(str(o) for _, o in train) == ["ab", "ab", "ab", "ba", "ba", "ba"]
    # The recorded provider finds the recording through the item id and the order.
    plan = RunPlan(dataset=dataset, out=tmp_path, split="train", split_seed=1)
    first = select_items(plan)[0]
    assert first.request.metadata["item_id"] == first.item_id
    assert first.request.metadata["order"] == first.order
