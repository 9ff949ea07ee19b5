"""The provider hub: picks the provider for a model and enforces shared concurrency limits.

litellm takes seconds to import and initialise (15 s measured on a loaded 2-core machine), all
of it blocking. Done on the event loop at the first call, it stalled every request, ``/healthz``
included, and spent the first verdicts' deadlines. So the hub loads it in a worker thread:
``warm_up`` at start-up (the runtime starts it in the background), or, for a hub that was never
warmed up, at its first call; a call that needs litellm meanwhile waits without blocking the
loop. ``readiness`` says which it is, for ``/readyz``.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Sequence

import anyio
import anyio.to_thread

from app.core.config import JuryConfig, ModelSpec
from app.core.metrics import READ_AHEADS
from app.core.secrets import scrub
from app.providers.base import Completion, CompletionRequest, Message, Provider
from app.providers.errors import (
    MAX_DETAIL_CHARS,
    RAW_DETAIL_CHARS,
    ProviderError,
    ProviderServerError,
)
from app.providers.openai_compat import OpenAICompatibleProvider
from app.providers.recorded import RecordedProvider
from app.providers.scripted import ScriptedProvider

logger = logging.getLogger("jury.providers")


def bounded_detail(detail: str) -> str:
    """Return ``detail`` cut to ``MAX_DETAIL_CHARS``, never through a ``[REDACTED:…]`` mark."""
    if len(detail) <= MAX_DETAIL_CHARS:
        return detail
    kept = detail[:MAX_DETAIL_CHARS]
    opened = kept.rfind("[REDACTED:")
    return kept[:opened] if opened >= 0 and "]" not in kept[opened:] else kept


def load_litellm(models: Sequence[str]) -> Provider:
    """Import litellm and run its first-call set-up for ``models``: blocking, for a thread."""
    from app.providers.litellm_provider import LiteLLMProvider

    provider = LiteLLMProvider()
    provider.warm_up(models)
    return provider


def _uses_litellm(spec: ModelSpec) -> bool:
    offline = spec.is_scripted or spec.is_recorded
    return not offline and spec.transport != "openai_compatible"


class ProviderHub:
    """Route calls to the scripted, recorded, direct or litellm provider, under per-model limiters.

    Built once per process (in the app's lifespan) so that limiters and connection pools are
    shared by every concurrent verdict: a local server decoding two prompts at once on two
    cores is slower than decoding them one after the other.
    """

    def __init__(
        self,
        config: JuryConfig,
        *,
        real: Provider | None = None,
        local_limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self._scripted = ScriptedProvider()
        self._recorded = RecordedProvider()
        self._injected = real  # a test's stand-in for every real model
        # Every key the config names: an upstream (or a gateway in front of several) may echo any.
        self._key_envs = tuple(
            dict.fromkeys(spec.api_key_env for spec in config.models() if spec.api_key_env)
        )
        self._litellm: Provider | None = None
        self._loading = anyio.Lock()
        self._load_failure: str | None = None
        # The models litellm will serve (none: scripted, direct or injected ones only).
        self._litellm_models: tuple[str, ...] = ()
        if real is None:
            self._litellm_models = tuple(
                dict.fromkeys(spec.model for spec in config.models() if _uses_litellm(spec))
            )
        self._direct: OpenAICompatibleProvider | None = None
        self._local_limiter = local_limiter
        self._limiters = {
            spec.name: anyio.CapacityLimiter(spec.max_concurrency)
            for spec in config.models()
            if spec.max_concurrency is not None
        }

    async def warm_up(self) -> None:
        """Load litellm in a worker thread now, if the config needs it; never raises.

        A failure to load is kept for ``readiness``; a call that needs litellm tries again.
        """
        if not self._litellm_models:
            return
        try:
            await self._litellm_provider()
        except Exception as exc:
            self._load_failure = f"{type(exc).__name__}: {exc}"[:200]

    def readiness(self) -> str:
        """Say whether the providers take calls: ``ok``, ``starting: …`` or ``unavailable: …``."""
        if not self._litellm_models or self._litellm is not None:
            return "ok"
        if self._load_failure is not None:
            return f"unavailable: litellm failed to load ({self._load_failure})"
        return "starting: litellm is loading"

    async def _litellm_provider(self) -> Provider:
        # One load, off the loop; concurrent first calls wait for it instead of loading again.
        async with self._loading:
            if self._litellm is None:
                self._litellm = await anyio.to_thread.run_sync(
                    load_litellm, self._litellm_models, abandon_on_cancel=True
                )
                self._load_failure = None
        return self._litellm

    async def _provider_for(self, spec: ModelSpec) -> Provider:
        if spec.is_scripted:
            return self._scripted
        if spec.is_recorded:
            return self._recorded
        if self._injected is not None:
            return self._injected
        if spec.transport == "openai_compatible":
            return self._direct_provider()
        if self._litellm is None:
            return await self._litellm_provider()
        return self._litellm

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Answer ``request`` with ``spec``'s model, or raise its failure with a scrubbed detail.

        The one place every provider's failure passes before it is recorded, returned, streamed
        or logged: its text is scrubbed of the keys Jury sent and of anything credential-shaped,
        then cut to ``MAX_DETAIL_CHARS``.

        A provider that raises anything else (litellm has code paths that raise IndexError or
        TypeError on an odd answer) fails the call as ``provider_error``, its frames logged:
        one juror's odd upstream must not take the verdict, and the other jurors, with it.
        """
        try:
            return await self._complete(spec, request)
        except ProviderError as exc:
            # Not chained: the original exception's text is what must not be kept.
            raise self._scrubbed(exc, spec) from None
        except Exception as exc:
            raised = f"{spec.name}: the provider raised {type(exc).__name__}: {exc}"
            failure = self._scrubbed(ProviderServerError(raised[:RAW_DETAIL_CHARS]), spec)
            # The frames, not the exception's own text, which is logged only scrubbed.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            logger.error("%s\n%s", failure.detail, frames)
            raise failure from None

    def _scrubbed(self, exc: ProviderError, spec: ModelSpec) -> ProviderError:
        envs = (spec.api_key_env, *self._key_envs) if spec.api_key_env else self._key_envs
        keys = [os.environ.get(env, "") for env in envs]
        detail = bounded_detail(scrub(exc.detail, keys))
        return exc if detail == exc.detail else type(exc)(detail)

    async def _complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Answer ``request`` with ``spec``'s model, waiting for its limiter if it has one."""
        provider = await self._provider_for(spec)
        limiter = self._limiters.get(spec.name)
        # A calibrated judge's content-free prior is measured while the jurors deliberate:
        # like a read-ahead, it goes outside the local limiter rather than hold a juror back.
        if limiter is None and spec.is_local and request.purpose != "prior":
            limiter = self._local_limiter
        if limiter is None:
            return await provider.complete(spec, request)
        async with limiter:
            return await provider.complete(spec, request)

    def _direct_provider(self) -> OpenAICompatibleProvider:
        if self._direct is None:
            self._direct = OpenAICompatibleProvider()
        return self._direct

    def reads_ahead(self, spec: ModelSpec) -> bool:
        """Whether ``spec``'s server keeps a prompt cache that ``prefill`` can fill.

        Jury's own local servers do (llama.cpp's); a hosted API caches prompts on its own
        terms, and the scripted and recorded models have nothing to read.
        """
        offline = spec.is_scripted or spec.is_recorded or self._injected is not None
        return spec.is_local and spec.transport == "openai_compatible" and not offline

    async def prefill(self, spec: ModelSpec, messages: Sequence[Message]) -> None:
        """Have ``spec``'s local server read ``messages`` ahead of the call that extends them.

        Outside the local limiter: the jurors' calls come first, and the server's one slot
        makes the later call wait for this one. Never raises: a failed read-ahead only loses
        its head start; it is logged and counted (``jury_judge_read_aheads_total``).
        """
        if not self.reads_ahead(spec):
            return
        try:
            await self._direct_provider().prefill(spec, messages)
        except ProviderError as exc:
            READ_AHEADS.labels(spec.name, exc.kind.value).inc()
            logger.warning("%s: read-ahead failed: %s", spec.name, self._scrubbed(exc, spec))
            return
        READ_AHEADS.labels(spec.name, "ok").inc()

    async def aclose(self) -> None:
        """Close the direct provider's connection pool, if it was opened."""
        if self._direct is not None:
            await self._direct.aclose()
            self._direct = None
