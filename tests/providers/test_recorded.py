"""The recorded provider: replayed judgements by item and order, typed failures, no judge.

The provider is driven directly for the mapping and its failures, then through the real verdict
service on a panel of recorded jurors with ``judge: none``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from app.core.config import JuryConfig, ModelSpec
from app.deliberation.answers import juror_schema
from app.deliberation.schemas import VerdictRequest
from app.providers.base import CompletionRequest, Message
from app.providers.errors import FailureKind, InvalidOutputError, ProviderRequestError
from app.providers.recorded import RecordedProvider
from tests.builders import open_bench

pytestmark = pytest.mark.anyio

GUARD_S = 20
OPTIONS = ("A", "B")


def recording(item: str, judge: str, order: str, winner: str | None) -> dict[str, Any]:
    """Return one line of a recordings file."""
    return {
        "item_id": item,
        "judge": judge,
        "model": judge.lower(),
        "family": "f",
        "prompting": "Vanilla",
        "order": order,
        "winner": winner,
        "completion": f"Output ({winner})" if winner else "I cannot decide.",
    }


def write_recordings(path: Path) -> Path:
    """Write a small file: item-1 judged by two judges in both orders, item-2 by one."""
    rows = [
        recording("item-1", "Strong", "original", "a"),
        recording("item-1", "Strong", "swapped", "a"),
        recording("item-1", "Weak", "original", "b"),
        recording("item-1", "Weak", "swapped", "a"),
        recording("item-2", "Strong", "original", None),
        recording("item-2", "Weak", "original", "b"),
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def recorded_spec(name: str, judge: str, file: Path) -> dict[str, Any]:
    """Return a juror entry that plays ``judge`` from ``file``."""
    return {
        "name": name,
        "model": "recorded",
        "family": f"family-{name}",
        "recorded": {"file": str(file), "judge": judge, "confidence": 0.7},
    }


def request(metadata: dict[str, Any], round_number: int = 1) -> CompletionRequest:
    """Return a juror call for the A/B options with the verdict's metadata."""
    return CompletionRequest(
        messages=(Message(role="user", content="Which response is better?"),),
        schema_name="juror_position",
        output_schema=juror_schema(OPTIONS),
        call_role="juror",
        round_number=round_number,
        metadata=metadata,
    )


async def answer(spec: ModelSpec, metadata: dict[str, Any], round_number: int = 1) -> Any:
    """Return the provider's parsed JSON answer."""
    completion = await RecordedProvider().complete(spec, request(metadata, round_number))
    return json.loads(completion.text)


async def test_a_recording_answers_in_the_presented_order(tmp_path: Path) -> None:
    file = write_recordings(tmp_path / "rec.jsonl")
    weak = ModelSpec.model_validate(recorded_spec("weak", "Weak", file))

    original = await answer(weak, {"item_id": "item-1", "order": "ab"})
    swapped = await answer(weak, {"item_id": "item-1", "order": "swapped"})
    rebuttal = await answer(weak, {"item_id": "item-1", "order": "ab"}, round_number=2)

    # Weak picked b (shown second, "B") in the original order; in the swapped run it picked a,
    # which was shown second there too.
    assert original["position"] == "B"
    assert swapped["position"] == "B"
    assert original["confidence"] == 0.7
    assert original["reasoning"] == "Recorded judgement (label only): Output (b)"
    # A rebuttal round replays the same recorded position: the juror holds it.
    assert rebuttal == original


async def test_a_missing_recording_is_a_provider_error_naming_the_item(tmp_path: Path) -> None:
    file = write_recordings(tmp_path / "rec.jsonl")
    strong = ModelSpec.model_validate(recorded_spec("strong", "Strong", file))

    with pytest.raises(ProviderRequestError) as missing:
        await answer(strong, {"item_id": "item-9", "order": "ab"})
    with pytest.raises(ProviderRequestError) as unnamed:
        await answer(strong, {"order": "ab"})
    with pytest.raises(InvalidOutputError) as neither:
        await answer(strong, {"item_id": "item-2"})

    assert missing.value.kind is FailureKind.PROVIDER_ERROR
    assert "no recording of item 'item-9' (original) by Strong (Vanilla)" in missing.value.detail
    assert "metadata.item_id" in unnamed.value.detail
    assert "item 'item-2'" in neither.value.detail
    assert "names neither output" in neither.value.detail


def recorded_config(file: Path) -> JuryConfig:
    """Return a panel of two recorded jurors and no judge."""
    return JuryConfig.model_validate(
        {
            "protocol": {"default_options": list(OPTIONS), "max_rounds": 2, "quorum": 1},
            "jurors": [
                recorded_spec("strong", "Strong", file),
                recorded_spec("weak", "Weak", file),
            ],
            "panels": {"default": {"jurors": ["strong", "weak"], "judge": "none"}},
        }
    )


async def test_a_judgeless_panel_decides_by_vote_and_fails_typed(
    database_url: str, tmp_path: Path
) -> None:
    config = recorded_config(write_recordings(tmp_path / "rec.jsonl"))
    async with open_bench(database_url, config) as bench:
        with anyio.fail_after(GUARD_S):
            split = await bench.service.decide(
                VerdictRequest(
                    question="Which is better?",
                    options=list(OPTIONS),
                    metadata={"item_id": "item-1", "order": "ab"},
                )
            )
            unnamed = await bench.service.decide(
                VerdictRequest(
                    question="Which is better?",
                    options=list(OPTIONS),
                    metadata={"item_id": "item-2"},
                )
            )

    assert split.verdict_source == "weighted_vote"
    assert split.judge.name == "none"
    assert split.judge.fallback is False
    assert "judge_fallback" not in split.escalate_reasons
    # Neither juror changed in round 2 (recorded jurors hold), so deliberation stopped.
    assert split.stop_reason == "no_change"
    assert [p.position for p in split.rounds[1].positions] == ["A", "B"]
    # A 1-1 tie at equal confidence goes to the first option.
    assert split.verdict == "A"
    # Strong's recording of item-2 names neither output: a typed failure, not an answer.
    assert unnamed.verdict == "B"
    assert unnamed.degraded is True
    assert [(f.juror, f.kind) for f in unnamed.failures] == [("strong", FailureKind.INVALID_OUTPUT)]
