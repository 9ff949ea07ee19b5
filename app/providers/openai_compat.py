"""The direct provider: OpenAI-compatible chat endpoints over one shared connection pool.

For models served by an OpenAI-compatible server that Jury reaches at ``api_base`` (llama.cpp,
vLLM, a gateway), ``transport: openai_compatible`` skips litellm. It sends the same request
as the litellm provider (``app/providers/chat.py``) and maps failures onto the same typed
errors, at a fraction of the CPU: litellm spends most of a call's time in per-call model
lookups, logging payloads and pricing that a keyless self-hosted model does not need. The
client is aiohttp's (litellm's own transport), not httpx's: in `jury bench` httpx's
connection pool cost 5x more CPU per call under concurrency. It does not price calls: such
models cost nothing Jury can measure, as with litellm.

HTTP status    error
429            ProviderRateLimitedError
401, 403       AuthError
400, 402,
404, 422       ProviderRequestError
other non-2xx  ProviderServerError       (5xx, proxies' 502/504)
timeout, 408   ProviderTimeoutError
network error  ProviderServerError       (refused or dropped connection)
bad body       ProviderServerError       (a 2xx that is not a chat completion)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.payload import BytesPayload
from pydantic_core import to_json

from app.core.config import ModelSpec
from app.providers.base import Completion, CompletionRequest, Message, TokenLogprobs
from app.providers.chat import chat_messages, response_format
from app.providers.errors import (
    RAW_DETAIL_CHARS,
    ProviderError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeoutError,
    status_failure,
)

# Keyless servers (the config refuses api_key_env here); the same placeholder as litellm's.
_JSON = "application/json"
_HEADERS = {"Authorization": "Bearer jury-local-no-key", "Content-Type": _JSON}
# Shared by every verdict: enough for hundreds of concurrent calls; a call waiting for a
# connection is still bounded by its own deadline.
POOL_SIZE = 1024
# An idle connection is closed before the server closes it: a request on a connection the
# server has just dropped fails (uvicorn-based servers, llama.cpp's among them, keep 5 s).
KEEPALIVE_S = 4.0


class OpenAICompatibleProvider:
    """POST ``{api_base}/chat/completions`` and read the first choice."""

    def __init__(self) -> None:
        # Opened on the first call: an aiohttp session belongs to the running event loop.
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_SIZE, keepalive_timeout=KEEPALIVE_S),
                raise_for_status=False,
            )
        return self._session

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Send one structured-output chat call and return the raw text with usage."""
        return parse_completion(spec, await self._post(spec, request_body(spec, request)))

    async def _post(self, spec: ModelSpec, body: dict[str, Any]) -> bytes:
        """POST ``body`` to the chat endpoint; return a 2xx's content or raise its failure."""
        if spec.api_base is None:
            raise ProviderRequestError(f"{spec.name}: openai_compatible needs an api_base")
        try:
            async with self._client().post(
                f"{spec.api_base.rstrip('/')}/chat/completions",
                # A payload, not bytes: aiohttp would look bytes up in its payload registry.
                # pydantic-core's encoder: the prompt's JSON in a quarter of json.dumps's time.
                data=BytesPayload(to_json(body), content_type=_JSON),
                headers=_HEADERS,
                timeout=aiohttp.ClientTimeout(total=spec.timeout_s),
            ) as response:
                status = response.status
                content = await response.read()
        except TimeoutError as exc:
            raise ProviderTimeoutError(f"{spec.name}: no answer in {spec.timeout_s:g}s") from exc
        except aiohttp.ClientError as exc:
            raise ProviderServerError(
                f"{spec.name}: {type(exc).__name__}: {exc}"[:RAW_DETAIL_CHARS]
            ) from exc
        if status >= 300:
            raise status_error(status, content.decode(errors="replace"))
        return content

    async def prefill(self, spec: ModelSpec, messages: Sequence[Message]) -> None:
        """Have the server read ``messages`` into its prompt cache; raise ``ProviderError``.

        One token is decoded (and dropped): the point is the prompt, which a later call that
        extends these messages reuses from the server's cache (llama.cpp's ``cache_prompt``).
        """
        body = {
            "model": spec.model.removeprefix("openai/"),
            "messages": chat_messages(spec, messages),
            "max_tokens": 1,
            "temperature": 0.0,
        }
        await self._post(spec, body)


def request_body(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    """Return the JSON body of the chat call (litellm's ``openai/`` prefix removed)."""
    body: dict[str, Any] = {
        "model": spec.model.removeprefix("openai/"),
        "messages": chat_messages(spec, request.messages),
        "max_tokens": request.max_tokens or spec.max_tokens,
        "temperature": spec.temperature,
    }
    if request.top_logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    if spec.frequency_penalty is not None:
        body["frequency_penalty"] = spec.frequency_penalty
    fmt = response_format(spec, request)
    if fmt is not None:
        body["response_format"] = fmt
    return body


def parse_completion(spec: ModelSpec, content: bytes) -> Completion:
    """Read the text and usage of a chat completion, or raise ``ProviderServerError``."""
    try:
        data = json.loads(content)
        message = data["choices"][0]["message"]
        usage = data.get("usage") or {}
        return Completion(
            text=message.get("content") or "",
            model=str(data.get("model") or spec.model),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            tokens=_token_logprobs(data["choices"][0].get("logprobs")),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        quoted = content[:RAW_DETAIL_CHARS]
        detail = f"{spec.name}: not a chat completion ({type(exc).__name__}): {quoted!r}"
        raise ProviderServerError(detail) from exc


def _token_logprobs(logprobs: Any) -> tuple[TokenLogprobs, ...] | None:
    """Read OpenAI's ``logprobs.content`` (llama-server's too), or None when absent."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content:
        return None
    return tuple(
        TokenLogprobs(
            token=str(entry["token"]),
            logprob=float(entry["logprob"]),
            top={str(alt["token"]): float(alt["logprob"]) for alt in entry.get("top_logprobs", ())},
        )
        for entry in content
    )


def status_error(status: int, text: str) -> ProviderError:
    """Map an HTTP error status onto Jury's typed failure, as the litellm path does."""
    return status_failure(status, f"HTTP {status}: {text}"[:RAW_DETAIL_CHARS])
