"""The eval side of sequential verdicts: the run under the mode, the comparison, the replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.harness import RunPlan, load_results, run_eval
from eval.records import ItemResult, JurorTrace
from eval.sequential import compare_runs, replay_sequential, sequential_config
from tests.builders import open_bench, scripted_config, step
from tests.eval.test_harness import QUESTIONS, write_jsonl


def item(key: str, verdict: str, juror_calls: int, **fields: Any) -> ItemResult:
    return ItemResult(
        item_id=key,
        category="c",
        gold="A",
        options=["A", "B"],
        judge=verdict,
        juror_calls=juror_calls,
        calls=juror_calls,
        **fields,
    )


def test_the_comparison_counts_calls_and_accuracy_on_the_common_items() -> None:
    full = {k: item(k, v, 5) for k, v in (("1", "A"), ("2", "A"), ("3", "B"), ("4", "A"))}
    seq = {
        "1": item("1", "A", 2, convened=["x", "y"], convening_stop="settled"),
        "2": item("2", "B", 3, convened=["x", "y", "z"], convening_stop="target"),
        "3": item("3", "B", 2, convened=["x", "y"], convening_stop="settled"),
        "4": item("4", "A", 1, convened=["x"], convening_stop="settled"),
    }

    row = compare_runs(full, seq)

    # Calls 20 -> 8: 60% fewer; accuracy 3/4 -> 2/4: 25 points lost.
    assert row["call_reduction"] == pytest.approx(0.6)
    assert row["accuracy_loss_points"] == pytest.approx(25.0)
    assert row["agreement_with_full"] == pytest.approx(0.75)
    assert row["stops"] == {"settled": 3, "target": 1}
    assert row["convened"] == {1: 1, 2: 2, 3: 1}
    assert row["goal_met"] is False


def test_the_replay_convenes_the_weighted_juror_and_the_cheapest_filler() -> None:
    jurors = {
        "big": JurorTrace(positions=["A"]),
        "cheap": JurorTrace(positions=["B"]),
        "other": JurorTrace(positions=["B"]),
    }
    results = [item("1", "A", 3, jurors=jurors)]
    weights = {"big": 1.0, "cheap": 0.0, "other": 0.0}

    row = replay_sequential(
        results, weights, {"big": 40.0, "cheap": 0.0, "other": 1.0}, target=0.95, quorum=2
    )

    # big (the only weight) and cheap: A leads 1 to 0, other weighs 0: settled after 2 of 3.
    assert row["call_reduction"] == pytest.approx(1 / 3)
    assert (row["accuracy_full"], row["accuracy_sequential"]) == (1.0, 1.0)


@pytest.mark.anyio
async def test_a_sequential_run_reports_who_was_convened_per_item(
    sqlite_database: str, tmp_path: Path
) -> None:
    config = sequential_config(
        scripted_config(
            jurors={"a1": [step("A")], "a2": [step("A")], "b1": [step("B")]},
            default_options=["A", "B"],
            max_rounds=1,
            quorum=2,
        ),
        target=0.99,
    )
    dataset = write_jsonl(tmp_path / "q.jsonl", QUESTIONS[:2])
    async with open_bench(sqlite_database, config) as bench:
        report = await run_eval(bench.service, RunPlan(dataset=dataset, out=tmp_path / "run"))

    results = list(load_results(tmp_path / "run").values())
    # a1 and a2 agree 2 to 0, a lead of 2 over b1's 1 still out: settled, b1 never called.
    assert [(r.convened, r.convening_stop, r.juror_calls) for r in results] == [
        (["a1", "a2"], "settled", 2),
        (["a1", "a2"], "settled", 2),
    ]
    assert report.usage["juror_calls"].mean == 2.0
