"""The benchmark's runs without Jury: the floor, a plain litellm script, the LiteLLM proxy.

Each runs ``eval/perf/baseline.py`` as a process of its own against the same fake upstream,
so that its CPU is its own: the **floor** (bare aiohttp calls and one SQLite row insert, no
framework) at the headline rate, the plain litellm script at the headline and the low rate,
and the proxy (installed on the fly by ``uv``; skipped with a reason if it cannot start).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from eval.perf import procs
from eval.perf.report import baseline_report
from eval.perf.stats import per_verdict_ms

if TYPE_CHECKING:
    from eval.perf.bench import BenchOptions

PROXY_REQUIREMENT = "litellm[proxy]==1.106.2"


def run_baselines(options: BenchOptions, tmp: Path, upstream_url: str) -> dict[str, Any]:
    """Run the same 7 calls without Jury: the floor, plain litellm, then the LiteLLM proxy."""
    httpx.post(f"{upstream_url}/control", json={"latency_ms": options.latency_ms, "dist": "fixed"})
    results: dict[str, Any] = {}
    floor = _baseline_process(
        options, "floor", f"{upstream_url}/v1", database=str(tmp / "floor.db")
    )
    results["floor"] = baseline_report(floor, options.latency_ms)
    litellm_raw = _baseline_process(options, "litellm", f"{upstream_url}/v1")
    results["litellm"] = baseline_report(litellm_raw, options.latency_ms)
    if options.low_rate:
        low = _baseline_process(options, "litellm", f"{upstream_url}/v1", rate=options.low_rate)
        results["litellm_low_rate"] = baseline_report(low, options.latency_ms)
    if not options.proxy:
        results["proxy"] = {"skipped": "--no-proxy"}
        return results
    key = "sk-bench-" + secrets.token_hex(16)
    proxy, reason = _start_proxy(options, tmp, upstream_url, key)
    if proxy is None:
        results["proxy"] = {"skipped": reason}
        return results
    with procs.running(proxy):
        proxy_url = reason
        for name, rate in (("proxy", options.baseline_rate), ("proxy_low_rate", options.low_rate)):
            if not rate:
                continue
            cpu_before = procs.tree_cpu_seconds(proxy.pid)
            raw = _baseline_process(options, "proxy", proxy_url, key=key, rate=rate)
            report = baseline_report(raw, options.latency_ms)
            report["proxy_cpu_ms_per_verdict"] = per_verdict_ms(
                procs.tree_cpu_seconds(proxy.pid) - cpu_before, report.get("completed")
            )
            results[name] = report
    return results


def _baseline_process(
    options: BenchOptions,
    target: str,
    api_base: str,
    *,
    key: str = "",
    rate: float | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    argv = procs.python_module(
        "eval.perf.baseline",
        "--target",
        target,
        "--api-base",
        api_base,
        "--rate",
        str(rate or options.baseline_rate),
        "--duration",
        str(options.step_s),
        "--drain",
        str(options.drain_s),
        *(("--database", database) if database else ()),
    )
    env = {**os.environ, "JURY_BENCH_PROXY_KEY": key}
    completed = subprocess.run(argv, capture_output=True, timeout=300, check=False, env=env)
    if completed.returncode != 0:
        return {"error": completed.stderr.decode(errors="replace")[-2000:]}
    raw: dict[str, Any] = json.loads(completed.stdout)
    raw["load_average"] = procs.load_average()
    return raw


def _start_proxy(
    options: BenchOptions, tmp: Path, upstream_url: str, key: str
) -> tuple[procs.Managed | None, str]:
    """Start the LiteLLM proxy on loopback; return it and its URL, or None and why not.

    ``key`` is the master key the proxy requires and the baseline's requests carry.
    """
    models = [
        {
            "model_name": alias,
            "litellm_params": {
                "model": f"openai/{alias}",
                "api_base": f"{upstream_url}/v1",
                "api_key": "bench-no-key",
            },
        }
        for alias in ("fake-a", "fake-b", "fake-c", "fake-judge")
    ]
    config = tmp / "proxy.yaml"
    config.write_text(
        yaml.safe_dump(
            {"model_list": models, "litellm_settings": {"num_retries": 0, "telemetry": False}}
        )
    )
    port = procs.free_port()
    argv = [
        "uv", "run", "--no-project", "--python", "3.11", "--with", PROXY_REQUIREMENT,
        "litellm", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_MASTER_KEY": key,
    }
    try:
        proxy = procs.start("litellm proxy", argv, log=options.out / "proxy.log", env=env)
    except OSError as exc:
        return None, f"could not start uv: {exc}"
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_healthy(proxy, f"{url}/health/liveliness", timeout_s=300)
    except RuntimeError as exc:
        proxy.stop()
        return None, f"the LiteLLM proxy did not start: {str(exc)[-500:]}"
    return proxy, url
