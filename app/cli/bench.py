"""``jury bench``: the overhead benchmark (its modules are imported when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def bench(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="About a minute: 3 rates x 4 s, no proxy, one transport."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Folder for results.json, results.md and the logs.")
    ] = None,
    rates: Annotated[
        str | None, typer.Option(help="Comma-separated verdicts/s (default 5..300).")
    ] = None,
    latency_ms: Annotated[float, typer.Option(help="Fake upstream latency per call.")] = 50.0,
    soak_s: Annotated[
        float, typer.Option(help="Soak at half the ceiling for this long (0: no soak).")
    ] = 0.0,
    soak_rate: Annotated[
        float | None, typer.Option(help="Soak at this rate instead of half the ceiling.")
    ] = None,
    proxy: Annotated[
        bool | None,
        typer.Option(help="Measure the LiteLLM proxy too (default: not with --quick)."),
    ] = None,
    transport: Annotated[
        str, typer.Option(help="Provider transport of the sweep: openai_compatible or litellm.")
    ] = "openai_compatible",
    compare: Annotated[
        bool | None,
        typer.Option(help="Also run the other transport at 50 v/s (default: not with --quick)."),
    ] = None,
    headline_rate: Annotated[
        float,
        typer.Option(help="Rate of the headline, the floor, litellm and the transport comparison."),
    ] = 50.0,
    worker_rates: Annotated[
        str | None, typer.Option(help="Comma-separated verdicts/s of the workers phase.")
    ] = None,
    workers: Annotated[
        bool, typer.Option(help="Sweep `jury serve --workers 1` and `--workers 2` on Redis.")
    ] = True,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="JURY_REDIS_URL", help="Redis of the workers phase (none: it is skipped)."
        ),
    ] = None,
) -> None:
    """Measure Jury's overhead on a fake upstream: rates, ceiling, workers, floor, baselines."""
    import time

    from eval.perf.bench import BenchOptions, run_bench
    from eval.perf.report import render_markdown

    folder = out or Path("eval/runs") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    overrides: dict[str, Any] = {
        "latency_ms": latency_ms,
        "soak_s": soak_s,
        "soak_rate": soak_rate,
        "transport": transport,
        "compare_workers": workers,
        "baseline_rate": headline_rate,
        "redis_url": redis_url,
    }
    if proxy is not None:
        overrides["proxy"] = proxy
    if compare is not None:
        overrides["compare_transports"] = compare
    if worker_rates:
        overrides["worker_rates"] = tuple(float(rate) for rate in worker_rates.split(","))
    if rates:
        overrides["rates"] = tuple(float(rate) for rate in rates.split(","))
    options = (
        BenchOptions.quick_run(folder, **overrides)
        if quick
        else BenchOptions(out=folder, **overrides)
    )
    results = run_bench(options)
    typer.echo(render_markdown(results))
    typer.echo(f"results in {folder}/results.json and {folder}/results.md")
