"""The recorded provider: a juror that replays a real model's recorded judgements.

A team's own judge logs (or published ones, such as LLMBar's evaluator outputs) sit on a panel
behind the same interface as a live model, so trust can be learned before a single paid call.
One JSON object a line (the README documents the shape)::

    {"item_id": "...", "judge": "GPT-4", "model": "gpt-4", "prompting": "Vanilla",
     "order": "original" | "swapped", "winner": "a" | "b" | null, "completion": "..."}

A verdict finds its recording through ``metadata.item_id`` and ``metadata.order``. ``winner``
is in the item's own terms (``a`` is the first response as stored), so in the swapped
presentation it maps to the other option. A recorded juror answers every round with its one
recorded judgement: in a rebuttal round it holds its position, since the recording cannot read
the other jurors' arguments. No recording (or one that names no winner) is a typed failure,
never an invented answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from app.core.config import ModelSpec, Recording
from app.providers.base import Completion, CompletionRequest
from app.providers.errors import InvalidOutputError, ProviderRequestError

ORIGINAL = "original"
SWAPPED = "swapped"
# The eval harness names the presentations by the order the responses are shown in.
ORDER_ALIASES: Mapping[str, str] = {
    ORIGINAL: ORIGINAL,
    SWAPPED: SWAPPED,
    "ab": ORIGINAL,
    "ba": SWAPPED,
}
WINNERS = ("a", "b")
VANILLA_REASONING = "Recorded judgement (label only): {completion}"
RECORDED_DISAGREEMENT = "A recorded judgement between {options}: it did not read the deliberation."


@dataclass(frozen=True, slots=True)
class Judgement:
    """One recorded judgement of one item in one presentation order."""

    model: str
    winner: str | None
    completion: str | None


Key = tuple[str, str, str, str]
"""(judge, prompting, item_id, order)."""


def load_recordings(path: Path) -> dict[Key, Judgement]:
    """Read a recordings file into an index by (judge, prompting, item, order)."""
    index: dict[Key, Judgement] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = (row["judge"], row["prompting"], row["item_id"], _order(row["order"]))
                winner = row.get("winner")
                if winner not in (*WINNERS, None):
                    raise ValueError(f"winner {winner!r} is not 'a', 'b' or null")
                index[key] = Judgement(
                    model=str(row.get("model") or row["judge"]),
                    winner=winner,
                    completion=row.get("completion"),
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ProviderRequestError(f"{path}:{number}: not a recording: {exc}") from exc
    return index


def _order(value: Any) -> str:
    order = ORDER_ALIASES.get(str(value))
    if order is None:
        raise ValueError(f"order {value!r} is not one of {sorted(ORDER_ALIASES)}")
    return order


def position_of(winner: str, order: str, options: Sequence[str]) -> str:
    """Map a recorded winner (item terms) to the option label shown in ``order``."""
    if len(options) != len(WINNERS):
        raise ProviderRequestError(f"a recorded pairwise judgement needs 2 options, got {options}")
    index = WINNERS.index(winner)
    return options[index if order == ORIGINAL else 1 - index]


class RecordedProvider:
    """Answer each call with the recorded judgement of the verdict's item."""

    def __init__(self) -> None:
        self._files: dict[Path, dict[Key, Judgement]] = {}
        self._lock = anyio.Lock()

    async def _recordings(self, path: Path) -> dict[Key, Judgement]:
        async with self._lock:
            if path not in self._files:
                try:
                    self._files[path] = await anyio.to_thread.run_sync(load_recordings, path)
                except OSError as exc:
                    raise ProviderRequestError(f"recordings file {path}: {exc}") from exc
            return self._files[path]

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Replay the recording named by the request's metadata, or raise a typed failure."""
        if spec.recorded is None:
            raise ProviderRequestError(f"'{spec.name}' has no 'recorded' block")
        recording = spec.recorded
        judgement, item, order = await self._find(spec, recording, request.metadata)
        if judgement.winner is None:
            raise InvalidOutputError(
                f"{spec.name}: the recorded {recording.judge} judgement of item {item!r} "
                f"({order}) names neither output"
            )
        position = position_of(judgement.winner, order, request.options())
        text = json.dumps(_answer(request, recording, judgement, position))
        return Completion(text=text, model=judgement.model)

    async def _find(
        self, spec: ModelSpec, recording: Recording, metadata: Mapping[str, Any]
    ) -> tuple[Judgement, str, str]:
        item = metadata.get("item_id")
        if not isinstance(item, str) or not item:
            raise ProviderRequestError(
                f"{spec.name}: a recorded juror needs metadata.item_id to find its recording"
            )
        try:
            order = _order(metadata.get("order", ORIGINAL))
        except ValueError as exc:
            raise ProviderRequestError(f"{spec.name}: metadata.order: {exc}") from exc
        recordings = await self._recordings(recording.file)
        judgement = recordings.get((recording.judge, recording.prompting, item, order))
        if judgement is None:
            raise ProviderRequestError(
                f"{spec.name}: no recording of item {item!r} ({order}) by "
                f"{recording.judge} ({recording.prompting}) in {recording.file}"
            )
        return judgement, item, order


def _answer(
    request: CompletionRequest, recording: Recording, judgement: Judgement, position: str
) -> dict[str, Any]:
    completion = (judgement.completion or "").strip() or f"Output ({judgement.winner})"
    # A CoT completion is the juror's reasoning; a Vanilla one is only the label.
    reasoning = completion if recording.prompting != "Vanilla" else None
    reasoning = (reasoning or VANILLA_REASONING.format(completion=completion))[:4000]
    if request.call_role == "judge":
        return {
            "verdict": position,
            "confidence": recording.confidence,
            "disagreement": RECORDED_DISAGREEMENT.format(options=" and ".join(request.options())),
            "dissenter_notes": [],
        }
    return {
        "position": position,
        "confidence": recording.confidence,
        "reasoning": reasoning,
        "evidence": None,
    }
