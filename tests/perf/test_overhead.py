"""The benchmark's arithmetic: critical path, overhead, percentiles, slope, shape checks, rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.perf.bench import BenchOptions, rate_below, rate_between
from eval.perf.loadgen import Outcome, Sample, shape_problem
from eval.perf.report import completion_rate
from eval.perf.stats import critical_path_ms, percentile, ratio, slope_per_minute, summarize


def verdict(rounds: list[list[float]], judge_ms: float, **extra: Any) -> dict[str, Any]:
    """Return a verdict response with these juror latencies per round and judge latency."""
    return {
        "rounds": [
            {"number": n, "positions": [{"latency_ms": ms} for ms in latencies]}
            for n, latencies in enumerate(rounds, start=1)
        ],
        "judge": {"latency_ms": judge_ms},
        "usage": {"calls": sum(len(r) for r in rounds) + 1},
        **extra,
    }


def test_the_critical_path_is_each_rounds_slowest_juror_plus_the_judge() -> None:
    answer = verdict([[10.0, 30.0, 20.0], [5.0, 40.0, 15.0]], 25.0)

    assert critical_path_ms(answer) == 30.0 + 40.0 + 25.0


def test_a_failed_juror_without_latency_counts_as_zero_and_no_judge_as_zero() -> None:
    answer = {"rounds": [{"positions": [{"latency_ms": None}, {"latency_ms": 12.5}]}]}

    assert critical_path_ms(answer) == 12.5


def test_overhead_is_latency_beyond_the_critical_path() -> None:
    sample = Sample(
        planned_s=0.0,
        lag_ms=0.5,
        latency_ms=120.0,
        outcome=Outcome(ok=True, critical_path_ms=95.0, calls=7),
    )

    assert sample.overhead_ms == 25.0


def test_a_failed_request_has_no_overhead() -> None:
    failed = Sample(planned_s=0, lag_ms=0, latency_ms=5, outcome=Outcome(ok=False, error="503"))

    assert failed.overhead_ms is None


def test_percentiles_interpolate_linearly() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0


def test_summary_reports_count_max_and_mean() -> None:
    summary = summarize([1.0, 2.0, 3.0, 4.0])

    assert (summary.n, summary.max, summary.mean, summary.p50) == (4, 4.0, 2.5, 2.5)


def test_rss_slope_is_per_minute_and_zero_when_flat() -> None:
    assert slope_per_minute([(0.0, 100.0), (30.0, 101.0), (60.0, 102.0)]) == pytest.approx(2.0)
    assert slope_per_minute([(t, 50.0) for t in range(10)]) == 0.0
    assert slope_per_minute([(0.0, 1.0)]) is None


def test_ratio_refuses_a_missing_or_zero_divisor() -> None:
    assert ratio(6.0, 3.0) == 2.0
    assert ratio(6.0, 0.0) is None
    assert ratio(None, 3.0) is None


def test_throughput_counts_completions_between_the_first_and_the_last() -> None:
    assert completion_rate([1.0, 1.5, 2.0, 2.5, 3.0]) == pytest.approx(2.0)
    assert completion_rate([1.0]) is None


def test_only_a_two_round_seven_call_verdict_without_failures_has_the_bench_shape() -> None:
    good = verdict([[1, 2, 3], [1, 2, 3]], 1)
    early_stop = verdict([[1, 2, 3]], 1)
    failed = verdict([[1, 2, 3], [1, 2, 3]], 1, failures=[{"kind": "timeout"}])

    assert shape_problem(good) is None
    assert shape_problem(early_stop) == "1 rounds, 4 calls"
    assert shape_problem(failed) == "failed calls: timeout"


def steps_at(*rates_passed: tuple[float, bool]) -> list[dict[str, Any]]:
    return [{"rate": rate, "pass": passed} for rate, passed in rates_passed]


def test_with_no_rate_passing_the_sweep_steps_down_by_halves_to_five() -> None:
    assert rate_below(steps_at((40, False), (80, False))) == 20
    assert rate_below(steps_at((40, False), (20, False))) == 10
    assert rate_below(steps_at((25, False))) == 10  # 12.5, in steps of 5
    assert rate_below(steps_at((10, False))) == 5
    assert rate_below(steps_at((5, False))) is None
    assert rate_below(steps_at((7, False))) == 5  # never below the lowest rate


def test_once_a_rate_has_passed_the_sweep_does_not_step_down() -> None:
    assert rate_below(steps_at((40, False), (20, True))) is None
    assert rate_below(steps_at((10, True), (50, False))) is None
    assert rate_below([]) is None


def test_refining_bisects_between_the_highest_pass_and_the_lowest_fail_above_it() -> None:
    grid = steps_at((40, True), (80, False), (120, False))
    assert rate_between(grid) == 60
    assert rate_between([*grid, *steps_at((60, True))]) == 70
    assert rate_between([*grid, *steps_at((60, False))]) == 50
    assert rate_between([*grid, *steps_at((60, True), (70, False))]) == 65
    # A fail below the highest pass (a noisy step) does not bound the ceiling from above.
    assert rate_between(steps_at((40, False), (60, True), (80, False))) == 70


def test_refining_stops_a_quantum_apart_or_without_a_pass_and_a_fail() -> None:
    assert rate_between(steps_at((40, True), (45, False))) is None
    assert rate_between(steps_at((40, True), (80, True))) is None
    assert rate_between(steps_at((40, False), (80, False))) is None
    assert rate_between([]) is None


def test_the_workers_phase_refines_its_ceilings_in_a_quick_run_too(tmp_path: Path) -> None:
    quick = BenchOptions.quick_run(tmp_path)
    assert quick.refinements == 0
    assert quick.worker_refinements == 3
    assert quick.worker_step_s > quick.step_s  # a p99 over more than a handful of stalls
