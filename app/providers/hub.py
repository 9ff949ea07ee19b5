"""The provider hub: picks the provider for a model and enforces shared concurrency limits."""

from __future__ import annotations

import os

import anyio

from app.core.config import JuryConfig, ModelSpec
from app.core.secrets import scrub
from app.providers.base import Completion, CompletionRequest, Provider
from app.providers.errors import MAX_DETAIL_CHARS, ProviderError
from app.providers.openai_compat import OpenAICompatibleProvider
from app.providers.recorded import RecordedProvider
from app.providers.scripted import ScriptedProvider


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
        self._direct: OpenAICompatibleProvider | None = None
        self._local_limiter = local_limiter
        self._limiters = {
            spec.name: anyio.CapacityLimiter(spec.max_concurrency)
            for spec in config.models()
            if spec.max_concurrency is not None
        }

    def _provider_for(self, spec: ModelSpec) -> Provider:
        if spec.is_scripted:
            return self._scripted
        if spec.is_recorded:
            return self._recorded
        if self._injected is not None:
            return self._injected
        if spec.transport == "openai_compatible":
            if self._direct is None:
                self._direct = OpenAICompatibleProvider()
            return self._direct
        if self._litellm is None:
            # Imported lazily: litellm is heavy and scripted-only runs never need it.
            from app.providers.litellm_provider import LiteLLMProvider

            self._litellm = LiteLLMProvider()
        return self._litellm

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Answer ``request`` with ``spec``'s model, or raise its failure with a scrubbed detail.

        The one place every provider's failure passes before it is recorded, returned, streamed
        or logged: its text is scrubbed of the keys Jury sent and of anything credential-shaped.
        """
        try:
            return await self._complete(spec, request)
        except ProviderError as exc:
            # Not chained: the original exception's text is what must not be kept.
            raise self._scrubbed(exc, spec) from None

    def _scrubbed(self, exc: ProviderError, spec: ModelSpec) -> ProviderError:
        envs = (spec.api_key_env, *self._key_envs) if spec.api_key_env else self._key_envs
        keys = [os.environ.get(env, "") for env in envs]
        detail = scrub(exc.detail, keys)[:MAX_DETAIL_CHARS]
        return exc if detail == exc.detail else type(exc)(detail)

    async def _complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Answer ``request`` with ``spec``'s model, waiting for its limiter if it has one."""
        provider = self._provider_for(spec)
        limiter = self._limiters.get(spec.name)
        if limiter is None and spec.is_local:
            limiter = self._local_limiter
        if limiter is None:
            return await provider.complete(spec, request)
        async with limiter:
            return await provider.complete(spec, request)

    async def aclose(self) -> None:
        """Close the direct provider's connection pool, if it was opened."""
        if self._direct is not None:
            await self._direct.aclose()
            self._direct = None
