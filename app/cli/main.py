"""The ``jury`` command line: the same services as the API, in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli.bench import bench
from app.cli.context import ConfigOption, console, errors, parsed, run_in_runtime, settings_for
from app.cli.eval import eval_app
from app.cli.keys import keys_app, serving_mode
from app.cli.mcp import mcp
from app.cli.trust import trust_app
from app.core.errors import JuryError
from app.core.pages import Window
from app.deliberation.events import Event
from app.deliberation.schemas import VerdictIncomplete, VerdictOut, VerdictRequest
from app.runtime import Runtime
from app.verdicts.record.repository import VerdictFilter
from eval.evidence import low_trust_note, shipped_evidence

app = typer.Typer(help="Jury: multi-model jury deliberation.", no_args_is_help=True)
verdicts_app = typer.Typer(help="Read recorded verdicts.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(verdicts_app, name="verdicts")
app.add_typer(db_app, name="db")
app.add_typer(trust_app, name="trust")
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
app.command()(bench)
app.command()(mcp)

_settings = settings_for
_run = run_in_runtime


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind; loopback only while no API key exists.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Server processes on one socket; above 1 needs JURY_REDIS_URL.")
    ] = 1,
    reopen_local_mode: Annotated[
        bool,
        typer.Option(
            "--reopen-local-mode",
            help="With every API key revoked, run in local mode again (no authentication, "
            "loopback only). Without it, once a key has existed a key is always required.",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API; on shutdown, verdicts in progress get JURY_SHUTDOWN_GRACE_S to end."""
    from app.cli.serve import run_server

    settings = _settings(config)
    if reopen_local_mode:
        settings = settings.model_copy(update={"reopen_local_mode": True})
    console.print(serving_mode(settings, host))
    try:
        run_server(settings, host=host, port=port, workers=workers)
    except JuryError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {exc.detail}")
        raise typer.Exit(2) from None


@app.command()
def worker(
    config: ConfigOption = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Verdicts at once (default: JURY_WORKER_CONCURRENCY).")
    ] = None,
) -> None:
    """Deliberate the asynchronous verdicts queued on Redis (JURY_REDIS_URL); run several."""
    import logging

    from app.cli.process import run_to_exit
    from app.cli.worker import run_worker

    settings = _settings(config)
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        run_to_exit(lambda: run_worker(settings))
    except JuryError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {exc.detail}")
        raise typer.Exit(2) from None


class ProgressPrinter:
    """Print deliberation events as they happen."""

    def __init__(self, target: Console) -> None:
        self._console = target

    async def publish(self, event: Event) -> None:
        """Print one event as a line."""
        line = _describe_event(event)
        if line:
            self._console.print(line)


def _describe_event(event: Event) -> str | None:
    if event.type == "juror_answered":
        if event.failure is not None:
            return f"  round {event.round}  {event.juror:<14} [red]failed: {event.failure}[/]"
        seconds = (event.latency_ms or 0) / 1000
        return (
            f"  round {event.round}  {event.juror:<14} {event.position} "
            f"({event.confidence:.2f}) in {seconds:.1f}s"
        )
    if event.type == "shift":
        return f"  [yellow]shift[/]   {event.juror} {event.previous} → {event.position}"
    if event.type == "round_finished":
        return f"[dim]round {event.round} finished: {event.detail}[/]"
    if event.type == "judge_answered":
        if event.failure is not None:
            return f"  judge    {event.juror:<14} [red]failed: {event.failure}[/]"
        return f"  judge    {event.juror:<14} {event.position} ({event.confidence:.2f})"
    return None


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The judgement to make.")],
    config: ConfigOption = None,
    options: Annotated[
        str | None, typer.Option(help="Comma-separated options (default from config).")
    ] = None,
    category: Annotated[str, typer.Option(help="Category of the question.")] = "default",
    panel: Annotated[str | None, typer.Option(help="Named panel from the config.")] = None,
    context_file: Annotated[
        Path | None, typer.Option(help="File with material the jurors must read.", exists=True)
    ] = None,
    max_rounds: Annotated[int | None, typer.Option(help="Rounds, the first included.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Deliberate on QUESTION in-process and print the verdict."""
    request = parsed(
        VerdictRequest,
        question=question,
        options=options.split(",") if options else None,
        category=category,
        panel=panel,
        context=context_file.read_text(encoding="utf-8") if context_file else None,
        max_rounds=max_rounds,
    )
    sink = ProgressPrinter(errors if as_json else console)

    async def decide(runtime: Runtime) -> tuple[VerdictOut, str | None]:
        verdict = await runtime.verdicts.decide(request, sink=sink)
        return verdict, low_trust_note(shipped_evidence(runtime.config, panel=verdict.panel))

    verdict, note = _run(_settings(config), decide)
    if as_json:
        typer.echo(json.dumps(verdict.model_dump(mode="json", by_alias=True), indent=2))
    else:
        print_verdict(verdict)
    if note is not None:
        (errors if as_json else console).print(f"[yellow]{note}[/]")


def print_verdict(verdict: VerdictOut) -> None:
    """Print a verdict readably: the decision, the dissent, the shifts, the baselines."""
    console.print()
    console.print(
        f"[bold]Verdict:[/] [bold green]{verdict.verdict}[/]   confidence {verdict.confidence:.2f}"
        f"   agreement {verdict.agreement:.2f}   {'unanimous' if verdict.unanimous else 'split'}"
    )
    if verdict.judge.fallback:
        console.print(f"[yellow]judge fallback[/]: {verdict.judge.fallback_reason}")
    if verdict.escalate:
        console.print(f"[bold yellow]escalate[/]: {', '.join(verdict.escalate_reasons)}")
    first = verdict.baselines.round1_majority
    if first != verdict.verdict:
        console.print(
            f"[bold yellow]Changed:[/] the round-1 majority was {first or 'a tie'}; "
            f"the final verdict is {verdict.verdict}"
        )
    calibration = verdict.judge.calibration
    if calibration is not None and calibration.flipped:
        console.print(
            f"[bold yellow]Calibrated:[/] the judge leaned to {calibration.uncalibrated_verdict}, "
            f"but less than it leans there on a blank case; calibrated, {verdict.judge.verdict}"
        )
    if verdict.disagreement:
        console.print(f"[bold]Disagreement:[/] {verdict.disagreement}")
    for dissent in verdict.dissent:
        console.print(
            f"[bold]Dissent:[/] {dissent.juror} ({dissent.model}) says {dissent.position}:"
            f" {dissent.reasoning}"
        )
    for shift in verdict.shifts:
        console.print(
            f"[bold]Shift:[/] {shift.juror} {shift.from_position} → {shift.to_position} in round "
            f"{shift.round}: {shift.reasoning}"
        )
    for failure in verdict.failures:
        console.print(f"[red]Failure:[/] {failure.juror} round {failure.round}: {failure.kind}")
    b = verdict.baselines
    console.print(
        f"[dim]baselines: round-1 majority {b.round1_majority}, final majority "
        f"{b.final_majority}, weighted vote {b.weighted_vote}, judge {b.judge}[/]"
    )
    console.print(
        f"[dim]id {verdict.id}  rounds {len(verdict.rounds)} ({verdict.stop_reason})  "
        f"{verdict.usage.total_tokens} tokens  ${verdict.usage.cost_usd:.4f}  "
        f"{verdict.latency_ms / 1000:.1f}s[/]"
    )


@verdicts_app.command("show")
def verdicts_show(
    verdict_id: Annotated[str, typer.Argument(help="Verdict id.")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Print a recorded verdict with its transcript."""
    verdict = _run(_settings(config), lambda rt: rt.verdict_reads.get(verdict_id), models=False)
    if as_json or isinstance(verdict, VerdictIncomplete):
        typer.echo(json.dumps(verdict.model_dump(mode="json", by_alias=True), indent=2))
        return
    table = Table("round", "juror", "model", "position", "conf.", "changed", "failure")
    for round_ in verdict.rounds:
        for p in round_.positions:
            table.add_row(
                str(round_.number),
                p.juror,
                p.model,
                p.position or "-",
                f"{p.confidence:.2f}" if p.confidence is not None else "-",
                "yes" if p.changed else "",
                p.failure.kind if p.failure else "",
            )
    console.print(table)
    print_verdict(verdict)


@verdicts_app.command("list")
def verdicts_list(
    config: ConfigOption = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
) -> None:
    """List recent verdicts."""
    page = _run(
        _settings(config),
        lambda rt: rt.verdict_reads.list(VerdictFilter(category=category), Window(limit=limit)),
        models=False,
    )
    table = Table("id", "created", "status", "category", "verdict", "conf.", "question")
    for item in page.items:
        table.add_row(
            item.id,
            item.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            item.status,
            item.category,
            item.verdict or "-",
            f"{item.confidence:.2f}" if item.confidence is not None else "-",
            item.question[:60],
        )
    console.print(table)
    console.print(f"[dim]{len(page.items)} of {page.total}[/]")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply database migrations (also done at start-up unless JURY_AUTO_MIGRATE=false)."""
    from app.migrations.migrate import upgrade_sync

    url = _settings(config).resolved_database_url()
    upgrade_sync(url)
    console.print(f"database at head: {url.split('@')[-1]}")


local_app = typer.Typer(help="Local model servers (the offline panel).", no_args_is_help=True)
app.add_typer(local_app, name="local")


@local_app.command("status")
def local_status(config: ConfigOption = None) -> None:
    """Show the config's local model servers: port, pid, health, who started them."""
    from app.core.config import load_config
    from app.providers.local.runtime import status_table

    rows = status_table(load_config(_settings(config).config))
    if not rows:
        console.print("this config uses no local models")
        return
    table = Table("model", "alias", "port", "pid", "healthy", "started by", "log")
    for row in rows:
        table.add_row(
            str(row["key"]),
            str(row["alias"]),
            str(row["port"]),
            str(row["pid"] or "-"),
            "yes" if row["healthy"] else "no",
            str(row["started_by"]),
            str(row["log_path"]),
        )
    console.print(table)


@app.command("config-check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the config file and print its panels."""
    from app.core.config import load_config

    settings = _settings(config)
    try:
        loaded = load_config(settings.config)
    except JuryError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {exc.detail}")
        raise typer.Exit(2) from None
    for name, panel in loaded.panels.items():
        judge = loaded.judge_for(panel)
        judged_by = judge.name if judge is not None else "none (the approved aggregation rule)"
        console.print(f"panel {name}: jurors {', '.join(panel.jurors)}; judge {judged_by}")


def main() -> None:
    """Run the CLI."""
    app()
