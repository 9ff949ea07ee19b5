"""Label calibration of a judge's verdict: divide out the judge's own prior over the labels.

Small models prefer some labels whatever the case says. On the first 200 TruthfulQA items,
Qwen2.5-Coder-1.5B answered "A" on 132 (gold: 102) and scored 86/200, below chance. Contextual
calibration (Zhao et al. 2021, arXiv 2102.09690) measures that preference on a content-free
copy of the case (the same options, the question "N/A") and divides it out of the model's
probabilities on the real case: on the same 200 items, 104/200.

A calibrated judge is asked twice over the same prompt: a short probe that reads its
probability of each option at the verdict's first token, then its full answer with the
verdict fixed to the calibrated choice, so that its sides and notes argue the verdict it gives.
The second call reuses the probe's prompt from a local server's cache.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio

from app.deliberation.prompts import Case
from app.providers.base import TokenLogprobs

CONTENT_FREE_QUESTION: Final = "N/A"
PROBE_TOP_LOGPROBS: Final = 20
"""Alternatives read at each token. The logprobs are the model's before the server's grammar:
Qwen's put both labels in its top three, SmolLM2-135M's neither in its top ten."""
PROBE_MAX_TOKENS: Final = 16
"""Enough for the JSON up to the verdict's first token, whatever whitespace the model puts.
No stop string ends it sooner: llama-server then holds back and merges the tokens that could
begin one (a quote could begin '",'), and its logprobs no longer list the label's token."""
PRIORS_KEPT: Final = 256
"""Priors are per options set, which callers choose: a bound keeps the cache from growing."""

Probabilities = dict[str, float]
PriorKey = tuple[str, str, tuple[str, ...], str]
"""The judge's name, its spec's fingerprint, the options and the prompts' version: what the
prior depends on. The fingerprint changes with the judge's model, server or script."""


@dataclass(frozen=True, slots=True)
class LabelCalibration:
    """What calibration saw and decided for one verdict."""

    observed: Probabilities
    prior: Probabilities
    calibrated: Probabilities

    @property
    def verdict(self) -> str:
        """Return the likeliest option once the prior is divided out."""
        return _likeliest(self.calibrated)

    @property
    def uncalibrated(self) -> str:
        """Return the option the judge itself found likeliest."""
        return _likeliest(self.observed)

    @property
    def flipped(self) -> bool:
        """Return whether calibration chose another option than the judge would have."""
        return self.verdict != self.uncalibrated

    def as_record(self) -> dict[str, Any]:
        """Return the calibration as stored with the judge's call."""
        return {
            "method": "content_free",
            "observed": _rounded(self.observed),
            "prior": _rounded(self.prior),
            "calibrated": _rounded(self.calibrated),
            "uncalibrated_verdict": self.uncalibrated,
            "flipped": self.flipped,
        }


def content_free(case: Case) -> Case:
    """Return the case with its content taken out and its options and framing kept."""
    return Case(
        question=CONTENT_FREE_QUESTION,
        options=case.options,
        context=None,
        nonce=case.nonce,
        metadata=case.metadata,
    )


def option_probabilities(
    tokens: Sequence[TokenLogprobs], field_name: str, options: Sequence[str]
) -> Probabilities | None:
    """Return each option's probability at the first token of ``field_name``'s string value.

    Renormalised over the options. None when the value is not in ``tokens``, or when its first
    token's alternatives cannot tell the options apart: none of them begins an option, or one
    begins two (options that begin alike: "approve" and "approved").
    """
    text = "".join(token.token for token in tokens)
    found = re.search(rf'"{re.escape(field_name)}"\s*:\s*"', text)
    if found is None or len(options) < 2:
        return None
    offset = 0
    for token in tokens:
        end = offset + len(token.token)
        if end > found.end():
            # The part of this token before the value (a merged opening quote, say).
            lead = text[offset : found.end()]
            return _first_token_split(token, lead, options)
        offset = end
    return None


def calibrate(observed: Mapping[str, float], prior: Mapping[str, float]) -> Probabilities:
    """Return ``observed`` divided by ``prior``, renormalised (the options of ``observed``)."""
    logits = {o: math.log(p) - math.log(prior.get(o) or _FLOOR) for o, p in observed.items()}
    return _normalised(logits)


class PriorStore(Protocol):
    """Where measured priors outlive the process: a later process reads them, not re-measures."""

    async def load(self, key: PriorKey) -> Probabilities | None:
        """Return the prior kept for ``key``, or None (none kept, or the store unavailable)."""
        ...

    async def save(self, key: PriorKey, prior: Probabilities) -> None:
        """Keep ``prior`` for ``key``; a store that cannot keep it says so in its log."""
        ...


class LabelPriors:
    """The judges' content-free priors: measured once per judge, options set and prompt.

    With a ``store``, a prior is read from it before it is measured, and kept in it once
    measured: ``jury ask``, one verdict per process, then measures each prior once, not in
    every process (the probe competes with the jurors for the cores).
    """

    def __init__(self, kept: int = PRIORS_KEPT, store: PriorStore | None = None) -> None:
        self._kept = kept
        self._store = store
        self._entries: OrderedDict[PriorKey, _Entry] = OrderedDict()

    async def prior(
        self, key: PriorKey, measure: Callable[[], Awaitable[Probabilities | None]]
    ) -> Probabilities | None:
        """Return the prior for ``key``, measuring it once; a failed measure is not kept."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self._kept:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        async with entry.lock:
            if entry.prior is None:
                entry.prior = await self._kept_or_measured(key, measure)
            return entry.prior

    async def _kept_or_measured(
        self, key: PriorKey, measure: Callable[[], Awaitable[Probabilities | None]]
    ) -> Probabilities | None:
        if self._store is None:
            return await measure()
        kept = await self._store.load(key)
        if kept is not None and set(kept) == set(key[2]):
            return kept
        measured = await measure()
        if measured is not None:
            await self._store.save(key, measured)
        return measured


@dataclass(slots=True)
class _Entry:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    prior: Probabilities | None = None


# An option missing from the alternatives has at most the lowest listed probability: taking
# that bound, not zero, keeps one unlisted option from deciding a calibration by itself.
_FLOOR: Final = 1e-9


def _first_token_split(
    token: TokenLogprobs, lead: str, options: Sequence[str]
) -> Probabilities | None:
    alternatives = {
        alt[len(lead) :]: logprob
        for alt, logprob in (token.top or {token.token: token.logprob}).items()
        if alt.startswith(lead) and len(alt) > len(lead)
    }
    mass: dict[str, list[float]] = {option: [] for option in options}
    for alt, logprob in alternatives.items():
        # A token may close the value too ('A"'): it begins the option followed by the quote.
        begun = [o for o in options if f'{o}"'.startswith(alt) or alt.startswith(f'{o}"')]
        if len(begun) > 1:
            return None
        if begun:
            mass[begun[0]].append(logprob)
    if not any(mass.values()):
        return None
    floor = min(alternatives.values())
    logits = {o: _logsumexp(found) if found else floor for o, found in mass.items()}
    return _normalised(logits)


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _normalised(logits: Mapping[str, float]) -> Probabilities:
    total = _logsumexp(list(logits.values()))
    return {option: math.exp(logit - total) for option, logit in logits.items()}


def _likeliest(probabilities: Mapping[str, float]) -> str:
    return max(probabilities, key=probabilities.__getitem__)


def _rounded(probabilities: Mapping[str, float]) -> dict[str, float]:
    return {option: round(p, 4) for option, p in probabilities.items()}
