"""Jury's calls through litellm's HTTP handler, without the httpx client around its transport.

litellm's providers that make their own HTTP requests (``openai/...`` on the handler the
provider selects, Anthropic, Gemini, Ollama and the rest) send each one through
``AsyncHTTPHandler.post``: an ``httpx.AsyncClient`` around litellm's aiohttp transport, which
does the network I/O. For a chat completion the client adds nothing: it has no auth, no base
URL, no hooks, its cookie jar refuses every cookie, and a chat endpoint does not redirect. Yet
building its request (URL merge, header merge, cookie merge), sending it (auth and redirect
flows, cookie extraction, a wrapped stream) and reading it back cost 7% of a litellm call's
instructions under callgrind (a fifth of its time in cProfile, which overstates it).

While one of Jury's calls is in flight, a plain POST (a JSON body: no streaming, query, files
or JSON object) on a client with nothing of its own to add (litellm's aiohttp transport, no
proxy mounts, auth, hooks, cookies, query or base URL) is sent through that transport
directly, as the client would send it: the client's default headers under the call's, the
same body and timeout, the same exception types, read in full. What the client would do
differently is left to litellm: a redirect is sent again through litellm's own ``post``, which
follows it, and any other request, or any client litellm configured otherwise, takes litellm's
path unchanged. Failures are litellm's: a connection error is retried once on a fresh client, a
timeout raises litellm's ``Timeout``, an error status litellm's masked status error.
"""

from __future__ import annotations

import functools
import time
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import httpx
from litellm import exceptions as llm_errors
from litellm.llms.custom_httpx import http_handler
from litellm.llms.custom_httpx.aiohttp_transport import LiteLLMAiohttpTransport
from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

_DIRECT_MARK = "_jury_direct_post"
_NO_URL = httpx.URL("")


def install_direct_post(active: ContextVar[bool]) -> None:
    """Send plain POSTs straight through litellm's transport while ``active`` is set; once."""
    litellm_post = AsyncHTTPHandler.post
    if getattr(litellm_post, _DIRECT_MARK, False):
        return

    async def post(
        self: AsyncHTTPHandler,
        url: str,
        data: dict[str, Any] | str | bytes | None = None,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,  # noqa: ASYNC109 - litellm's keyword
        stream: bool = False,
        logging_obj: Any = None,
        files: Any = None,
        content: Any = None,
    ) -> httpx.Response:
        plain = isinstance(data, str | bytes) and (json, params, files, content) == (None,) * 4
        client = self.client
        if stream or not (plain and active.get() and sends_directly(client)):
            response: httpx.Response = await litellm_post(
                self,
                url,
                data=data,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout,
                stream=stream,
                logging_obj=logging_obj,
                files=files,
                content=content,
            )
            return response
        assert isinstance(data, str | bytes)  # plain, so the type checker knows it too
        return await _post_directly(
            self, client, litellm_post, url, data, headers, timeout, logging_obj
        )

    setattr(post, _DIRECT_MARK, True)
    AsyncHTTPHandler.post = post  # type: ignore[method-assign]


def sends_directly(client: httpx.AsyncClient) -> bool:
    """Return whether ``client`` would add nothing to a plain POST but its default headers."""
    return (
        isinstance(client._transport, LiteLLMAiohttpTransport)
        and not client._mounts
        and client.auth is None
        and not any(client.event_hooks.values())
        and not client.cookies
        and not client.params
        and client.base_url == _NO_URL
    )


async def _post_directly(
    handler: AsyncHTTPHandler,
    client: httpx.AsyncClient,
    litellm_post: Any,
    url: str,
    data: str | bytes,
    headers: dict[str, Any] | None,
    limit: float | httpx.Timeout | None,
    logging_obj: Any,
) -> httpx.Response:
    """``AsyncHTTPHandler.post``'s handling, around a send through the client's transport."""
    timeout = handler.timeout if limit is None else limit
    started = time.time()
    try:
        response = await send_through_transport(client, url, data, headers, timeout)
    except (httpx.RemoteProtocolError, httpx.ConnectError):
        # litellm's recovery: the pooled connection may be stale, so once more on a new client.
        fresh = handler.create_client(timeout=timeout, event_hooks=handler.event_hooks)
        try:
            retried: httpx.Response = await handler.single_connection_post_request(
                url=url, client=fresh, data=data, headers=headers
            )
            return retried
        finally:
            await fresh.aclose()
    except httpx.TimeoutException as exc:
        raise _litellm_timeout(exc, timeout, time.time() - started) from exc
    if response.has_redirect_location and client.follow_redirects:
        # The client would follow it: let it, through litellm's own post.
        redirected: httpx.Response = await litellm_post(
            handler, url, data=data, headers=headers, timeout=timeout, logging_obj=logging_obj
        )
        return redirected
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        await http_handler._raise_masked_async_error(exc, False)
    return response


async def send_through_transport(
    client: httpx.AsyncClient,
    url: str,
    data: str | bytes,
    headers: dict[str, Any] | None,
    limit: float | httpx.Timeout | None,
) -> httpx.Response:
    """POST ``data`` to ``url`` as ``client`` would, through its transport; read in full."""
    merged = httpx.Headers(client.headers)
    merged.update(headers)
    request = httpx.Request(
        "POST",
        parsed_url(url),
        headers=merged,
        content=data,
        extensions={"timeout": httpx.Timeout(limit).as_dict()},
    )
    started = time.perf_counter()
    try:
        response = await client._transport.handle_async_request(request)
    except httpx.RequestError as exc:
        exc.request = request  # as httpx's client attaches it
        raise
    response.request = request
    try:
        await response.aread()
    except BaseException:
        await response.aclose()
        raise
    response.elapsed = timedelta(seconds=time.perf_counter() - started)
    return response


@functools.lru_cache(maxsize=256)
def parsed_url(url: str) -> httpx.URL:
    """Return ``url`` parsed, once per URL: a model's endpoint is the same on every call.

    httpx parses it in pure Python (a tenth of the request's building); an ``httpx.URL`` is
    immutable, so one parse serves every request to it.
    """
    return httpx.URL(url)


def _litellm_timeout(
    exc: httpx.TimeoutException, timeout: float | httpx.Timeout | None, taken_s: float
) -> llm_errors.Timeout:
    """Return the timeout ``AsyncHTTPHandler.post`` raises, with its message and headers."""
    error_response: httpx.Response | None = getattr(exc, "response", None)
    headers = {}
    if error_response is not None:
        headers = {f"response_headers-{k}": v for k, v in error_response.headers.items()}
    return llm_errors.Timeout(
        message=f"Connection timed out. Timeout passed={timeout}, time taken={round(taken_s, 3)} "
        "seconds",
        model="default-model-name",
        llm_provider="litellm-httpx-handler",
        headers=headers,
    )
