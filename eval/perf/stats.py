"""The benchmark's arithmetic: a verdict's upstream critical path, overhead, percentiles.

A verdict's rounds run their jurors concurrently, so a round lasts as long as its slowest
juror; the judge comes after the last round. The **critical path** is therefore the sum over
rounds of the slowest juror's latency plus the judge's latency, as Jury records them in the
response. Whatever a caller waits beyond it is Jury's **overhead**.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def critical_path_ms(verdict: Mapping[str, Any]) -> float:
    """Return Σ over rounds of the slowest juror's latency, plus the judge's latency."""
    rounds = verdict.get("rounds") or []
    path = 0.0
    for round_ in rounds:
        latencies = [float(p.get("latency_ms") or 0.0) for p in round_.get("positions") or []]
        path += max(latencies, default=0.0)
    judge = verdict.get("judge") or {}
    return path + float(judge.get("latency_ms") or 0.0)


def upstream_calls(verdict: Mapping[str, Any]) -> int:
    """Return how many juror and judge calls the verdict made (repairs included)."""
    usage = verdict.get("usage") or {}
    return int(usage.get("calls") or 0)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Return the ``q``-th percentile (0-100) by linear interpolation; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """Percentiles of a sample, in the sample's unit."""

    n: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    def as_dict(self, digits: int = 2) -> dict[str, float | int | None]:
        """Return the summary as JSON-ready numbers."""
        return {
            "n": self.n,
            "p50": _round(self.p50, digits),
            "p95": _round(self.p95, digits),
            "p99": _round(self.p99, digits),
            "max": _round(self.max, digits),
            "mean": _round(self.mean, digits),
        }


def summarize(values: Iterable[float]) -> Summary:
    """Return p50/p95/p99, max and mean of ``values``."""
    data = list(values)
    return Summary(
        n=len(data),
        p50=percentile(data, 50),
        p95=percentile(data, 95),
        p99=percentile(data, 99),
        max=max(data) if data else None,
        mean=sum(data) / len(data) if data else None,
    )


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float | None:
    """Return the least-squares slope of ``(seconds, value)`` points, per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    if var_t == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var_t * 60


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing or the divisor is ~0."""
    if numerator is None or denominator is None or abs(denominator) < 1e-9:
        return None
    return numerator / denominator


def per_verdict_ms(cpu_s: float, completed: Any) -> float | None:
    """Return CPU milliseconds per completed verdict, or None when none completed."""
    return round(cpu_s * 1000 / completed, 2) if completed else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
