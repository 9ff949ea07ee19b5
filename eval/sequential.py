"""Sequential verdicts against the full panel, on the same items: calls, tokens, accuracy.

``sequential_config`` turns the mode on in every category (for ``jury eval run --sequential``
and the loop's sequential pass); ``compare_runs`` pairs the two runs' results item by item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from app.core.config import JuryConfig
from app.deliberation.rules import Ballot, decide
from app.deliberation.sequential import SequentialPlan, convening_order, stop_convening
from eval.records import ItemResult

# The goal of issue 16 on recorded-llmbar: 40% fewer juror calls, at most 1 point lost.
GOAL_CALL_REDUCTION = 0.40
GOAL_MAX_ACCURACY_LOSS = 0.01


def sequential_config(config: JuryConfig, *, target: float | None = None) -> JuryConfig:
    """Return the config with the sequential mode on in every category (and ``default``)."""
    names = {*config.categories, "default"}
    update: dict[str, Any] = {"sequential": True}
    if target is not None:
        update["sequential_target"] = target
    policies = {name: config.policy(name).model_copy(update=update) for name in names}
    return config.model_copy(update={"categories": policies})


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _accuracy(results: Sequence[ItemResult]) -> float | None:
    # Not-ok items stay in the denominator and count wrong, as in every report.
    return _mean([float(r.is_correct("judge")) for r in results])


def compare_runs(
    full: Mapping[str, ItemResult], sequential: Mapping[str, ItemResult]
) -> dict[str, Any]:
    """Compare the full panel and the sequential mode on the items both runs hold."""
    keys = sorted(full.keys() & sequential.keys())
    f = [full[k] for k in keys]
    s = [sequential[k] for k in keys]
    calls_full = _mean([float(r.juror_calls) for r in f]) or 0.0
    calls_seq = _mean([float(r.juror_calls) for r in s]) or 0.0
    acc_full = _accuracy(f)
    acc_seq = _accuracy(s)
    reduction = 1 - calls_seq / calls_full if calls_full else None
    loss = acc_full - acc_seq if acc_full is not None and acc_seq is not None else None
    return {
        "n": len(keys),
        "accuracy_full": acc_full,
        "accuracy_sequential": acc_seq,
        "accuracy_loss_points": loss * 100 if loss is not None else None,
        "agreement_with_full": _mean(
            [float(a.judge == b.judge) for a, b in zip(f, s, strict=True)]
        ),
        "juror_calls_per_verdict_full": calls_full,
        "juror_calls_per_verdict_sequential": calls_seq,
        "call_reduction": reduction,
        "calls_per_verdict_full": _mean([float(r.calls) for r in f]),
        "calls_per_verdict_sequential": _mean([float(r.calls) for r in s]),
        "tokens_per_verdict_full": _mean([float(r.prompt_tokens + r.completion_tokens) for r in f]),
        "tokens_per_verdict_sequential": _mean(
            [float(r.prompt_tokens + r.completion_tokens) for r in s]
        ),
        "stops": dict(Counter(r.convening_stop or "not_ok" for r in s).most_common()),
        "convened": dict(sorted(Counter(len(r.convened or []) for r in s).items())),
        "goal_met": reduction is not None
        and loss is not None
        and reduction >= GOAL_CALL_REDUCTION
        and loss <= GOAL_MAX_ACCURACY_LOSS,
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_comparison(row: Mapping[str, Any]) -> list[str]:
    """Render the comparison as markdown lines."""
    reduction = row["call_reduction"]
    fewer = _fmt(reduction * 100 if reduction is not None else None, 1)
    return [
        "| | full panel | sequential |",
        "|---|---|---|",
        f"| accuracy | {_fmt(row['accuracy_full'])} | {_fmt(row['accuracy_sequential'])} |",
        f"| juror calls per verdict | {_fmt(row['juror_calls_per_verdict_full'], 2)} "
        f"| {_fmt(row['juror_calls_per_verdict_sequential'], 2)} |",
        f"| all calls per verdict | {_fmt(row['calls_per_verdict_full'], 2)} "
        f"| {_fmt(row['calls_per_verdict_sequential'], 2)} |",
        f"| tokens per verdict | {_fmt(row['tokens_per_verdict_full'], 1)} "
        f"| {_fmt(row['tokens_per_verdict_sequential'], 1)} |",
        "",
        f"{row['n']} verdicts. Juror calls {fewer}% "
        f"fewer; accuracy lost {_fmt(row['accuracy_loss_points'], 2)} points; the sequential "
        f"verdict equals the full panel's on {_fmt(row['agreement_with_full'])} of the items. "
        f"Goal (>= {GOAL_CALL_REDUCTION:.0%} fewer calls, <= {GOAL_MAX_ACCURACY_LOSS * 100:.0f} "
        f"point lost): {'met' if row['goal_met'] else 'not met'}.",
        "",
        "Why convening stopped: "
        + ", ".join(f"{reason} {count}" for reason, count in row["stops"].items())
        + ". Jurors convened: "
        + ", ".join(f"{size}: {count}" for size, count in row["convened"].items())
        + ".",
    ]


def replay_sequential(
    results: Sequence[ItemResult],
    weights: Mapping[str, float],
    costs: Mapping[str, float],
    *,
    target: float,
    quorum: int,
) -> dict[str, Any]:
    """Replay the stop rule offline on full-panel round-1 positions, under other weights.

    Exact for jurors whose answer does not depend on who else was asked (recorded ones): each
    item is convened as a sequential verdict would be, with the same pure functions; a
    juror's call counts once (repair re-asks are not in the results). The verdict is the
    weighted vote over the convened positions, the full panel's over all of them.
    """
    calls_full = calls_seq = right_full = right_seq = same = 0
    for r in results:
        jurors = sorted(r.jurors)
        votes = {name: r.jurors[name].round1 for name in jurors}
        convened = _convene_offline(votes, jurors, weights, costs, target, quorum, r.options)
        full = decide(Ballot(positions=votes, options=tuple(r.options), correct=r.gold), weights)
        partial = {name: votes[name] for name in convened}
        seq = decide(Ballot(positions=partial, options=tuple(r.options), correct=r.gold), weights)
        calls_full += len(jurors)
        calls_seq += len(convened)
        right_full += full == r.gold
        right_seq += seq == r.gold
        same += full == seq
    n = len(results)
    return {
        "n": n,
        "target": target,
        "accuracy_full": right_full / n if n else None,
        "accuracy_sequential": right_seq / n if n else None,
        "agreement_with_full": same / n if n else None,
        "call_reduction": 1 - calls_seq / calls_full if calls_full else None,
    }


def _convene_offline(
    votes: Mapping[str, str | None],
    jurors: Sequence[str],
    weights: Mapping[str, float],
    costs: Mapping[str, float],
    target: float,
    quorum: int,
    options: Sequence[str],
) -> list[str]:
    order = convening_order(jurors, costs, weights)
    plan = SequentialPlan(order=order, weights=weights, target=target)
    taken = max(quorum, 1)
    while True:
        convened = list(order[:taken])
        positions = {n: p for n in convened if (p := votes[n]) is not None}
        stop, _ = stop_convening(positions, order[taken:], plan, options, quorum=quorum)
        if stop is not None:
            return convened
        taken += 1
