"""Markdown rendering of reports: one report, or several runs side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eval.metrics import Matrix, Proportion, ShiftCounts
from eval.records import METHODS, Method
from eval.schema import Report, Section

DASH = "-"  # shown for undefined metrics


def fmt(x: float | None, digits: int = 3) -> str:
    """A number with fixed decimals, or a dash when undefined."""
    return DASH if x is None else f"{x:.{digits}f}"


def fmt_prop(p: Proportion) -> str:
    """'value [low, high]' for a proportion, or a dash when n == 0."""
    if p.value is None:
        return DASH
    return f"{p.value:.3f} [{fmt(p.low)}, {fmt(p.high)}]"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _methods(s: Section) -> str:
    rows = [
        [k, fmt_prop(s.accuracy.of(k)), str(s.accuracy.of(k).n), fmt(s.kappa_by_method.get(k))]
        for k in s.accuracy.methods()
    ]
    rows.append(["oracle (any juror, round 1)", fmt_prop(s.oracle_accuracy), str(s.n), DASH])
    return table(["method", "accuracy [95% CI]", "n", "kappa"], rows)


def _jurors(s: Section) -> str:
    def row(name: str) -> list[str]:
        acc, sh = s.accuracy.jurors[name], s.shifts.jurors.get(name, ShiftCounts())
        moves = [sh.wrong_to_right, sh.right_to_wrong, sh.other_change, sh.unchanged]
        failed = s.failures.juror_failed_rounds.get(name, 0)
        return [name, fmt_prop(acc.round1), fmt_prop(acc.final), *map(str, moves), str(failed)]

    headers = ["juror", "round 1", "final", "wrong→right", "right→wrong", "other change"]
    return table([*headers, "unchanged", "failed rounds"], [row(n) for n in s.accuracy.jurors])


def _matrix(matrix: Matrix) -> str:
    names = list(matrix)
    return table(["", *names], [[a, *(fmt(matrix[a][b]) for b in names)] for a in names])


def _calibration(s: Section) -> str:
    rows = [
        [f"{b.lower:.1f} to {b.upper:.1f}", str(b.count), fmt(b.mean_confidence), fmt(b.accuracy)]
        for b in s.reliability
        if b.count
    ]
    head = f"ECE {fmt(s.ece)}, Brier {fmt(s.brier)} over {s.calibrated_n} items with a verdict."
    return head + "\n\n" + table(["confidence", "count", "mean confidence", "accuracy"], rows)


def _failures(s: Section) -> str:
    f = s.failures
    rows = [[f"status: {k}", str(v)] for k, v in f.by_status.items()]
    rows += [[f"error: {_escape(k)}", str(v)] for k, v in f.errors.items()]
    rows += [[f"juror failure: {_escape(k)}", str(v)] for k, v in f.juror_failure_reasons.items()]
    return table(["failure", "count"], rows)


def _usage(s: Section) -> str:
    def row(key: str) -> list[str]:
        u, digits = s.usage[key], 4 if key.endswith("_usd") else 1  # cents matter for cost
        return [key, *(fmt(x, digits) for x in (u.p50, u.p95, u.mean, u.total))]

    return table(["quantity", "p50", "p95", "mean", "total"], [row(k) for k in s.usage])


def _categories(r: Report) -> str:
    methods = r.accuracy.methods()

    def row(name: str, s: Section) -> list[str]:
        accs = [fmt_prop(s.accuracy.of(k)) for k in methods]
        return [_escape(name), str(s.n), *accs, fmt(s.ece), fmt(s.n_eff, 2), str(s.failures.not_ok)]

    headers = ["category", "n", *methods, "ECE", "n_eff", "not ok"]
    return table(headers, [row(name, s) for name, s in r.by_category.items()])


def _summary(s: Section) -> str:
    pb = s.position_bias
    return "\n".join(
        [
            f"- items: {s.n} ({s.failures.not_ok} not ok, counted as wrong)",
            f"- oracle gap (a juror right in round 1, judge wrong): {fmt_prop(s.oracle_gap)}",
            f"- mean round-1 error correlation: {fmt(s.mean_error_correlation)}; "
            f"effective independent votes n_eff: {fmt(s.n_eff, 2)} of {len(s.accuracy.jurors)}",
            f"- position bias (verdict flips when order swapped): {fmt_prop(pb.inconsistent)} "
            f"over {pb.pairs - pb.incomplete} complete pairs ({pb.incomplete} incomplete)",
        ]
    )


def render_markdown(report: Report) -> str:
    """The whole report as readable markdown."""
    meta = table(
        ["key", "value"], [[_escape(str(k)), _escape(str(v))] for k, v in report.meta.items()]
    )
    parts = [
        "# Jury evaluation report",
        meta,
        "## Summary\n\n" + _summary(report),
        "## Accuracy\n\n" + _methods(report),
        "## Jurors\n\n" + _jurors(report),
        "## Calibration of the verdict confidence\n\n" + _calibration(report),
        "## Round-1 agreement\n\n" + _matrix(report.agreement),
        "## Round-1 error correlation (phi)\n\n" + _matrix(report.error_correlation),
        "## By category\n\n" + _categories(report),
        "## Failures\n\n" + _failures(report),
        "## Usage per item\n\n" + _usage(report),
    ]
    return "\n\n".join(parts) + "\n"


_Row = tuple[str, Callable[[Section], str]]


def _accuracy_cell(method: Method) -> Callable[[Section], str]:
    # A factory, so each row's closure keeps its own method.
    return lambda s: fmt_prop(s.accuracy.of(method))


COMPARE_ROWS: list[_Row] = [
    ("n", lambda s: str(s.n)),
    *[(f"accuracy: {k}", _accuracy_cell(k)) for k in METHODS],
    ("kappa", lambda s: fmt(s.kappa)),
    ("ECE", lambda s: fmt(s.ece)),
    ("Brier", lambda s: fmt(s.brier)),
    ("oracle gap", lambda s: fmt_prop(s.oracle_gap)),
    ("n_eff", lambda s: fmt(s.n_eff, 2)),
    ("position bias", lambda s: fmt_prop(s.position_bias.inconsistent)),
    ("not ok", lambda s: str(s.failures.not_ok)),
    ("latency p50 / p95 ms", lambda s: _p(s, "latency_ms", 0)),
    ("tokens p50 / p95", lambda s: _p(s, "total_tokens", 0)),
    ("cost total USD", lambda s: _total(s, "cost_usd", 4)),
]


def _p(s: Section, key: str, digits: int) -> str:
    u = s.usage.get(key)
    return DASH if u is None else f"{fmt(u.p50, digits)} / {fmt(u.p95, digits)}"


def _total(s: Section, key: str, digits: int) -> str:
    u = s.usage.get(key)
    return DASH if u is None else fmt(u.total, digits)


def render_comparison(runs: Sequence[tuple[str, Report]]) -> str:
    """Runs side by side: one column per run, one row per headline metric."""
    rows = [[name, *(get(r) for _, r in runs)] for name, get in COMPARE_ROWS]
    categories = sorted({c for _, r in runs for c in r.by_category})
    for c in categories:
        cells = [_category_judge(r, c) for _, r in runs]
        rows.append([f"judge accuracy: {_escape(c)}", *cells])
    return table(["metric", *(_escape(label) for label, _ in runs)], rows) + "\n"


def _category_judge(r: Report, category: str) -> str:
    s = r.by_category.get(category)
    return DASH if s is None else fmt_prop(s.accuracy.judge)
