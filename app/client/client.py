"""Jury's typed Python client, sync (``JuryClient``) and async (``AsyncJuryClient``).

One ``httpx`` client per instance (its connections are reused; close it, or use ``with``), with
timeouts that are never infinite. ``request_verdict`` sends an ``Idempotency-Key`` (a new one per
call unless given) and retries a network failure or a 409 ``request_in_progress`` with the same
key, so a retry can never deliberate twice. Results are the server's own schemas
(``VerdictOut``, ...); errors are the server's error tree (``app.client.errors``).

It imports only the protocol's schemas and httpx: usable wherever Jury's package is installed,
without a database, Redis or a running runtime.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ValidationError

from app.client.errors import (
    APIError,
    ProtocolError,
    RequestInProgress,
    TransportError,
    api_error,
)
from app.deliberation.events import TERMINAL_EVENTS, Event
from app.deliberation.schemas import (
    Action,
    VerdictAccepted,
    VerdictIncomplete,
    VerdictOut,
    VerdictRequest,
)

DEFAULT_URL = "http://127.0.0.1:8000"
# A verdict may take the server's whole deadline (120 s by default, at most an hour): reads wait
# that long, everything else fails fast. Never None: a hung server must not hang the agent.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=330.0, write=30.0, pool=10.0)
DEFAULT_RETRIES = 2


class Outcome(BaseModel):
    """A recorded outcome, as the server answers it."""

    id: int
    verdict_id: str
    correct_option: str
    source: str
    recorded_by: str
    revision: int


def _timeout(timeout: httpx.Timeout | float) -> httpx.Timeout:
    resolved = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    parts = (resolved.connect, resolved.read, resolved.write, resolved.pool)
    if any(part is None for part in parts):
        raise ValueError("every timeout must be finite (connect, read, write and pool)")
    return resolved


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "jury-client/0.1"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def verdict_request(
    question: str,
    *,
    context: str | None = None,
    action: Action | Mapping[str, Any] | None = None,
    options: Sequence[str] | None = None,
    category: str = "default",
    panel: str | None = None,
    max_rounds: int | None = None,
    deadline_s: float | None = None,
    exclude_models: Sequence[str] = (),
    authored_by: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> VerdictRequest:
    """Return a checked request (the server's own schema: a bad field fails here, named)."""
    return VerdictRequest.model_validate(
        {
            "question": question,
            "context": context,
            "action": action.model_dump() if isinstance(action, Action) else action,
            "options": list(options) if options is not None else None,
            "category": category,
            "panel": panel,
            "max_rounds": max_rounds,
            "deadline_s": deadline_s,
            "exclude_models": list(exclude_models),
            "authored_by": list(authored_by),
            "metadata": dict(metadata or {}),
        }
    )


def _body(request: VerdictRequest) -> dict[str, Any]:
    return request.model_dump(mode="json", exclude_none=True, exclude={"mode"})


def _parse(response: httpx.Response) -> dict[str, Any]:
    """Return the JSON body of a success, or raise the server's error as its type."""
    try:
        body = response.json()
    except ValueError:
        raise ProtocolError(f"{response.status_code} answer is not JSON") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"{response.status_code} answer is not a JSON object")
    if response.is_error:
        raise api_error(response.status_code, body)
    return body


M = TypeVar("M", bound=BaseModel)


def _model(model: type[M], body: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ProtocolError(
            f"the answer is not a {model.__name__}: {exc.error_count()} errors"
        ) from None


def _record(body: Mapping[str, Any]) -> VerdictOut | VerdictIncomplete:
    model: type[VerdictOut | VerdictIncomplete] = (
        VerdictOut if body.get("status") == "completed" else VerdictIncomplete
    )
    return _model(model, body)


def _retry_delay(error: Exception, attempt: int) -> float:
    if isinstance(error, APIError) and error.retry_after_s is not None:
        return error.retry_after_s
    retry_after = getattr(error, "retry_after", None)
    return float(retry_after) if retry_after else min(0.5 * 2**attempt, 5.0)


class ServerSentEvents:
    """Parse server-sent event lines into progress events (one parser per stream)."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self.ended = False

    def feed(self, line: str) -> Event | None:
        """Take one line; return the event a blank line completes."""
        if line.startswith("data:"):
            self._data.append(line[5:].strip())
            return None
        if line or not self._data:
            return None  # ids, event names and keep-alive comments: the data says it all
        event = Event.model_validate_json("\n".join(self._data))
        self._data = []
        self.ended = event.type in TERMINAL_EVENTS
        return event


class JuryClient:
    """A synchronous client of one Jury server."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers=_headers(api_key),
            timeout=_timeout(timeout),
            transport=transport,
        )
        self._retries = retries

    def __enter__(self) -> JuryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def request_verdict(
        self, question: str, *, idempotency_key: str | None = None, **fields: Any
    ) -> VerdictOut:
        """Deliberate and return the verdict; retried safely under one Idempotency-Key.

        ``fields`` are those of ``POST /verdict``: ``context``, ``action``, ``options``,
        ``category``, ``panel``, ``max_rounds``, ``deadline_s``, ``exclude_models``,
        ``authored_by``, ``metadata``.
        """
        body = _body(verdict_request(question, **fields))
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return _model(VerdictOut, self._retrying("POST", "/verdict", body, headers))

    def submit_verdict(
        self, question: str, *, idempotency_key: str | None = None, **fields: Any
    ) -> VerdictAccepted:
        """Queue a verdict (202): its id at once; ``follow`` or ``get_verdict`` it later."""
        body = {**_body(verdict_request(question, **fields)), "mode": "async"}
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return _model(VerdictAccepted, self._retrying("POST", "/verdict", body, headers))

    def get_verdict(self, verdict_id: str) -> VerdictOut | VerdictIncomplete:
        """Return a recorded verdict, or the record of one that has no verdict (yet)."""
        return _record(self._send("GET", f"/verdicts/{verdict_id}"))

    def follow(self, verdict_id: str) -> Iterator[Event]:
        """Yield a verdict's progress events as they happen, until its last one."""
        try:
            with self._http.stream(
                "GET", f"/verdicts/{verdict_id}/events", headers={"Accept": "text/event-stream"}
            ) as response:
                if response.is_error:
                    response.read()
                    _parse(response)
                parser = ServerSentEvents()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
                    if parser.ended:
                        return
        except httpx.TransportError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc

    def report_outcome(
        self,
        verdict_id: str,
        correct_option: str,
        *,
        source: str = "agent",
        note: str | None = None,
    ) -> Outcome:
        """Record what turned out to be right for a verdict."""
        body = {"correct_option": correct_option, "source": source, "note": note}
        return _model(Outcome, self._send("POST", f"/verdicts/{verdict_id}/outcome", body))

    def _send(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        return _parse(response)

    def _retrying(
        self, method: str, path: str, body: Any, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        for attempt in range(self._retries + 1):
            try:
                return self._send(method, path, body, headers)
            except (TransportError, RequestInProgress) as exc:
                if attempt == self._retries:
                    raise
                time.sleep(_retry_delay(exc, attempt))
        raise AssertionError("unreachable")  # pragma: no cover


class AsyncJuryClient:
    """An asynchronous client of one Jury server (the same calls, awaited)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=_headers(api_key),
            timeout=_timeout(timeout),
            transport=transport,
        )
        self._retries = retries

    async def __aenter__(self) -> AsyncJuryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def request_verdict(
        self, question: str, *, idempotency_key: str | None = None, **fields: Any
    ) -> VerdictOut:
        """Deliberate and return the verdict; retried safely under one Idempotency-Key."""
        body = _body(verdict_request(question, **fields))
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return _model(VerdictOut, await self._retrying("POST", "/verdict", body, headers))

    async def submit_verdict(
        self, question: str, *, idempotency_key: str | None = None, **fields: Any
    ) -> VerdictAccepted:
        """Queue a verdict (202): its id at once; ``follow`` or ``get_verdict`` it later."""
        body = {**_body(verdict_request(question, **fields)), "mode": "async"}
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return _model(VerdictAccepted, await self._retrying("POST", "/verdict", body, headers))

    async def get_verdict(self, verdict_id: str) -> VerdictOut | VerdictIncomplete:
        """Return a recorded verdict, or the record of one that has no verdict (yet)."""
        return _record(await self._send("GET", f"/verdicts/{verdict_id}"))

    async def follow(self, verdict_id: str) -> AsyncIterator[Event]:
        """Yield a verdict's progress events as they happen, until its last one."""
        try:
            async with self._http.stream(
                "GET", f"/verdicts/{verdict_id}/events", headers={"Accept": "text/event-stream"}
            ) as response:
                if response.is_error:
                    await response.aread()
                    _parse(response)
                parser = ServerSentEvents()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
                    if parser.ended:
                        return
        except httpx.TransportError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc

    async def report_outcome(
        self,
        verdict_id: str,
        correct_option: str,
        *,
        source: str = "agent",
        note: str | None = None,
    ) -> Outcome:
        """Record what turned out to be right for a verdict."""
        body = {"correct_option": correct_option, "source": source, "note": note}
        return _model(Outcome, await self._send("POST", f"/verdicts/{verdict_id}/outcome", body))

    async def _send(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        return _parse(response)

    async def _retrying(
        self, method: str, path: str, body: Any, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        for attempt in range(self._retries + 1):
            try:
                return await self._send(method, path, body, headers)
            except (TransportError, RequestInProgress) as exc:
                if attempt == self._retries:
                    raise
                await anyio.sleep(_retry_delay(exc, attempt))
        raise AssertionError("unreachable")  # pragma: no cover
