"""``jury eval``: run panels over labelled datasets, compare runs, run the simulation."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli.context import ConfigOption, console, run_in_runtime, settings_for
from app.runtime import Runtime
from eval.records import ItemResult

if TYPE_CHECKING:
    from eval.schema import Report

eval_app = typer.Typer(help="Evaluate panels on labelled datasets.", no_args_is_help=True)


class ProgressBar:
    """A live bar: items done, accuracy so far, tokens and elapsed time."""

    def __init__(self, bar: Progress, total: int) -> None:
        self._bar = bar
        self._task = bar.add_task("eval", total=total, accuracy="-", tokens=0)
        self._correct = 0
        self._seen = 0
        self._tokens = 0

    def item_done(self, result: ItemResult, *, done: int, total: int) -> None:
        """Advance the bar with one finished item."""
        self._seen += 1
        self._correct += int(result.is_correct("judge"))
        self._tokens += result.prompt_tokens + result.completion_tokens
        self._bar.update(
            self._task,
            completed=done,
            total=total,
            accuracy=f"{self._correct / self._seen:.3f}",
            tokens=self._tokens,
        )


@eval_app.command("run")
def run(
    dataset: Annotated[Path, typer.Option(help="Labelled JSONL dataset.", exists=True)],
    config: ConfigOption = None,
    panel: Annotated[str | None, typer.Option(help="Named panel from the config.")] = None,
    limit: Annotated[int | None, typer.Option(help="First N records (after --seed).")] = None,
    concurrency: Annotated[int, typer.Option(help="Items deliberated at once.")] = 1,
    seed: Annotated[int | None, typer.Option(help="Shuffle records with this seed.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (resumed if it exists).")] = None,
    record_outcomes: Annotated[
        bool, typer.Option(help="Record each gold answer as the verdict's outcome.")
    ] = False,
    split: Annotated[
        str | None, typer.Option(help="Only one side of a deterministic split: train or test.")
    ] = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the train/test split.")] = 0,
    split_ratio: Annotated[float, typer.Option(help="Share of records in train.")] = 0.5,
    sequential: Annotated[
        bool,
        typer.Option(help="Every category sequential: cheapest jurors first, stopping early."),
    ] = False,
) -> None:
    """Run every item through the verdict service and write report.json/.md and plots."""
    # Imported here: the report pulls in matplotlib, which no other command needs.
    from eval.harness import RunPlan, run_eval

    out = out or Path("eval/runs") / f"{dataset.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = settings_for(config)
    if split not in (None, "train", "test"):
        raise typer.BadParameter("must be 'train' or 'test'", param_hint="--split")
    if not 0.0 < split_ratio < 1.0:
        raise typer.BadParameter("must lie strictly between 0 and 1", param_hint="--split-ratio")
    plan = RunPlan(
        dataset=dataset,
        out=out,
        panel=panel,
        limit=limit,
        concurrency=concurrency,
        seed=seed,
        meta={"config": str(settings.config), "command": shlex.join(["jury", *sys.argv[1:]])},
        split="train" if split == "train" else "test" if split == "test" else None,
        split_seed=split_seed,
        split_ratio=split_ratio,
    )

    async def work(runtime: Runtime) -> Report:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("acc {task.fields[accuracy]}"),
            TextColumn("{task.fields[tokens]} tok"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bar:
            progress = ProgressBar(bar, total=0)
            writer = _outcome_writer(runtime) if record_outcomes else None
            return await run_eval(runtime.verdicts, plan, progress=progress, record_outcome=writer)

    jury_config = None
    if sequential:
        from app.core.config import load_config
        from eval.sequential import sequential_config

        jury_config = sequential_config(load_config(settings.config))
    report = run_in_runtime(settings, work, config=jury_config)
    judge = report.accuracy.judge
    console.print(
        f"{report.n} items; verdict accuracy {judge.value if judge.value is not None else '-'}; "
        f"juror calls per verdict {report.usage['juror_calls'].mean}; "
        f"report in {out}/report.md"
    )


@eval_app.command("loop")
def loop(
    dataset: Annotated[Path, typer.Option(help="Labelled JSONL dataset.", exists=True)],
    out: Annotated[Path, typer.Option(help="Report folder (loop.md, loop.json, train/, test/).")],
    config: ConfigOption = None,
    panel: Annotated[str | None, typer.Option(help="Named panel from the config.")] = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the train/test split.")] = 0,
    split_ratio: Annotated[float, typer.Option(help="Share of records in train.")] = 0.5,
    concurrency: Annotated[int, typer.Option(help="Items deliberated at once.")] = 8,
    sequential: Annotated[
        bool,
        typer.Option(
            help="Also run test with every category sequential (cheapest jurors first, "
            "stopping early) and compare calls, tokens and accuracy with the full panel."
        ),
    ] = False,
    sequential_target: Annotated[
        float | None, typer.Option(help="The sequential mode's posterior target.")
    ] = None,
) -> None:
    """Record outcomes on train, propose, approve, score test, and write the loop report.

    The loop keeps its own record, a fresh SQLite file in ``out`` (replaced on each run), so
    that only its own train outcomes shape the proposal.
    """
    from eval.loop import LoopPlan, run_loop

    if not 0.0 < split_ratio < 1.0:
        raise typer.BadParameter("must lie strictly between 0 and 1", param_hint="--split-ratio")
    out.mkdir(parents=True, exist_ok=True)
    database = out / "loop.db"
    database.unlink(missing_ok=True)
    for side in ("train", "test", "test-sequential"):
        (out / side / "results.jsonl").unlink(missing_ok=True)
    settings = settings_for(config).model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{database.resolve()}"}
    )
    plan = LoopPlan(
        dataset=dataset,
        out=out,
        panel=panel,
        split_seed=split_seed,
        split_ratio=split_ratio,
        concurrency=concurrency,
        command=shlex.join(["jury", *sys.argv[1:]]),
        sequential=sequential,
        sequential_target=sequential_target,
    )

    async def work(runtime: Runtime) -> dict[str, object]:
        return await run_loop(runtime, plan, _outcome_writer(runtime))

    report = run_in_runtime(settings, work)
    console.print(f"served accuracy on test {report['served_accuracy']}; report in {out}/loop.md")


@eval_app.command("compare")
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders holding report.json.")],
) -> None:
    """Print several runs side by side as a markdown table."""
    from eval.report import compare_reports

    typer.echo(compare_reports(runs))


@eval_app.command("simulate")
def simulate(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("eval/reports/simulation"),
) -> None:
    """Run the weighting simulation study (estimated versus optimal weights)."""
    from eval.simulation import main as simulation_main

    simulation_main(["--out", str(out)])


def _outcome_writer(runtime: Runtime) -> Callable[[str, str], Awaitable[None]]:
    """Return a writer that records a gold answer as a verdict's outcome (source: dataset)."""
    from app.core.db import session_scope
    from app.trust.models import OutcomeSource
    from app.trust.outcomes import OutcomeService
    from app.trust.schemas import OutcomeCreate
    from app.trust.service import TrustService

    async def write(verdict_id: str, gold: str) -> None:
        async with session_scope(runtime.sessionmaker) as session:
            trust = TrustService(session, config=runtime.config, policy=runtime.trust_policy)
            await OutcomeService(trust).record(
                verdict_id,
                OutcomeCreate(correct_option=gold, source=OutcomeSource.DATASET),
                actor="jury-eval",
            )

    return write


@eval_app.command("faults")
def faults(
    gates: Annotated[
        str, typer.Option(help="Comma-separated gates (default: all, in order).")
    ] = "pg-frozen,pg-killed,redis-worker,kill9,idempotency,csrf-host,canary",
    postgres_url: Annotated[
        str | None,
        typer.Option(
            envvar="JURY_FAULTS_POSTGRES_URL",
            help="PostgreSQL the gates create their databases on (none: its gates are skipped).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder of gates.md and gates.json.")] = Path(
        "eval/reports/faults"
    ),
    work: Annotated[
        Path | None, typer.Option(help="Folder of the configs, SQLite files and server logs.")
    ] = None,
) -> None:
    """Run the fault gates against real `jury serve` processes and print a row of figures each."""
    import asyncio
    import os

    from app.core.settings import normalise_database_url
    from eval.faults import Lab, render, report_json, run_gates

    started = time.monotonic()
    load_start = os.getloadavg()
    folder = work or Path("eval/runs") / f"faults-{time.strftime('%Y%m%d-%H%M%S')}"
    lab = Lab(
        work=folder.resolve(),
        postgres_url=normalise_database_url(postgres_url) if postgres_url else None,
    )
    try:
        rows = asyncio.run(run_gates(lab, [name.strip() for name in gates.split(",") if name]))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--gates") from None
    report = render(
        rows,
        command=shlex.join(["jury", *sys.argv[1:]]),
        load=(*load_start, *os.getloadavg()),
        took_s=time.monotonic() - started,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "gates.md").write_text(report)
    (out / "gates.json").write_text(report_json(rows))
    typer.echo(report)
    typer.echo(f"report in {out}/gates.md; logs in {folder}/logs")
    if any(not row.passed and not row.skipped for row in rows):
        raise typer.Exit(1)
