"""A fake OpenAI-compatible upstream: valid juror and judge JSON after a configurable latency.

It answers ``POST /v1/chat/completions`` the way a structured-output model would, so that a
benchmark measures real HTTP, real litellm and the real service, with nothing but the chosen
latency on the model's side. The answer depends only on the model alias:

- a juror call (``response_format`` schema named ``juror_position``, or a ``position`` enum)
  from ``fake-a`` or ``fake-b`` takes the first option, from ``fake-c`` the last one, in every
  round: round 1 splits two to one and round 2 holds, so a 2-round panel never stops early
  and a verdict is always 3 + 3 + 1 = 7 calls;
- a judge call (schema ``judge_verdict``, or a ``verdict`` enum) takes the first option.

The server is a bare asyncio protocol with a minimal HTTP/1.1 parser (keep-alive,
``Content-Length`` bodies): it must cost next to nothing on a 2-core machine where it shares
the CPU with the service it feeds. ``GET /stats`` returns request counts; ``POST /control``
changes the latency at run time (``{"latency_ms": 50, "dist": "fixed" | "lognormal",
"sigma": 0.25}``).

    python -m eval.perf.upstream --port 18471 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

Dist = Literal["fixed", "lognormal"]
CallKind = Literal["juror", "judge"]

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_OPTIONS = ("yes", "no")


@dataclass(slots=True)
class Latency:
    """How long the fake model "thinks": fixed, or lognormal around a median."""

    median_ms: float = 50.0
    dist: Dist = "fixed"
    sigma: float = 0.25
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def draw_s(self) -> float:
        """Return one latency in seconds."""
        if self.dist == "fixed" or self.sigma <= 0:
            return self.median_ms / 1000
        return self.median_ms * math.exp(self.rng.gauss(0.0, self.sigma)) / 1000


def juror_position(model: str, options: Sequence[str]) -> str:
    """Return the position a fake juror holds: a and b the first option, c the last."""
    alias = model.rsplit("/", 1)[-1].casefold()
    if alias.endswith(("-a", "-b")):
        return options[0]
    if alias.endswith("-c"):
        return options[-1]
    digest = hashlib.sha256(alias.encode()).digest()
    return options[digest[0] % len(options)]


def call_kind(body: dict[str, Any]) -> tuple[CallKind, tuple[str, ...]]:
    """Tell a juror from a judge call and return the options it must choose from."""
    schema = _schema_of(body)
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    for key, kind in (("verdict", "judge"), ("position", "juror")):
        enum = properties.get(key, {}).get("enum") if isinstance(properties, dict) else None
        if enum:
            return kind, tuple(str(option) for option in enum)  # type: ignore[return-value]
    # No schema (plain JSON mode): the prompt says which role the call plays.
    text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    kind = "judge" if '"verdict"' in text or "judge" in str(body.get("model", "")) else "juror"
    return kind, DEFAULT_OPTIONS  # type: ignore[return-value]


def _schema_of(body: dict[str, Any]) -> Any:
    response_format = body.get("response_format") or {}
    if not isinstance(response_format, dict):
        return {}
    if "json_schema" in response_format:
        return (response_format["json_schema"] or {}).get("schema", {})
    return response_format.get("schema", {})


def answer_for(body: dict[str, Any]) -> tuple[CallKind, dict[str, Any]]:
    """Return the structured answer a fake model gives to a chat-completion request."""
    model = str(body.get("model", "fake"))
    kind, options = call_kind(body)
    if kind == "judge":
        return kind, {
            "verdict": options[0],
            "confidence": 0.8,
            # Jury requires a disagreement to name every position held: this one names all.
            "disagreement": f"The jurors split between {' and '.join(options)}: one weighed "
            "the risk differently, and the majority's case holds.",
            "dissenter_notes": [],
        }
    position = juror_position(model, options)
    return kind, {
        "position": position,
        "confidence": 0.75,
        "reasoning": f"The fake model {model} holds {position} on the merits as it read them.",
        "evidence": None,
    }


def completion(body: dict[str, Any], sequence: int) -> tuple[CallKind, bytes]:
    """Return the call's kind and an OpenAI ``chat.completion`` JSON body answering it."""
    kind, answer = answer_for(body)
    content = json.dumps(answer)
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = max(1, len(content) // 4)
    payload = {
        "id": f"chatcmpl-fake-{sequence}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model", "fake")),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return kind, json.dumps(payload).encode()


@dataclass(slots=True)
class State:
    """What every connection of one server shares."""

    latency: Latency
    served: Counter[str] = field(default_factory=Counter)
    sequence: int = 0


class FakeUpstream(asyncio.Protocol):
    """One client connection: parse requests, answer each after its latency, in order."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        # Responses go out in request order (HTTP/1.1 pipelining); each waits for its latency.
        self._queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the connection's ordered writer."""
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._writer = asyncio.get_running_loop().create_task(self._write_in_order())

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the writer."""
        self._queue.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        """Parse every complete request in the buffer."""
        self._buffer += data
        while True:
            parsed = self._parse_one()
            if parsed is None:
                return
            method, path, body = parsed
            self._handle(method, path, body)

    def _parse_one(self) -> tuple[str, str, bytes] | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                self._fail(431)
            return None
        head = bytes(self._buffer[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 2:
            self._fail(400)
            return None
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
        if length > MAX_BODY_BYTES:
            self._fail(413)
            return None
        total = end + 4 + length
        if len(self._buffer) < total:
            return None
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        return parts[0], parts[1].split("?", 1)[0], body

    def _handle(self, method: str, path: str, body: bytes) -> None:
        now = time.monotonic()
        state = self._state
        if method == "POST" and path.endswith("/chat/completions"):
            try:
                request = json.loads(body)
                state.sequence += 1
                kind, payload = completion(request, state.sequence)
            except (ValueError, TypeError, AttributeError, IndexError):
                self._queue.put_nowait((now, _response(400, b'{"error": "bad request"}')))
                return
            state.served[kind] += 1
            state.served[f"model:{request.get('model')}"] += 1
            self._queue.put_nowait((now + state.latency.draw_s(), _response(200, payload)))
        elif method == "GET" and path in ("/health", "/v1/models"):
            self._queue.put_nowait((now, _response(200, b'{"status": "ok"}')))
        elif method == "GET" and path == "/stats":
            self._queue.put_nowait((now, _response(200, json.dumps(state.served).encode())))
        elif method == "POST" and path == "/control":
            self._queue.put_nowait((now, _control(state, body)))
        else:
            self._queue.put_nowait((now, _response(404, b'{"error": "not found"}')))

    async def _write_in_order(self) -> None:
        while (item := await self._queue.get()) is not None:
            due, response = item
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._transport is None or self._transport.is_closing():
                return
            self._transport.write(response)

    def _fail(self, status: int) -> None:
        if self._transport is not None:
            self._transport.write(_response(status, b'{"error": "bad request"}', close=True))
            self._transport.close()


def _control(state: State, body: bytes) -> bytes:
    """Apply a latency change and return the latency now in force."""
    try:
        change = json.loads(body or b"{}")
        latency = state.latency
        latency.median_ms = float(change.get("latency_ms", latency.median_ms))
        latency.dist = "lognormal" if change.get("dist", latency.dist) == "lognormal" else "fixed"
        latency.sigma = float(change.get("sigma", latency.sigma))
        if change.get("reset_stats"):
            state.served.clear()
    except (ValueError, TypeError, AttributeError) as exc:
        return _response(400, json.dumps({"error": str(exc)}).encode())
    now = {"latency_ms": latency.median_ms, "dist": latency.dist, "sigma": latency.sigma}
    return _response(200, json.dumps(now).encode())


def _response(status: int, body: bytes, *, close: bool = False) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    connection = "close" if close else "keep-alive"
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: {connection}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def serve(host: str, port: int, latency: Latency) -> None:
    """Serve until cancelled."""
    state = State(latency=latency)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeUpstream(state), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake upstream from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18471)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--dist", choices=["fixed", "lognormal"], default="fixed")
    parser.add_argument("--sigma", type=float, default=0.25)
    args = parser.parse_args(argv)
    latency = Latency(median_ms=args.latency_ms, dist=args.dist, sigma=args.sigma)
    run_fast(serve(args.host, args.port, latency))


def run_fast(coroutine: Any) -> None:
    """Run a coroutine on uvloop when it is installed (uvicorn[standard] brings it)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


if __name__ == "__main__":
    main()
