"""The evaluation runner: every dataset item through the real verdict service.

Results are appended to ``results.jsonl`` as they arrive, so a killed run resumes where it
stopped; items whose deliberation failed are recorded with their failure and stay in every
denominator.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from app.core.errors import JuryError, NoQuorumError
from app.deliberation.schemas import VerdictOut
from app.verdicts.service import VerdictService
from eval.datasets import EvalItem, load_items
from eval.records import ItemResult, JurorTrace
from eval.report import build_report, write_report
from eval.schema import Report
from eval.split import DEFAULT_SPLIT_SEED, DEFAULT_TRAIN_RATIO, Split, side_of

RESULTS_FILE = "results.jsonl"

OutcomeWriter = Callable[[str, str], Awaitable[None]]


class Progress(Protocol):
    """Receives one call per finished item."""

    def item_done(self, result: ItemResult, *, done: int, total: int) -> None:
        """Handle one finished item."""
        ...


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What to evaluate and how."""

    dataset: Path
    out: Path
    panel: str | None = None
    limit: int | None = None
    concurrency: int = 1
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    split: Split | None = None
    split_seed: int = DEFAULT_SPLIT_SEED
    split_ratio: float = DEFAULT_TRAIN_RATIO


def select_items(plan: RunPlan) -> list[EvalItem]:
    """Return the items of the run: one side of the split if asked, shuffled by ``seed`` if
    given, the first ``limit`` records.

    The limit counts dataset records, so both orders of a pairwise record stay together.
    """
    items = list(load_items(plan.dataset))
    record_ids = list(dict.fromkeys(item.item_id for item in items))
    if plan.split is not None:
        side = side_of(record_ids, plan.split, seed=plan.split_seed, ratio=plan.split_ratio)
        record_ids = [record_id for record_id in record_ids if record_id in side]
    if plan.seed is not None:
        random.Random(plan.seed).shuffle(record_ids)
    chosen = record_ids[: plan.limit] if plan.limit is not None else record_ids
    rank = {item_id: i for i, item_id in enumerate(chosen)}
    return sorted((i for i in items if i.item_id in rank), key=lambda i: rank[i.item_id])


def load_results(out: Path) -> dict[str, ItemResult]:
    """Return the results already recorded in ``out``, by item key."""
    path = out / RESULTS_FILE
    if not path.exists():
        return {}
    results: dict[str, ItemResult] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if not _is_json(line):
            continue  # a line cut short by a kill: that item runs again
        row = json.loads(line)
        results[row["key"]] = ItemResult.model_validate(row["result"])
    return results


async def run_eval(
    service: VerdictService,
    plan: RunPlan,
    *,
    progress: Progress | None = None,
    record_outcome: OutcomeWriter | None = None,
) -> Report:
    """Run the pending items concurrently, append each result, and write the report."""
    items = select_items(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    done = load_results(plan.out)
    _drop_torn_lines(plan.out)
    pending = [item for item in items if item.key not in done]
    lock = anyio.Lock()
    limiter = anyio.CapacityLimiter(max(plan.concurrency, 1))
    finished = len(items) - len(pending)

    async def evaluate(item: EvalItem) -> None:
        nonlocal finished
        async with limiter:
            result, verdict_id = await _evaluate(service, item, plan.panel)
        if record_outcome is not None and verdict_id is not None:
            await record_outcome(verdict_id, item.gold)
        async with lock:
            _append(plan.out, item.key, result, verdict_id)
            done[item.key] = result
            finished += 1
            if progress is not None:
                progress.item_done(result, done=finished, total=len(items))

    async with anyio.create_task_group() as group:
        for item in pending:
            group.start_soon(evaluate, item)
    results = [done[item.key] for item in items if item.key in done]
    report = build_report(results, meta=_meta(plan, items))
    write_report(report, plan.out)
    return report


async def _evaluate(
    service: VerdictService, item: EvalItem, panel: str | None
) -> tuple[ItemResult, str | None]:
    request = item.request.model_copy(update={"panel": panel})
    started = time.perf_counter()
    try:
        verdict = await service.decide(request)
    except NoQuorumError as exc:
        return _failed(item, "no_quorum", exc.detail, started), exc.extra.get("id")
    except JuryError as exc:
        return _failed(item, "error", f"{exc.code}: {exc.detail}", started), None
    return item_result(item, verdict), verdict.id


def item_result(item: EvalItem, verdict: VerdictOut) -> ItemResult:
    """Convert a verdict into the metric layer's record."""
    traces: dict[str, dict[str, list[Any]]] = {}
    for round_ in verdict.rounds:
        for p in round_.positions:
            trace = traces.setdefault(p.juror, {"positions": [], "confidences": [], "failures": []})
            trace["positions"].append(p.position)
            trace["confidences"].append(p.confidence)
            trace["failures"].append(p.failure.kind.value if p.failure else None)
    return ItemResult(
        item_id=item.item_id,
        category=item.category,
        gold=item.gold,
        options=item.options,
        order=item.order,
        pair_id=item.pair_id,
        status="ok",
        judge=verdict.verdict,
        judge_confidence=verdict.confidence,
        raw_confidence=verdict.raw_confidence,
        verdict_source=verdict.verdict_source,
        judge_uncalibrated=_uncalibrated(verdict),
        risk_covered=verdict.risk.covered if verdict.risk is not None else None,
        round1_majority=verdict.baselines.round1_majority,
        final_majority=verdict.baselines.final_majority,
        weighted_vote=verdict.baselines.weighted_vote,
        jurors={name: JurorTrace(**trace) for name, trace in traces.items()},
        prompt_tokens=verdict.usage.prompt_tokens,
        completion_tokens=verdict.usage.completion_tokens,
        cost_usd=verdict.usage.cost_usd,
        latency_ms=verdict.latency_ms,
        calls=verdict.usage.calls,
        juror_calls=sum(p.attempts for r in verdict.rounds for p in r.positions),
        convened=verdict.sequential.convened if verdict.sequential is not None else None,
        convening_stop=verdict.sequential.stop if verdict.sequential is not None else None,
    )


def _uncalibrated(verdict: VerdictOut) -> str | None:
    calibration = verdict.judge.calibration
    return calibration.uncalibrated_verdict if calibration is not None else None


def _failed(item: EvalItem, status: str, detail: str, started: float) -> ItemResult:
    return ItemResult.model_validate(
        {
            "item_id": item.item_id,
            "category": item.category,
            "gold": item.gold,
            "options": item.options,
            "order": item.order,
            "pair_id": item.pair_id,
            "status": status,
            "error": detail,
            "latency_ms": (time.perf_counter() - started) * 1000,
        }
    )


def _drop_torn_lines(out: Path) -> None:
    """Rewrite the results file without lines a kill cut short, so appends start clean."""
    path = out / RESULTS_FILE
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if _is_json(line)]
    if len(kept) != len(lines) or (lines and not path.read_bytes().endswith(b"\n")):
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _append(out: Path, key: str, result: ItemResult, verdict_id: str | None) -> None:
    line = json.dumps({"key": key, "verdict_id": verdict_id, "result": result.model_dump()})
    with (out / RESULTS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()


def _meta(plan: RunPlan, items: Sequence[EvalItem]) -> dict[str, Any]:
    return {
        "dataset": plan.dataset.name,
        "panel": plan.panel,
        "limit": plan.limit,
        "seed": plan.seed,
        "split": plan.split,
        "split_seed": plan.split_seed if plan.split else None,
        "split_ratio": plan.split_ratio if plan.split else None,
        "concurrency": plan.concurrency,
        "items": len(items),
        **plan.meta,
    }
