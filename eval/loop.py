"""The whole trust loop on held-out items: record train, propose, approve, score test.

``run_loop`` runs the train side of a deterministic split through the verdict service with its
outcomes recorded, asks the trust service for a weights proposal (rules chosen by
cross-validation), approves it, runs the test side under the approved version, and writes a
report: per category the best single juror (picked on train), the plain majority, independent
log-odds, the chosen rule and the judge, all scored on test; coverage and realised error at
each alpha; ECE before and after calibration; effective votes. ``risk_check`` repeats the
rule choice and the threshold over many random splits, offline, with the same functions the
proposal uses, to see how often the realised error among covered verdicts stays within alpha.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.core.config import JuryConfig
from app.core.db import session_scope
from app.deliberation.rules import (
    Ballot,
    best_single,
    decide,
    log_odds_rule,
    majority_rule,
    single_rule,
    vote,
)
from app.deliberation.vote import ALL_CATEGORIES
from app.providers.pricing import call_cost
from app.runtime import Runtime
from app.trust.active import juror_models
from app.trust.choice import RuleChoice, choose_rules
from app.trust.records import JurorRecord, OutcomeRecord
from app.trust.schemas import ProposalCreate
from app.trust.scoring import expected_calibration_error
from app.trust.service import TrustService
from app.verdicts.service import VerdictService
from eval.harness import OutcomeWriter, RunPlan, load_results, run_eval
from eval.records import ItemResult
from eval.sequential import (
    compare_runs,
    render_comparison,
    replay_sequential,
    sequential_config,
)
from eval.split import split_ids

ALPHAS = (0.1, 0.2)
MIN_EVIDENCE = 30
CALIBRATION_MIN_EVIDENCE = 50
RISK_SPLITS = 20
SEQUENTIAL_TEST = "test-sequential"


def outcome_records(
    results: Sequence[ItemResult], models: Mapping[str, str]
) -> list[OutcomeRecord]:
    """Turn evaluated items into the trust layer's outcome records (final positions)."""
    records = []
    for number, result in enumerate(results):
        if result.status != "ok":
            continue
        jurors = tuple(
            JurorRecord(
                name=name,
                model=models.get(name, "unknown"),
                final_position=trace.positions[-1] if trace.positions else None,
            )
            for name, trace in sorted(result.jurors.items())
        )
        records.append(
            OutcomeRecord(
                verdict_id=f"{result.item_id}:{result.order or number}",
                category=result.category,
                options=tuple(result.options),
                correct=result.gold,
                jurors=jurors,
                group=result.item_id,
            )
        )
    return records


def with_alpha(config: JuryConfig, alpha: float) -> JuryConfig:
    """Return the config with every category's risk alpha set to ``alpha``."""
    names = {*config.categories, "default"}
    policies = {
        name: config.policy(name).model_copy(update={"risk_alpha": alpha}) for name in names
    }
    return config.model_copy(update={"categories": policies})


def fit(records: Sequence[OutcomeRecord], config: JuryConfig, alpha: float) -> RuleChoice:
    """Choose every category's rule, map and threshold exactly as a weights proposal does."""
    return choose_rules(
        records,
        with_alpha(config, alpha),
        jurors=juror_models(config),
        min_evidence=MIN_EVIDENCE,
        calibration_min_evidence=CALIBRATION_MIN_EVIDENCE,
        active_maps={},
    )


def _cell(choice: RuleChoice, category: str) -> str:
    return category if category in choice.selections else ALL_CATEGORIES


@dataclass(frozen=True, slots=True)
class Decided:
    """One test ballot under the chosen rule: right or not, calibrated confidence, covered."""

    right: bool
    confidence: float
    covered: bool


def apply_choice(choice: RuleChoice, record: OutcomeRecord) -> Decided:
    """Decide a record as a verdict would under the approved rule, map and threshold."""
    cell = _cell(choice, record.category)
    ballot = _ballot(record)
    winner, share = vote(ballot, choice.weights.get(cell, {}))
    fitted = choice.calibration.get(cell) or choice.calibration.get(ALL_CATEGORIES)
    confidence = fitted.apply(share) if fitted is not None else share
    threshold = choice.risks[cell].threshold
    covered = threshold is not None and confidence >= threshold
    return Decided(right=winner == record.correct, confidence=confidence, covered=covered)


def _ballot(record: OutcomeRecord) -> Ballot:
    return Ballot(
        positions={j.name: j.final_position for j in record.jurors},
        options=record.options,
        correct=record.correct,
    )


def coverage(decided: Sequence[Decided]) -> dict[str, float | int | None]:
    """Return the share covered and the realised error among the covered."""
    covered = [d for d in decided if d.covered]
    errors = sum(not d.right for d in covered)
    return {
        "n": len(decided),
        "covered": len(covered),
        "coverage": len(covered) / len(decided) if decided else None,
        "error": errors / len(covered) if covered else None,
    }


def _accuracy(records: Sequence[OutcomeRecord], weights: Mapping[str, float]) -> float | None:
    if not records:
        return None
    return sum(decide(_ballot(r), weights) == r.correct for r in records) / len(records)


def _inside(records: Sequence[OutcomeRecord], category: str) -> list[OutcomeRecord]:
    return [r for r in records if category in (ALL_CATEGORIES, r.category)]


def baselines(
    train: Sequence[OutcomeRecord], test: Sequence[OutcomeRecord], choice: RuleChoice
) -> dict[str, dict[str, Any]]:
    """Score each baseline per category (and "*") on test, fitted on train."""
    table: dict[str, dict[str, Any]] = {}
    categories = [ALL_CATEGORIES, *sorted({r.category for r in test})]
    for category in categories:
        fit_on = [_ballot(r) for r in _inside(train, category)]
        scored = _inside(test, category)
        single = best_single(fit_on)
        chosen = [apply_choice(choice, r) for r in scored]
        table[category] = {
            "n_test": len(scored),
            "best_single": single,
            "best_single_accuracy": _accuracy(scored, single_rule(fit_on, single)),
            "majority": _accuracy(scored, majority_rule(fit_on)),
            "log_odds": _accuracy(scored, log_odds_rule(fit_on)),
            "chosen_rule": choice.selections[_cell(choice, category)].chosen
            if category != ALL_CATEGORIES
            else "per category",
            "chosen": sum(d.right for d in chosen) / len(chosen) if chosen else None,
        }
    return table


def _versus_best_single(
    train: Sequence[OutcomeRecord], test: Sequence[OutcomeRecord], decided: Sequence[Decided]
) -> dict[str, float]:
    """Return the chosen rules' test accuracy and that of the best single juror on train."""
    fit_on = [_ballot(r) for r in train]
    single = _accuracy(test, single_rule(fit_on, best_single(fit_on)))
    return {
        "ece": expected_calibration_error([(d.confidence, d.right) for d in decided]),
        "chosen_accuracy": sum(d.right for d in decided) / len(decided),
        "best_single_accuracy": single if single is not None else 0.0,
    }


def risk_check(
    records: Sequence[OutcomeRecord],
    config: JuryConfig,
    *,
    splits: int = RISK_SPLITS,
    ratio: float = 0.5,
    alphas: Sequence[float] = ALPHAS,
) -> dict[str, Any]:
    """Repeat choice and threshold on ``splits`` random splits; count error <= alpha."""
    ids = sorted({r.group or r.verdict_id for r in records})
    runs: dict[str, list[dict[str, Any]]] = {str(alpha): [] for alpha in alphas}
    for seed in range(1, splits + 1):
        train_ids, _ = split_ids(ids, seed=seed, ratio=ratio)
        train = [r for r in records if (r.group or r.verdict_id) in train_ids]
        test = [r for r in records if (r.group or r.verdict_id) not in train_ids]
        for alpha in alphas:
            choice = fit(train, config, alpha)
            decided = [apply_choice(choice, r) for r in test]
            runs[str(alpha)].append(
                {"seed": seed, **coverage(decided), **_versus_best_single(train, test, decided)}
            )
    return {
        alpha: {
            "splits": len(rows),
            "within_alpha": sum(
                1 for r in rows if r["error"] is None or r["error"] <= float(alpha)
            ),
            "mean_coverage": sum(r["coverage"] or 0.0 for r in rows) / len(rows),
            "chosen_not_below_best_single": sum(
                1 for r in rows if r["chosen_accuracy"] >= r["best_single_accuracy"]
            ),
            "mean_chosen_accuracy": sum(r["chosen_accuracy"] for r in rows) / len(rows),
            "mean_best_single_accuracy": sum(r["best_single_accuracy"] for r in rows) / len(rows),
            "mean_ece": sum(r["ece"] or 0.0 for r in rows) / len(rows),
            "ece_within_0_05": sum(1 for r in rows if (r["ece"] or 0.0) <= 0.05),
            "runs": rows,
        }
        for alpha, rows in runs.items()
    }


def calibration_errors(results: Sequence[ItemResult]) -> dict[str, float | None]:
    """Return the ECE of the served verdicts' confidence before and after calibration."""
    served = [r for r in results if r.status == "ok" and r.judge_confidence is not None]
    if not served:
        return {"before": None, "after": None}
    raw = [(r.raw_confidence or r.judge_confidence or 0.0, r.judge == r.gold) for r in served]
    calibrated = [(r.judge_confidence or 0.0, r.judge == r.gold) for r in served]
    return {
        "before": expected_calibration_error(raw),
        "after": expected_calibration_error(calibrated),
    }


@dataclass(frozen=True, slots=True)
class LoopPlan:
    """The dataset, panel and split of one loop, and where it writes."""

    dataset: Path
    out: Path
    panel: str | None = None
    split_seed: int = 0
    split_ratio: float = 0.5
    concurrency: int = 8
    command: str = ""
    # Also run test with the sequential mode on in every category, under the same approval.
    sequential: bool = False
    sequential_target: float | None = None


async def _approve(runtime: Runtime) -> dict[str, Any]:
    """Propose weights from the recorded train outcomes and approve them."""
    async with session_scope(runtime.sessionmaker) as session:
        trust = TrustService(session, config=runtime.config, policy=runtime.trust_policy)
        proposal = await trust.propose(
            ProposalCreate(created_by="jury-eval-loop"), actor="jury-eval-loop"
        )
        approved = await trust.approve(
            proposal.id,
            reviewer="jury-eval-reviewer",
            comment="eval loop: approve the train-side proposal",
        )
    runtime.trust.invalidate()
    return {"proposal": proposal.id, "version": approved.version, "rules": proposal.rules}


async def run_loop(
    runtime: Runtime, plan: LoopPlan, record_outcome: OutcomeWriter
) -> dict[str, Any]:
    """Run train with outcomes, approve the proposal, run test, and write the report."""
    base = RunPlan(
        dataset=plan.dataset,
        out=plan.out / "train",
        panel=plan.panel,
        concurrency=plan.concurrency,
        split="train",
        split_seed=plan.split_seed,
        split_ratio=plan.split_ratio,
    )
    await run_eval(runtime.verdicts, base, record_outcome=record_outcome)
    approval = await _approve(runtime)
    test_plan = replace(base, out=plan.out / "test", split="test")
    test_report = await run_eval(runtime.verdicts, test_plan)
    models = juror_models(runtime.config)
    train = outcome_records(list(load_results(base.out).values()), models)
    test_results = list(load_results(test_plan.out).values())
    test = outcome_records(test_results, models)
    choices = {alpha: fit(train, runtime.config, alpha) for alpha in ALPHAS}
    served = [r for r in test_results if r.status == "ok"]
    report: dict[str, Any] = {
        "command": plan.command,
        "split": {"seed": plan.split_seed, "ratio": plan.split_ratio},
        "approval": approval,
        "served_accuracy": sum(r.judge == r.gold for r in served) / len(served),
        "served_covered_at_config_alpha": sum(bool(r.risk_covered) for r in served),
        "baselines": baselines(train, test, choices[ALPHAS[0]]),
        "risk_on_test": {
            str(a): coverage([apply_choice(c, r) for r in test]) for a, c in choices.items()
        },
        "ece_test": calibration_errors(test_results),
        "effective_votes": test_report.n_eff,
        "mean_error_correlation": test_report.mean_error_correlation,
        "risk_check": risk_check(train + test, runtime.config),
    }
    if plan.sequential:
        report["sequential"] = await _sequential_pass(runtime, plan, test_plan)
        report["sequential_replay"] = sequential_replay(train, served, runtime.config, plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "loop.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (plan.out / "loop.md").write_text(render(report), encoding="utf-8")
    return report


async def _sequential_pass(runtime: Runtime, plan: LoopPlan, test_plan: RunPlan) -> dict[str, Any]:
    """Run test again with every category sequential, and compare it with the full panel."""
    config = sequential_config(runtime.config, target=plan.sequential_target)
    service = VerdictService(
        config=config,
        hub=runtime.hub,
        sessionmaker=runtime.sessionmaker,
        settings=runtime.settings,
        weights=runtime.trust,
        calibration=runtime.trust,
        rules=runtime.trust,
    )
    sequential_plan = replace(test_plan, out=plan.out / SEQUENTIAL_TEST)
    try:
        await run_eval(service, sequential_plan)
    finally:
        service.close()
    return compare_runs(load_results(test_plan.out), load_results(sequential_plan.out))


REPLAY_TARGETS = (0.9, 0.95, 0.99)


def sequential_replay(
    train: Sequence[OutcomeRecord],
    test: Sequence[ItemResult],
    config: JuryConfig,
    plan: LoopPlan,
) -> list[dict[str, Any]]:
    """Replay the stop rule on test under rules fitted on train (pooled), at a few targets."""
    ballots = [_ballot(r) for r in train]
    rules = {"majority": majority_rule(ballots), "log_odds": log_odds_rule(ballots)}
    costs = {juror.name: call_cost(juror) for juror in config.jurors}
    quorum = config.quorum(config.panels[plan.panel or config.default_panel])
    targets = (plan.sequential_target,) if plan.sequential_target else REPLAY_TARGETS
    return [
        {"rule": name, **replay_sequential(test, weights, costs, target=target, quorum=quorum)}
        for name, weights in rules.items()
        for target in targets
    ]


def _pct(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "—" if value is None else str(value)


def render(report: Mapping[str, Any]) -> str:
    """Render the loop report as markdown."""
    lines = [
        "# The trust loop on held-out items",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Split seed {report['split']['seed']}, train ratio {report['split']['ratio']}; "
        f"proposal {report['approval']['proposal']} approved as version "
        f"{report['approval']['version']}. Served verdict accuracy on test: "
        f"{_pct(report['served_accuracy'])}.",
        "",
        "## Accuracy on test (weights from train)",
        "",
        "| category | n | best single (on train) | best single | plain majority | log-odds "
        "| chosen rule | chosen | judge |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for category, row in report["baselines"].items():
        lines.append(
            f"| {category} | {row['n_test']} | {row['best_single']} "
            f"| {_pct(row['best_single_accuracy'])} | {_pct(row['majority'])} "
            f"| {_pct(row['log_odds'])} | {row['chosen_rule']} | {_pct(row['chosen'])} | — |"
        )
    lines += ["", "The panel has no judge (`judge: none`): the judge column is empty.", ""]
    lines += [
        "## Guaranteed risk on test",
        "",
        "| alpha | n | covered | coverage | realised error |",
    ]
    lines.append("|---|---|---|---|---|")
    for alpha, row in report["risk_on_test"].items():
        lines.append(
            f"| {alpha} | {row['n']} | {row['covered']} | {_pct(row['coverage'])} "
            f"| {_pct(row['error'])} |"
        )
    lines += ["", f"## Over {RISK_SPLITS} random splits (seeds 1-{RISK_SPLITS})", ""]
    lines += [
        "| alpha | splits with error <= alpha | mean coverage | splits with chosen >= best "
        "single | mean accuracy, chosen | mean accuracy, best single (on train) | mean ECE "
        "(calibrated) | splits with ECE <= 0.05 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for alpha, row in report["risk_check"].items():
        lines.append(
            f"| {alpha} | {row['within_alpha']}/{row['splits']} | {_pct(row['mean_coverage'])} "
            f"| {row['chosen_not_below_best_single']}/{row['splits']} "
            f"| {_pct(row['mean_chosen_accuracy'])} | {_pct(row['mean_best_single_accuracy'])} "
            f"| {_pct(row['mean_ece'])} | {row['ece_within_0_05']}/{row['splits']} |"
        )
    ece = report["ece_test"]
    lines += [
        "",
        "## Calibration and effective votes (test)",
        "",
        f"ECE of the verdict confidence: {_pct(ece['before'])} raw, {_pct(ece['after'])} "
        "calibrated.",
        f"Effective independent votes (round 1): {_pct(report['effective_votes'])}; mean error "
        f"correlation {_pct(report['mean_error_correlation'])}.",
        "",
    ]
    if "sequential" in report:
        lines += ["## Sequential verdicts on test (same approval)", ""]
        lines += [*render_comparison(report["sequential"]), ""]
        lines += [
            "Replayed offline on the same test positions under other rules fitted on train "
            "(pooled), at several targets:",
            "",
            "| rule | target | full panel accuracy | sequential accuracy | same verdict "
            "| fewer juror calls |",
            "|---|---|---|---|---|---|",
        ]
        for row in report["sequential_replay"]:
            lines.append(
                f"| {row['rule']} | {row['target']} | {_pct(row['accuracy_full'])} "
                f"| {_pct(row['accuracy_sequential'])} | {_pct(row['agreement_with_full'])} "
                f"| {_pct(row['call_reduction'])} |"
            )
        lines.append("")
    return "\n".join(lines)
