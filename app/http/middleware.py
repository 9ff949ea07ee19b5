"""HTTP plumbing shared by every route: error bodies, body-size limit, request timing."""

from __future__ import annotations

import functools
import logging
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import metrics
from app.core.bounds import NUL_PROBLEM
from app.core.db import about
from app.core.errors import JuryError, PayloadTooLargeError
from app.core.validation import field_body, validation_body

logger = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Map Jury's errors, validation errors and Starlette's own onto ``ErrorBody`` JSON."""

    @app.exception_handler(JuryError)
    async def _jury_error(_request: Request, exc: JuryError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content=exc.body(), headers=exc.headers or None
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content=validation_body(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's 400 names nothing; bytes that are not UTF-8 are a bad body like bad JSON.
            return JSONResponse(status_code=422, content=not_utf8_body(exc.__cause__))
        # FastAPI's 400 for a body it cannot read, Starlette's 404 and 405 for unknown routes.
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": code, "detail": str(exc.detail)},
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        error = JuryError("internal error; it is logged")
        return JSONResponse(status_code=500, content=error.body())


def not_utf8_body(error: UnicodeDecodeError) -> dict[str, Any]:
    """Return the 422 body for a JSON body whose bytes are not UTF-8, naming the first bad byte."""
    return field_body("body", f"is not valid UTF-8 at byte {error.start}")


class RefuseNul:
    """Answer 422 to a path, query parameter or header holding a NUL character.

    Bodies are checked by their schemas (``app.core.bounds.RequestModel``); these parts are
    plain strings that would reach a filter or a key, and PostgreSQL cannot compare text
    holding NUL (the request would fail in the database instead).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on unless one of its parts holds a NUL."""
        field = _nul_field(scope) if scope["type"] == "http" else None
        if field is None:
            await self.app(scope, receive, send)
            return
        await JSONResponse(status_code=422, content=field_body(field, NUL_PROBLEM))(
            scope, receive, send
        )


def _nul_field(scope: Scope) -> str | None:
    if "\x00" in scope["path"]:
        return "path"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "\\u0000") or "query"
    for name, value in scope.get("headers", []):
        if b"\x00" in value:
            return bytes(name).decode("latin-1")
    return None


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, streamed bodies included."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the bytes actually received."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                exceeded = True
                raise PayloadTooLargeError(f"request body exceeds {self.max_bytes} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # FastAPI turns any error while reading the body into its own 400: drop that answer.
            if exceeded and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLargeError(
            f"request body exceeds {self.max_bytes} bytes", limit=self.max_bytes
        )
        response = JSONResponse(status_code=413, content=error.body())
        await response(scope, receive, send)


class RequestTiming:
    """Observe each request's duration by route template (never by raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and record it once the response has started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            # A refused statement is logged as the work of this request (the path names a
            # verdict's id where there is one; the query string is left out).
            with about(f"{scope['method']} {scope['path']}"):
                await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            _latency_series(scope["method"], template, status).observe(
                time.perf_counter() - started
            )


@functools.cache
def _latency_series(method: str, template: str, status: int) -> Any:
    """Return a request's latency series; looked up once (``labels`` costs ~15 us a call).

    Bounded: routes are templates (or 'unmatched'), never raw paths; methods and statuses are
    the few a server answers.
    """
    return metrics.HTTP_LATENCY.labels(method, template, str(status))
