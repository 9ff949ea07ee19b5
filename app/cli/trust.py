"""``jury trust …``: outcomes, statistics, proposals, review, rollback and audit from a shell.

Every command runs the same services as the API, in one unit of work (committed on success).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from app.cli.context import ConfigOption, console, parsed, run_in_runtime, settings_for
from app.core.config import load_config
from app.core.db import session_scope
from app.core.pages import Window
from app.runtime import Runtime
from app.trust.decision import (
    FLIPS_PER_PAGE,
    DecisionSummary,
    FlipPage,
    decision_summary,
    flip_page,
)
from app.trust.models import OutcomeSource, ProposalKind, ProposalStatus
from app.trust.outcomes import OutcomeService
from app.trust.schemas import OutcomeCreate, ProposalCreate, ProposalOut, StatsOut, WeightsOut
from app.trust.scoring import BetaAccuracy
from app.trust.service import TrustService
from eval.evidence import DatasetEvidence, shipped_evidence

trust_app = typer.Typer(
    help="Trust: outcomes, statistics, weight proposals, review and rollback.",
    no_args_is_help=True,
)
T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
Reviewer = Annotated[str, typer.Option(help="Who decides (recorded in the audit log).")]
CommentOption = Annotated[str, typer.Option(help="Why (recorded in the audit log).")]


def _run(config: Path | None, work: Callable[[TrustService], Awaitable[T]]) -> T:
    """Run ``work`` in one unit of work (committed on success), exiting cleanly on errors."""

    async def in_session(runtime: Runtime) -> T:
        async with session_scope(runtime.sessionmaker) as session:
            service = TrustService(session, config=runtime.config, policy=runtime.trust_policy)
            return await work(service)

    return run_in_runtime(settings_for(config), in_session, models=False)


def _echo_json(value: BaseModel | list[BaseModel] | None) -> None:
    if isinstance(value, list):
        typer.echo(json.dumps([item.model_dump(mode="json") for item in value], indent=2))
    else:
        typer.echo(json.dumps(value.model_dump(mode="json") if value else None, indent=2))


def _acc(value: BetaAccuracy) -> str:
    """Render 'hits/n rate [95% credible interval]' (the interval is the Beta posterior's)."""
    if value.n == 0:
        return "-"
    rate = value.successes / value.n
    return f"{value.successes}/{value.n} {rate:.2f} [{value.lower:.2f}-{value.upper:.2f}]"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# --- outcomes ------------------------------------------------------------------------------


@trust_app.command("outcome")
def outcome(
    verdict_id: Annotated[str, typer.Argument(help="Verdict id.")],
    correct_option: Annotated[str, typer.Argument(help="The option that turned out right.")],
    source: Annotated[OutcomeSource, typer.Option(help="Who says so.")] = OutcomeSource.REVIEWER,
    note: Annotated[str | None, typer.Option(help="Free note.")] = None,
    corrects: Annotated[bool, typer.Option(help="Replace the recorded outcome.")] = False,
    by: Annotated[str | None, typer.Option(help="Who reports it.")] = None,
    config: ConfigOption = None,
) -> None:
    """Record the correct option of a verdict (or correct a recorded one)."""
    body = parsed(
        OutcomeCreate,
        correct_option=correct_option,
        source=source,
        note=note,
        corrects=True if corrects else None,
        reported_by=by,
    )
    out = _run(
        config,
        lambda t: OutcomeService(t).record(verdict_id, body, actor=by or source.value),
    )
    console.print(
        f"outcome {out.id} (revision {out.revision}) recorded: {out.correct_option} by {out.source}"
    )
    if out.rollback_proposal_id is not None:
        console.print(f"[bold yellow]rollback proposed[/]: proposal {out.rollback_proposal_id}")


# --- statistics and weights ----------------------------------------------------------------


@trust_app.command("stats")
def stats(
    config: ConfigOption = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print trust statistics per juror, judge and baseline, per category."""
    result = _run(config, lambda t: t.stats(category=category))
    if as_json:
        _echo_json(result)
        return
    print_stats(result)
    print_shipped(shipped_evidence(load_config(settings_for(config).config)))


def print_shipped(evidence: list[DatasetEvidence]) -> None:
    """Print the dev-set runs the default panel ships with (eval/reports/local-panel)."""
    if not evidence:
        return
    jurors = sorted({name for run in evidence for name in run.jurors})
    table = Table(
        "dataset", "judge (verdict)", "round-1 majority", "final majority",
        *(f"{name} (round 1)" for name in jurors), "verdict p50",
        title="Shipped evidence: the default panel's committed dev-set runs",
    )  # fmt: skip
    for run in evidence:
        latency = f"{run.latency_p50_s:.0f} s" if run.latency_p50_s is not None else "-"
        table.add_row(
            run.title, run.judge.render(), run.round1_majority.render(),
            run.final_majority.render(), *(run.jurors[name].render() for name in jurors), latency,
        )  # fmt: skip
    console.print(table)
    console.print(f"[dim]reports: {evidence[0].report.parent.parent}[/]")


def print_stats(result: StatsOut) -> None:
    """Print the juror and decider tables and any drift."""
    console.print(
        f"[bold]Trust statistics[/] from {result.n_records} verdicts with outcomes; "
        f"weights version {result.weights_version or 'neutral'}"
    )
    jurors = Table(
        "juror",
        "model",
        "category",
        "n",
        "round-1 acc. (95%)",
        "final acc. (95%)",
        "w→r",
        "r→w",
        "ECE",
        "Brier",
        "failed",
        title="Jurors",
    )
    for cell in result.jurors:
        model = cell.model if cell.current_model else f"{cell.model} [red](old)[/]"
        jurors.add_row(
            cell.juror,
            model,
            cell.category,
            str(cell.n),
            _acc(cell.round1),
            _acc(cell.final),
            str(cell.shifts.wrong_to_right),
            str(cell.shifts.right_to_wrong),
            _num(cell.calibration.ece),
            _num(cell.calibration.brier),
            str(cell.final_failures),
        )
    console.print(jurors)
    deciders = Table(
        "decider",
        "category",
        "no answer",
        "accuracy (95%)",
        "ECE",
        "Brier",
        title="Judge and baselines",
    )
    for d in result.deciders:
        calibration = d.calibration
        deciders.add_row(
            d.decider.value,
            d.category,
            str(d.missing),
            _acc(d.accuracy),
            _num(calibration.ece if calibration else None),
            _num(calibration.brier if calibration else None),
        )
    console.print(deciders)
    for dropped in result.drift:
        console.print(
            f"[bold red]drift[/]: weights of {dropped.juror} ({dropped.reason.value}) learned for "
            f"{dropped.recorded_model}, configured {dropped.current_model}: not applied"
        )


@trust_app.command("weights")
def weights(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Print the weights in force."""
    result = _run(config, lambda t: t.weights())
    if as_json:
        _echo_json(result)
        return
    print_weights(result)


def print_weights(result: WeightsOut) -> None:
    """Print the active weights as a category-by-juror table."""
    if result.version is None:
        console.print("weights: [bold]neutral[/] (no approved version active)")
    else:
        console.print(
            f"weights version [bold]{result.version}[/] ({result.action} by "
            f"{result.activated_by}); calibrated categories: "
            f"{', '.join(sorted(result.calibration)) or 'none'}"
        )
    _print_table(result.weights)
    for dropped in result.drift:
        console.print(f"[bold red]drift[/]: {dropped.juror} uses neutral ({dropped.reason.value})")


def _print_table(table: dict[str, dict[str, float]]) -> None:
    jurors = sorted({juror for row in table.values() for juror in row})
    if not jurors:
        return
    grid = Table("category", *jurors)
    for category in sorted(table):
        grid.add_row(category, *(_num(table[category].get(j)) for j in jurors))
    console.print(grid)


@trust_app.command("versions")
def versions(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List approved weights versions."""
    result = _run(config, lambda t: t.versions())
    if as_json:
        _echo_json(list(result))
        return
    grid = Table("version", "created", "by", "proposal", "calibrated", "active")
    for v in result:
        grid.add_row(
            str(v.version),
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            v.created_by,
            str(v.proposal_id or "-"),
            ", ".join(v.calibration_categories) or "-",
            "yes" if v.active else "",
        )
    console.print(grid)


# --- proposals -----------------------------------------------------------------------------


@trust_app.command("propose")
def propose(
    config: ConfigOption = None,
    kind: Annotated[ProposalKind, typer.Option(help="weights or calibration.")] = (
        ProposalKind.WEIGHTS
    ),
    by: Annotated[str, typer.Option(help="Who asks (recorded).")] = "cli",
    reason: Annotated[str | None, typer.Option(help="Why now.")] = None,
    min_evidence: Annotated[int | None, typer.Option(help="Outcomes per cell.")] = None,
    shrinkage: Annotated[float | None, typer.Option(help="Pull toward the global weight.")] = None,
    own_rule_p: Annotated[
        float | None,
        typer.Option(help="Sign-test p a category's own rule needs (default 0.05; 1: any lead)."),
    ] = None,
    unsupervised: Annotated[
        bool | None, typer.Option("--unsupervised/--supervised", help="Agreement-only.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compute a proposal from the record and store it for review (nothing is applied)."""
    body = parsed(
        ProposalCreate,
        kind=kind,
        created_by=by,
        reason=reason,
        min_evidence=min_evidence,
        shrinkage=shrinkage,
        own_rule_p=own_rule_p,
        unsupervised=unsupervised,
    )

    async def work(t: TrustService) -> Shown:
        return await _shown(t, await t.propose(body, actor=by), FLIPS_PER_PAGE)

    result, page = _run(config, work)
    if as_json:
        _echo_json(result)
        return
    print_proposal(result, page)


@trust_app.command("proposals")
def proposals(
    config: ConfigOption = None,
    status: Annotated[ProposalStatus | None, typer.Option(help="Only this status.")] = None,
    kind: Annotated[ProposalKind | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
) -> None:
    """List proposals, newest first."""
    page = _run(
        config,
        lambda t: t.proposals(
            Window(limit=limit),
            status=status.value if status else None,
            kind=kind.value if kind else None,
        ),
    )
    grid = Table("id", "kind", "status", "created", "by", "acc. active", "acc. proposed", "flips")
    for p in page.items:
        kind_label = f"{p.kind.value} (unsupervised)" if p.unsupervised else p.kind.value
        grid.add_row(
            str(p.id),
            kind_label,
            p.status.value,
            p.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            p.created_by,
            _num(p.accuracy_active),
            _num(p.accuracy_proposed),
            str(p.flipped),
        )
    console.print(grid)
    console.print(f"[dim]{len(page.items)} of {page.total}[/]")


FlipsOption = Annotated[
    int, typer.Option("--flips", min=0, max=100_000, help="Flipped verdicts to list.")
]


async def _shown(t: TrustService, proposal: ProposalOut, flips: int) -> Shown:
    page = await flip_page(t.repository.session, proposal.replay.flips, limit=flips)
    return proposal, page


Shown = tuple[ProposalOut, FlipPage]


@trust_app.command("show")
def show(
    proposal_id: Annotated[int, typer.Argument(help="Proposal id.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
    flips: FlipsOption = FLIPS_PER_PAGE,
) -> None:
    """Print a proposal, the decision first: what changes, the replay, how to decide, flips."""

    async def work(t: TrustService) -> Shown:
        return await _shown(t, await t.proposal(proposal_id), flips)

    result, page = _run(config, work)
    if as_json:
        _echo_json(result)
        return
    print_proposal(result, page)


def print_proposal(p: ProposalOut, flips: FlipPage) -> None:
    """Print a proposal in the review page's order: changes, replay, decision, flips."""
    summary = decision_summary(p)
    marker = " [bold yellow]UNSUPERVISED (agreement only, no outcomes)[/]" if p.unsupervised else ""
    console.print(
        f"[bold]Proposal {p.id}[/] {p.kind.value} ({p.status.value}){marker} by {p.created_by}, "
        f"against version {p.base_version or 'neutral'}"
    )
    console.print(f"[bold]{escape(summary.headline)}[/]")
    if p.reason:
        console.print(f"reason: {escape(p.reason)}")
    _print_changes(summary)
    r = p.replay
    console.print(
        f"replay on {r.n} verdicts with outcomes: accuracy active {summary.active.text()} → "
        f"proposed {summary.proposed.text()}; {summary.flips} would flip "
        f"({summary.flips_to_right} to the right answer, {summary.flips_to_wrong} to a wrong one, "
        f"{summary.flips_neither} wrong either way)"
    )
    if r.ece_active is not None:
        console.print(f"calibration ECE {_num(r.ece_active)} → {_num(r.ece_proposed)}")
    if p.decided_by:
        console.print(f"decided by {p.decided_by}: {escape(p.comment or '')} (version {p.version})")
    else:
        console.print(
            f"decide: jury trust approve {p.id} --reviewer NAME --comment WHY  "
            f"(or: jury trust reject {p.id} …)"
        )
    _print_flips(p.id, flips)


def _print_changes(summary: DecisionSummary) -> None:
    grid = Table(
        "category", "juror", "n", "accuracy [95% interval]", "weight", title="What changes"
    )
    for category in summary.categories:
        for cell in category.cells:
            weight = (
                f"{cell.active:.2f} → {cell.proposed:.2f}"
                if cell.changed
                else (f"{cell.active:.2f} kept" + (f" ({cell.kept})" if cell.kept else ""))
            )
            grid.add_row(category.category, cell.juror, str(cell.n), cell.accuracy, weight)
        if category.note:
            grid.add_row(category.category, "", "", escape(category.note), "")
    if grid.row_count:
        console.print(grid)
    for comparison in summary.comparisons:
        table = Table(*comparison.columns, title=comparison.title)
        for row in comparison.rows:
            table.add_row(*row)
        console.print(table)


def _print_flips(proposal_id: int, page: FlipPage) -> None:
    if not page.total:
        return
    grid = Table(
        "question",
        "category",
        "active",
        "proposed",
        "correct",
        "who was right",
        title=f"Flipped verdicts ({page.total})",
    )
    for row in page.rows:
        question = row.question or row.flip.verdict_id
        grid.add_row(
            escape(question[:80]),
            row.flip.category,
            row.flip.active,
            row.flip.proposed,
            row.flip.correct,
            row.right,
        )
    if page.rows:
        console.print(grid)
    rest = page.total - len(page.rows)
    if rest > 0:
        console.print(
            f"[dim]… and {rest} more: jury trust show {proposal_id} --flips {page.total}, "
            "or --json for every id[/]"
        )


@trust_app.command("approve")
def approve(
    proposal_id: Annotated[int, typer.Argument(help="Proposal id.")],
    reviewer: Reviewer,
    comment: CommentOption,
    config: ConfigOption = None,
) -> None:
    """Approve a pending proposal: its version is created and made active."""
    result = _run(config, lambda t: t.approve(proposal_id, reviewer=reviewer, comment=comment))
    console.print(f"proposal {result.id} approved; version {result.version} is active")


@trust_app.command("reject")
def reject(
    proposal_id: Annotated[int, typer.Argument(help="Proposal id.")],
    reviewer: Reviewer,
    comment: CommentOption,
    config: ConfigOption = None,
) -> None:
    """Reject a pending proposal."""
    result = _run(config, lambda t: t.reject(proposal_id, reviewer=reviewer, comment=comment))
    console.print(f"proposal {result.id} rejected")


@trust_app.command("rollback")
def rollback(
    version: Annotated[int, typer.Argument(help="Version to restore (0: neutral).")],
    reviewer: Reviewer,
    comment: CommentOption,
    config: ConfigOption = None,
) -> None:
    """Make an earlier weights version active again."""
    result = _run(config, lambda t: t.rollback(version, reviewer=reviewer, comment=comment))
    print_weights(result)


@trust_app.command("check")
def check(config: ConfigOption = None) -> None:
    """Run the rollback check now (it also runs after every recorded outcome)."""

    async def work(t: TrustService) -> Shown | None:
        proposal = await t.check_rollback()
        return None if proposal is None else await _shown(t, proposal, FLIPS_PER_PAGE)

    result = _run(config, work)
    if result is None:
        console.print("no rollback proposed")
    else:
        print_proposal(*result)


@trust_app.command("audit")
def audit(
    config: ConfigOption = None,
    subject: Annotated[str | None, typer.Option(help="e.g. proposal:3, weights:2.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Print the audit log, newest first: who, when, what, why."""
    page = _run(config, lambda t: t.audit(Window(limit=limit), subject=subject))
    if as_json:
        _echo_json(page)
        return
    grid = Table("when", "who", "what", "subject", "why")
    for e in page.items:
        grid.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.subject, e.reason or ""
        )
    console.print(grid)
