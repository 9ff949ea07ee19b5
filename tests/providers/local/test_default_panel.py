"""The shipped default config gives a real verdict from local models of three families."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.core.config import JuryConfig, load_config
from app.deliberation.schemas import VerdictRequest
from tests.builders import REPO_ROOT, open_bench

pytestmark = [pytest.mark.local_models, pytest.mark.enable_socket, pytest.mark.anyio]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_config_on_free_ports() -> JuryConfig:
    """Return config/jury.yaml with its local servers moved to free ports (no clash)."""
    config = load_config(REPO_ROOT / "config" / "jury.yaml")
    raw = config.model_dump(mode="json")
    for entry in (*raw["jurors"], *raw["judges"]):
        if entry.get("local"):
            entry["local"]["port"] = _free_port()
            entry["api_base"] = None  # derived again from the new port
    return JuryConfig.model_validate(raw)


async def test_default_panel_gives_a_real_verdict(sqlite_database: str, tmp_path: Path) -> None:
    config = default_config_on_free_ports()
    async with open_bench(sqlite_database, config) as bench:
        verdict = await bench.service.decide(
            VerdictRequest(question="Is water made of hydrogen and oxygen?", max_rounds=1)
        )
        calls = await bench.calls(verdict.id)

    first_round = verdict.rounds[0].positions
    assert {p.family for p in first_round} == {"smollm", "gemma", "qwen"}
    assert len({p.model for p in first_round}) == 3
    assert all(p.failure is None and p.position in ("yes", "no") for p in first_round)
    assert not verdict.degraded
    assert not verdict.judge.fallback
    assert verdict.judge.model == "openai/qwen2.5-coder-1.5b"
    assert verdict.verdict in ("yes", "no")
    assert len(calls) == 4  # three jurors and the judge, each stored
    assert all(call.raw_output for call in calls)
