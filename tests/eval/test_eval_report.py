"""build_report -> write_report -> report.json round trip on a tiny hand-computed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.records import ItemResult, JurorTrace
from eval.report import build_report, compare_reports, load_report, write_report


def _trace(*positions: str | None) -> JurorTrace:
    failures = ["timeout" if p is None else None for p in positions]
    return JurorTrace(
        positions=list(positions), confidences=[0.5] * len(positions), failures=failures
    )


def _item(item_id: str, category: str, gold: str, **fields: Any) -> ItemResult:
    return ItemResult.model_validate(
        {"item_id": item_id, "category": category, "gold": gold, "options": ["A", "B"]} | fields
    )


# Five items, jurors j1 and j2. Pairwise pair p1 is items 3 (order ab) and 4 (order ba):
# original answer a is shown as A in item 3 and as B in item 4.
RESULTS = [
    _item("i1", "x", "A", judge="A", judge_confidence=0.9, round1_majority="A",
          final_majority="A", weighted_vote="A", latency_ms=100.0, prompt_tokens=10,
          completion_tokens=5, cost_usd=0.01,
          jurors={"j1": _trace("A", "A"), "j2": _trace("B", "A")}),
    _item("i2", "x", "B", judge="A", judge_confidence=0.6, round1_majority="A",
          final_majority="A", weighted_vote="B", latency_ms=200.0, cost_usd=0.02,
          jurors={"j1": _trace("A", "A"), "j2": _trace("B", "A")}),
    _item("i3", "y", "A", order="ab", pair_id="p1", judge="A", judge_confidence=0.8,
          round1_majority="A", final_majority="A", weighted_vote="A", latency_ms=300.0,
          jurors={"j1": _trace("A", "A"), "j2": _trace("A", "A")}),
    _item("i4", "y", "B", order="ba", pair_id="p1", judge="A", judge_confidence=0.7,
          round1_majority="B", final_majority="A", weighted_vote="B", latency_ms=400.0,
          jurors={"j1": _trace("B", "A"), "j2": _trace("B", "B")}),
    _item("i5", "y", "A", status="error", error="provider down\nTraceback ...",
          round1_majority="A", latency_ms=1000.0,
          jurors={"j1": _trace(None), "j2": _trace("A")}),
]  # fmt: skip


@pytest.fixture(scope="module")
def report_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Written once per module: drawing the PNGs is the slow part.
    tmp_path = tmp_path_factory.mktemp("report")
    report = build_report(RESULTS, meta={"name": "tiny", "panel": "j1+j2"})
    paths = write_report(report, tmp_path)
    for name in ("report.json", "report.md", "reliability.png", "juror_accuracy.png"):
        assert (tmp_path / name) in paths
        assert (tmp_path / name).stat().st_size > 0
    for png in ("reliability.png", "juror_accuracy.png"):
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    data: dict[str, Any] = json.loads((tmp_path / "report.json").read_text())
    return data


def test_required_keys(report_json: dict[str, Any]) -> None:
    required = {"n", "accuracy", "kappa", "ece", "brier", "shifts", "agreement", "n_eff"}
    required |= {"error_correlation", "oracle_gap", "position_bias", "failures", "usage"}
    assert required <= set(report_json)
    assert required <= set(report_json["by_category"]["x"])
    assert set(report_json["accuracy"]) == {
        "judge", "judge_uncalibrated", "round1_majority", "final_majority", "weighted_vote",
        "jurors",
    }  # fmt: skip
    assert report_json["meta"] == {"name": "tiny", "panel": "j1+j2"}


def test_accuracies_count_failed_items_as_wrong(report_json: dict[str, Any]) -> None:
    acc = report_json["accuracy"]
    assert report_json["n"] == 5
    # judge right on i1, i3 only: 2/5
    assert (acc["judge"]["successes"], acc["judge"]["n"]) == (2, 5)
    assert acc["judge"]["low"] < 0.4 < acc["judge"]["high"]
    # round-1 majority right on i1, i3, i4; i5 says A but errored, so wrong: 3/5
    assert acc["round1_majority"]["value"] == pytest.approx(0.6)
    assert acc["final_majority"]["value"] == pytest.approx(0.4)  # i1, i3
    assert acc["weighted_vote"]["value"] == pytest.approx(0.8)  # i1-i4
    # j1 round 1: A✓ A✗ A✓ B✓ failed✗ = 3/5; final: ✓ ✗ ✓ ✗(A) ✗ = 2/5
    # j2 round 1: B✗ B✓ A✓ B✓ A✓ = 4/5; final: ✓ ✗ ✓ ✓ ✓ = 4/5
    jurors = acc["jurors"]
    assert [jurors["j1"]["round1"]["value"], jurors["j1"]["final"]["value"]] == [0.6, 0.4]
    assert [jurors["j2"]["round1"]["value"], jurors["j2"]["final"]["value"]] == [0.8, 0.8]


def test_kappa_and_calibration(report_json: dict[str, Any]) -> None:
    # Judge A A A A None vs gold A B A B A: p_o = 2/5; pred A4 None1, gold A3 B2:
    # p_e = 4*3/25 = 0.48; kappa = (0.4 - 0.48) / 0.52 = -2/13
    assert report_json["kappa"] == pytest.approx(-2 / 13)
    # Calibrated items i1-i4: conf 0.9 0.6 0.8 0.7, right 1 0 1 0, one per bin:
    # ECE = (0.1 + 0.6 + 0.2 + 0.7) / 4 = 0.4; Brier = (0.01 + 0.36 + 0.04 + 0.49) / 4 = 0.225
    assert report_json["calibrated_n"] == 4
    assert report_json["ece"] == pytest.approx(0.4)
    assert report_json["brier"] == pytest.approx(0.225)
    assert [b["count"] for b in report_json["reliability"]][6:] == [1, 1, 1, 1]


def test_shifts(report_json: dict[str, Any]) -> None:
    # j1: i1-i3 unchanged, i4 B->A with gold B (right_to_wrong); i5 a single failed round.
    # j2: i1 B->A gold A (wrong_to_right), i2 B->A gold B (right_to_wrong), i3-i4 unchanged.
    shifts = report_json["shifts"]
    assert shifts["jurors"]["j1"] == {
        "wrong_to_right": 0, "right_to_wrong": 1, "other_change": 0, "unchanged": 3
    }  # fmt: skip
    assert shifts["total"] == {
        "wrong_to_right": 1, "right_to_wrong": 2, "other_change": 0, "unchanged": 5
    }  # fmt: skip


def test_panel_metrics(report_json: dict[str, Any]) -> None:
    # Round 1 on i1-i4 (j1 failed i5): j1 errs on i2 only, j2 on i1 only.
    # n11=0 n10=1 n01=1 n00=2: phi = (0*2 - 1*1) / sqrt(1*3*1*3) = -1/3
    assert report_json["error_correlation"]["j1"]["j2"] == pytest.approx(-1 / 3)
    # n_eff = 2 / (1 + 1*(-1/3)) = 3, clipped to the panel size 2
    assert report_json["n_eff"] == 2.0
    assert report_json["agreement"]["j1"]["j2"] == pytest.approx(0.5)  # same on i3, i4
    # Gap on i2 (j2 right), i4 (j1 right), i5 (j2 right, item errored): 3/5
    assert report_json["oracle_gap"]["value"] == pytest.approx(0.6)
    assert report_json["oracle_accuracy"]["value"] == 1.0
    # p1: judge A in order ab (original a) and A in order ba (original b): flips.
    bias = report_json["position_bias"]
    assert (bias["pairs"], bias["incomplete"], bias["inconsistent"]["value"]) == (1, 0, 1.0)


def test_failures_and_usage(report_json: dict[str, Any]) -> None:
    failures = report_json["failures"]
    assert failures["not_ok"] == 1
    assert failures["by_status"] == {"ok": 4, "no_quorum": 0, "error": 1}
    assert failures["errors"] == {"provider down": 1}
    assert failures["juror_failed_rounds"] == {"j1": 1, "j2": 0}
    assert failures["juror_failure_reasons"] == {"timeout": 1}
    latency = report_json["usage"]["latency_ms"]
    # 100 200 300 400 1000: p50 = 300; p95 rank 3.8 -> 400 + 0.8*600 = 880
    assert (latency["p50"], latency["p95"]) == (300.0, pytest.approx(880.0))
    assert report_json["usage"]["cost_usd"]["total"] == pytest.approx(0.03)
    assert report_json["usage"]["total_tokens"]["total"] == 15.0


def test_by_category(report_json: dict[str, Any]) -> None:
    x, y = report_json["by_category"]["x"], report_json["by_category"]["y"]
    assert (x["n"], y["n"]) == (2, 3)
    assert x["accuracy"]["judge"]["value"] == 0.5  # i1 right, i2 wrong
    assert y["accuracy"]["judge"]["value"] == pytest.approx(1 / 3)  # i3 right of i3-i5
    assert x["position_bias"]["pairs"] == 0
    assert y["position_bias"]["inconsistent"]["value"] == 1.0


def test_markdown_and_load_round_trip(tmp_path: Path) -> None:
    report = build_report(RESULTS, meta={"name": "tiny"})
    write_report(report, tmp_path)
    assert load_report(tmp_path) == report
    md = (tmp_path / "report.md").read_text()
    assert "| judge | 0.400 [" in md
    assert "| j2 | 0.800 [" in md
    assert "error: provider down | 1 |" in md


def test_compare_reports(tmp_path: Path) -> None:
    write_report(build_report(RESULTS, meta={"name": "run-a"}), tmp_path / "a")
    write_report(build_report(RESULTS[:2], meta={}), tmp_path / "b")
    table = compare_reports([tmp_path / "a", tmp_path / "b"])
    lines = table.splitlines()
    assert lines[0] == "| metric | run-a | b |"  # meta name, else the folder name
    assert any(line.startswith("| n | 5 | 2 |") for line in lines)
    assert any(
        line.startswith("| judge accuracy: y | 0.333 [") and line.endswith("| - |")
        for line in lines
    )


def test_empty_run_does_not_crash(tmp_path: Path) -> None:
    report = build_report([], meta={})
    assert report.n == 0
    assert report.accuracy.judge.value is None
    assert report.n_eff is None
    write_report(report, tmp_path)
    assert load_report(tmp_path).n == 0
