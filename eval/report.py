"""Build, write, load and compare evaluation reports.

``report.json`` is :class:`eval.schema.Report` dumped as JSON; see :mod:`eval.schema` for the
shape (accuracies are ``{"successes", "n", "value", "low", "high"}`` objects with a Wilson
95% interval). ``write_report`` also writes ``report.md`` and two PNG plots.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from eval import metrics as m
from eval.plots import plot_juror_accuracy, plot_reliability
from eval.records import METHODS, STATUSES, ItemResult
from eval.render import render_comparison, render_markdown
from eval.schema import Accuracy, Failures, JurorAccuracy, Report, Section, Shifts

Round = Literal["round1", "final"]

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
RELIABILITY_PNG = "reliability.png"
JURORS_PNG = "juror_accuracy.png"


def build_report(results: Sequence[ItemResult], *, meta: dict[str, Any]) -> Report:
    """Metrics over all results, plus one section per category."""
    by_category: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        by_category[r.category].append(r)
    overall = build_section(results)
    sections = {c: build_section(rs) for c, rs in sorted(by_category.items())}
    return Report(**dict(overall), meta=meta, by_category=sections)


def build_section(results: Sequence[ItemResult]) -> Section:
    """All metrics over one set of items."""
    names = juror_names(results)
    gold = [r.gold for r in results]
    round1 = juror_labels(results, names, "round1")
    error_corr = m.pairwise_matrix(round1, lambda a, b: m.error_correlation(a, b, gold))
    mean_corr = m.mean_offdiagonal(error_corr)
    calibrated = [r for r in results if _calibratable(r)]
    confidences = [r.judge_confidence or 0.0 for r in calibrated]
    correct = [r.is_correct("judge") for r in calibrated]
    judge = [r.verdict("judge") for r in results]
    return Section(
        n=len(results),
        accuracy=_accuracy(results, names),
        kappa=m.cohen_kappa(judge, gold),
        kappa_by_method={k: m.cohen_kappa([r.verdict(k) for r in results], gold) for k in METHODS},
        ece=m.expected_calibration_error(confidences, correct),
        brier=m.brier_score(confidences, correct),
        calibrated_n=len(calibrated),
        reliability=m.reliability_bins(confidences, correct),
        shifts=_shifts(results, names),
        agreement=m.pairwise_matrix(round1, m.agreement),
        error_correlation=error_corr,
        mean_error_correlation=mean_corr,
        n_eff=m.effective_votes(len(names), mean_corr) if names and mean_corr is not None else None,
        oracle_accuracy=m.accuracy([any(p == r.gold for p in _round1(r)) for r in results]),
        oracle_gap=m.oracle_gap([_round1(r) for r in results], judge, gold),
        position_bias=_position_bias(results),
        failures=_failures(results, names),
        usage=_usage(results),
    )


def juror_names(results: Sequence[ItemResult]) -> list[str]:
    """Every juror that appears on any item, sorted."""
    return sorted({name for r in results for name in r.jurors})


def juror_labels(
    results: Sequence[ItemResult], names: Sequence[str], which: Round
) -> dict[str, list[str | None]]:
    """Per juror, its round-1 or final position on every item (None: failed or absent)."""
    labels: dict[str, list[str | None]] = {}
    for name in names:
        traces = [r.jurors.get(name) for r in results]
        labels[name] = [getattr(t, which) if t is not None else None for t in traces]
    return labels


def _round1(r: ItemResult) -> list[str | None]:
    return [t.round1 for t in r.jurors.values()]


def _calibratable(r: ItemResult) -> bool:
    # Calibration needs a verdict and its confidence; the rest is reported under failures.
    return r.status == "ok" and r.judge is not None and r.judge_confidence is not None


def _accuracy(results: Sequence[ItemResult], names: Sequence[str]) -> Accuracy:
    def juror(name: str) -> JurorAccuracy:
        traces = [r.jurors.get(name) for r in results]
        golds = [r.gold for r in results]
        return JurorAccuracy(
            round1=m.accuracy(
                [t is not None and t.round1 == g for t, g in zip(traces, golds, strict=True)]
            ),
            final=m.accuracy(
                [t is not None and t.final == g for t, g in zip(traces, golds, strict=True)]
            ),
        )

    per_method = {k: m.accuracy([r.is_correct(k) for r in results]) for k in METHODS}
    if not any(r.judge_uncalibrated is not None for r in results):
        # No calibrated judge: the judge's own choice is its verdict, not another method.
        del per_method["judge_uncalibrated"]
    return Accuracy(**per_method, jurors={name: juror(name) for name in names})


def _shifts(results: Sequence[ItemResult], names: Sequence[str]) -> Shifts:
    per_juror = {
        name: m.sum_shifts(
            m.juror_shifts(r.jurors[name].positions, r.gold) for r in results if name in r.jurors
        )
        for name in names
    }
    return Shifts(total=m.sum_shifts(per_juror.values()), jurors=per_juror)


def _position_bias(results: Sequence[ItemResult]) -> m.PositionBias:
    orders: dict[str, dict[str, str | None]] = defaultdict(dict)
    for r in results:
        if r.pair_id is not None and r.order is not None:
            orders[r.pair_id][r.order] = m.to_original(r.verdict("judge"), r.options, r.order)
    both = [(o["ab"], o["ba"]) for o in orders.values() if "ab" in o and "ba" in o]
    return m.position_bias(both, missing=len(orders) - len(both))


def _failures(results: Sequence[ItemResult], names: Sequence[str]) -> Failures:
    statuses = Counter(r.status for r in results)
    errors = Counter(_first_line(r.error) for r in results if r.error)
    failed_rounds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for r in results:
        for name, trace in r.jurors.items():
            failed_rounds[name] += sum(p is None for p in trace.positions)
            reasons.update(_first_line(f) for f in trace.failures if f)
    return Failures(
        not_ok=len(results) - statuses["ok"],
        by_status={s: statuses[s] for s in STATUSES},
        errors=dict(errors.most_common()),
        juror_failed_rounds={name: failed_rounds[name] for name in names},
        juror_failure_reasons=dict(reasons.most_common()),
    )


def _first_line(text: str) -> str:
    # Group errors by their first line; tracebacks and ids below it would split the counts.
    return text.strip().splitlines()[0][:160] if text.strip() else "(empty)"


def _usage(results: Sequence[ItemResult]) -> dict[str, m.Summary]:
    # Failed items are included: their tokens, cost and time were spent all the same.
    return {
        "latency_ms": m.summarize([r.latency_ms for r in results]),
        "prompt_tokens": m.summarize([float(r.prompt_tokens) for r in results]),
        "completion_tokens": m.summarize([float(r.completion_tokens) for r in results]),
        "total_tokens": m.summarize(
            [float(r.prompt_tokens + r.completion_tokens) for r in results]
        ),
        "cost_usd": m.summarize([r.cost_usd for r in results]),
        "calls": m.summarize([float(r.calls) for r in results]),
        "juror_calls": m.summarize([float(r.juror_calls) for r in results]),
    }


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write report.json, report.md and the PNG plots into out_dir; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / REPORT_JSON, out / REPORT_MD, out / RELIABILITY_PNG, out / JURORS_PNG]
    paths[0].write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(render_markdown(report), encoding="utf-8")
    plot_reliability(report.reliability, paths[2], ece=report.ece, n=report.calibrated_n)
    plot_juror_accuracy(report.accuracy, paths[3])
    return paths


def load_report(out_dir: str | Path) -> Report:
    """Read back the report.json that write_report put in out_dir."""
    return Report.model_validate_json((Path(out_dir) / REPORT_JSON).read_text(encoding="utf-8"))


def compare_reports(dirs: Sequence[str | Path]) -> str:
    """Several runs side by side as one markdown table (run label: meta name or folder)."""
    runs: list[tuple[str, Report]] = []
    for d in dirs:
        report = load_report(d)
        label = str(report.meta.get("name") or Path(d).name)
        if any(label == seen for seen, _ in runs):
            label = f"{label} ({d})"  # two runs with one name: tell the columns apart
        runs.append((label, report))
    return render_comparison(runs)
