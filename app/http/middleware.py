"""HTTP plumbing shared by every route: error bodies, body-size limit, request timing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import metrics
from app.core.errors import JuryError, PayloadTooLargeError


def install_error_handlers(app: FastAPI) -> None:
    """Map Jury's errors and validation errors onto stable JSON bodies."""

    @app.exception_handler(JuryError)
    async def _jury_error(_request: Request, exc: JuryError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content=exc.body(), headers=exc.headers or None
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content=validation_body(exc.errors()))


def validation_body(errors: Sequence[Any]) -> dict[str, Any]:
    """Return the 422 body for validation errors: each field and message, never the input."""
    fields = [_field_error(error) for error in errors]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return {"error": "validation_error", "detail": detail, "fields": fields}


def _field_error(error: Any) -> dict[str, str]:
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return {"field": ".".join(location) or "body", "message": message}


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
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            metrics.HTTP_LATENCY.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
