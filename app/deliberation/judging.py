"""A calibrated judge's probes: its content-free prior, then its verdict (``calibration``).

Both probes are short calls over the judge's own prompts (``PROBE_MAX_TOKENS``). A probe that
fails, or whose server returns no usable logprobs, skips calibration for that verdict: the
judge then answers as an uncalibrated judge would, and the reason is kept with its call.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from app.core.clock import Deadline
from app.core.config import ModelSpec
from app.deliberation import prompts
from app.deliberation.answers import JUDGE_SCHEMA_NAME, JudgeAnswer, JudgeForm
from app.deliberation.calibration import (
    PROBE_MAX_TOKENS,
    PROBE_TOP_LOGPROBS,
    LabelCalibration,
    LabelPriors,
    PriorKey,
    Probabilities,
    calibrate,
    content_free,
    option_probabilities,
)
from app.deliberation.calls import CallOutcome, complete_within
from app.providers.base import CallPurpose, CompletionRequest, Message
from app.providers.errors import ProviderError
from app.providers.hub import ProviderHub


def calibration_for(
    hub: ProviderHub,
    judge: ModelSpec | None,
    case: prompts.Case,
    deadline: Deadline,
    priors: LabelPriors | None,
) -> JudgeCalibration | None:
    """Return the hearing's calibration when its judge is calibrated and there is a choice.

    Without ``priors`` (kept across verdicts by the service), the hearing measures its own.
    """
    if judge is None or judge.label_calibration is None or len(case.options) < 2:
        return None
    kept = priors if priors is not None else LabelPriors()
    return JudgeCalibration(hub=hub, judge=judge, case=case, deadline=deadline, priors=kept)


# What a judge's spec says that its odds over the labels do not depend on.
_NOT_IN_FINGERPRINT = frozenset({"timeout_s", "max_concurrency", "cost", "api_key_env"})


def judge_fingerprint(judge: ModelSpec) -> str:
    """Return a digest of what the judge's prior depends on: its model, server and probes.

    A kept prior is reused only under the same fingerprint, so a judge given another model,
    server, script or sampling is measured again.
    """
    spec = judge.model_dump_json(exclude=set(_NOT_IN_FINGERPRINT))
    probes = f"{PROBE_TOP_LOGPROBS}/{PROBE_MAX_TOKENS}"
    return hashlib.sha256(f"{spec}|{probes}".encode()).hexdigest()[:32]


@dataclass(slots=True)
class JudgeCalibration:
    """One hearing's label calibration of its judge, and what its probes spent."""

    hub: ProviderHub
    judge: ModelSpec
    case: prompts.Case
    deadline: Deadline
    priors: LabelPriors
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    skipped: str | None = None
    # This hearing's answer from the priors, once asked: a failed measure is not kept across
    # verdicts, but measuring it again at the verdict would put a probe on the judge's path
    # and evict the read-ahead transcript from the judge's server.
    _asked: bool = False
    _prior: Probabilities | None = None
    _asking: anyio.Lock = field(default_factory=anyio.Lock)

    async def prior(self) -> Probabilities | None:
        """Return the judge's content-free prior over the options, asked once per hearing."""
        async with self._asking:
            if not self._asked:
                key: PriorKey = (
                    self.judge.name,
                    judge_fingerprint(self.judge),
                    self.case.options,
                    prompts.PROMPT_VERSION,
                )
                self._prior = await self.priors.prior(key, self._measure_prior)
                self._asked = True
        return self._prior

    async def decide(
        self, messages: tuple[Message, ...], schema: dict[str, Any]
    ) -> LabelCalibration | None:
        """Probe the judge's verdict over ``messages`` and divide its prior out; None: skipped."""
        prior = await self.prior()
        if prior is None:
            self.skipped = self.skipped or "no_prior"
            return None
        observed = await self._probe(messages, schema, "probe")
        if observed is None:
            return None
        return LabelCalibration(
            observed=observed, prior=prior, calibrated=calibrate(observed, prior)
        )

    def settle(self, outcome: CallOutcome[JudgeAnswer], decided: LabelCalibration | None) -> None:
        """Charge the probes to the judge's call; cap its confidence at the calibrated odds.

        A judge made to give the calibrated verdict may still state its own confidence in it;
        the verdict cannot be surer than the calibrated probability that chose it.
        """
        outcome.prompt_tokens += self.prompt_tokens
        outcome.completion_tokens += self.completion_tokens
        outcome.latency_ms += self.latency_ms
        outcome.calibration = decided
        outcome.calibration_skipped = None if decided is not None else self.skipped
        if decided is not None and outcome.answer is not None:
            odds = decided.calibrated[decided.verdict]
            if outcome.answer.confidence > odds:
                outcome.answer = outcome.answer.model_copy(update={"confidence": odds})

    async def _measure_prior(self) -> Probabilities | None:
        blank = content_free(self.case)
        form = JudgeForm(options=blank.options, final=(), quoted=self.judge.sides == "quoted")
        messages = prompts.judge_call(blank, [], quoted=form.quoted)
        return await self._probe(messages, form.schema(blank.options), "prior")

    async def _probe(
        self, messages: tuple[Message, ...], schema: dict[str, Any], purpose: CallPurpose
    ) -> Probabilities | None:
        request = CompletionRequest(
            messages=messages,
            schema_name=JUDGE_SCHEMA_NAME,
            output_schema=schema,
            call_role="judge",
            round_number=1,
            metadata=dict(self.case.metadata),
            top_logprobs=PROBE_TOP_LOGPROBS,
            max_tokens=PROBE_MAX_TOKENS,
            purpose=purpose,
        )
        started = time.perf_counter()
        try:
            completion = await complete_within(
                self.hub, self.judge, request, deadline=self.deadline
            )
        except ProviderError as exc:
            self.skipped = f"{purpose}_{exc.kind.value}"
            return None
        finally:
            # The prior is measured while the jurors deliberate: only the verdict's probe
            # is on the judge's path.
            if purpose == "probe":
                self.latency_ms += (time.perf_counter() - started) * 1000
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        if completion.tokens is None:
            self.skipped = "no_logprobs"
            return None
        found = option_probabilities(completion.tokens, "verdict", self.case.options)
        if found is None:
            self.skipped = "labels_unread"
        return found
