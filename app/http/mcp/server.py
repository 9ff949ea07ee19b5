"""Jury's MCP server on the official SDK: the one module that speaks MCP.

Five tools, each with an input and an output schema: ``request_verdict``, ``get_verdict``,
``report_outcome``, ``list_panels`` and the reviewer's ``trust_weights``. Who calls: over HTTP the
``Authorization: Bearer`` key of each request (the REST API's keys and roles); over stdio the key
``jury mcp`` read from its environment at start-up; with no key, local mode (no key exists).

Errors are MCP tool errors (``isError``) whose structured content is the REST API's error body:
``no_quorum``, ``forbidden``, ``secret_in_input``, and for bad arguments ``validation_error`` with
the fields named. Arguments are checked here before the SDK's own validation, whose messages would
echo the values sent (a secret among them) back to the client.

The SDK version pinned (2.3.0) has no server-side MCP tasks (``tasks/*`` is absent), so a long
verdict answers ``status: pending`` after the wait instead (``app.http.mcp.tools``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, Protocol

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError
from starlette.routing import BaseRoute

from app.core.errors import JuryError
from app.core.validation import validation_body
from app.http.mcp.schemas import (
    GetVerdictArgs,
    NoArgs,
    PanelsOut,
    ReportOutcomeArgs,
    RequestVerdictArgs,
    VerdictReply,
)
from app.http.mcp.tools import JuryTools, Report
from app.runtime import Runtime
from app.security.principal import Principal
from app.trust.schemas import OutcomeOut, WeightsOut

INSTRUCTIONS = (
    "Jury deliberates a judgement with a panel of models from different families and an "
    "independent judge. Call request_verdict before a high-stakes action (pass the action "
    "itself as {tool, arguments}); proceed only if the verdict approves and escalate is false. "
    "If it answers status 'pending', call get_verdict with its id."
)
AnyContext = Context[Any, Any]


class RuntimeRef:
    """The process's runtime, set once its lifespan has opened it."""

    def __init__(self) -> None:
        self._runtime: Runtime | None = None

    def set(self, runtime: Runtime | None) -> None:
        """Hand over the open runtime (None once it closes)."""
        self._runtime = runtime

    def __call__(self) -> Runtime:
        """Return the open runtime."""
        if self._runtime is None:
            raise RuntimeError("the MCP server's runtime is not open")
        return self._runtime


class Callers(Protocol):
    """How a tool call's caller is known."""

    async def principal(self, ctx: AnyContext) -> Principal:
        """Return the caller, or raise ``UnauthorizedError``."""
        ...


class BearerCallers:
    """Over HTTP: the request's ``Authorization: Bearer`` key, checked like REST's."""

    def __init__(self, runtime: RuntimeRef) -> None:
        self._runtime = runtime

    async def principal(self, ctx: AnyContext) -> Principal:
        """Authenticate the key the HTTP request carried (none: local mode)."""
        headers: Mapping[str, str] = ctx.headers or {}
        scheme, _, key = (headers.get("authorization") or "").partition(" ")
        presented = key.strip() if scheme.lower() == "bearer" and key.strip() else None
        return await self._runtime().auth.authenticate(presented)


class KeyCallers:
    """Over stdio: the one key the process was started with (none: local mode)."""

    def __init__(self, runtime: RuntimeRef, key: str | None) -> None:
        self._runtime = runtime
        self._key = key

    async def principal(self, ctx: AnyContext) -> Principal:
        """Authenticate the process's key at each call: a revoked key stops working."""
        return await self._runtime().auth.authenticate(self._key)


def build_server(runtime: RuntimeRef, callers: Callers) -> MCPServer:
    """Return the MCP server with Jury's tools; ``runtime`` is set once the lifespan opens it."""
    tools = JuryTools(runtime)
    checks: dict[str, type[BaseModel]] = {}
    server = MCPServer(
        "jury", instructions=INSTRUCTIONS, middleware=[ArgumentCheck(checks)], version="0.1.0"
    )

    async def request_verdict(ctx: AnyContext, args: RequestVerdictArgs) -> BaseModel:
        return await tools.request_verdict(await callers.principal(ctx), args, _reporter(ctx))

    async def get_verdict(ctx: AnyContext, args: GetVerdictArgs) -> BaseModel:
        return await tools.get_verdict(await callers.principal(ctx), args, _reporter(ctx))

    async def report_outcome(ctx: AnyContext, args: ReportOutcomeArgs) -> BaseModel:
        return await tools.report_outcome(await callers.principal(ctx), args)

    async def list_panels(ctx: AnyContext, args: NoArgs) -> BaseModel:
        return await tools.list_panels(await callers.principal(ctx))

    async def trust_weights(ctx: AnyContext, args: NoArgs) -> BaseModel:
        return await tools.trust_weights(await callers.principal(ctx))

    registry: tuple[tuple[str, Handler, type[BaseModel], type[BaseModel], str], ...] = (
        ("request_verdict", request_verdict, RequestVerdictArgs, VerdictReply, REQUEST_DOC),
        ("get_verdict", get_verdict, GetVerdictArgs, VerdictReply, GET_DOC),
        ("report_outcome", report_outcome, ReportOutcomeArgs, OutcomeOut, OUTCOME_DOC),
        ("list_panels", list_panels, NoArgs, PanelsOut, PANELS_DOC),
        ("trust_weights", trust_weights, NoArgs, WeightsOut, WEIGHTS_DOC),
    )
    for name, handler, arguments, output, doc in registry:
        checks[name] = arguments
        server.add_tool(
            flat_tool(handler, arguments, output),
            name=name,
            description=doc,
            structured_output=True,
        )
    return server


Handler = Callable[[AnyContext, Any], Awaitable[BaseModel]]

REQUEST_DOC = (
    "Ask the jury for a verdict before acting: the fields of POST /verdict (question, context, "
    "options, category, panel, ...) plus the action about to be taken ({tool, arguments}, judged "
    "as untrusted material). Secrets in the input are redacted before any model sees them. "
    "Answers the verdict, or status 'pending' with its id when the wait runs out (then call "
    "get_verdict). 'mode' is ignored: over MCP every verdict is recorded first and survives "
    "the client's timeout."
)
GET_DOC = "Fetch a verdict by id, waiting for it (progress notifications) if still pending."
OUTCOME_DOC = "Record what turned out to be right for a verdict (agents: their own verdicts)."
PANELS_DOC = "List the panels (jurors, families, judge) and the categories with their policies."
WEIGHTS_DOC = "Return the trust weights in force (reviewers only)."


def flat_tool(
    handler: Handler, arguments: type[BaseModel], output: type[BaseModel]
) -> Callable[..., Awaitable[CallToolResult]]:
    """Return a tool function whose parameters are the fields of ``arguments``.

    The SDK derives a tool's input schema from its function's signature; this gives that
    signature the model's fields (types, constraints, descriptions), so the schema and the
    validation come from one model.
    """

    async def tool(ctx: AnyContext, **values: Any) -> CallToolResult:
        try:
            result = await handler(ctx, arguments.model_validate(values))
        except JuryError as exc:
            return error_result(exc.body())
        return CallToolResult(
            content=[TextContent(type="text", text=result.model_dump_json(by_alias=True))],
            structured_content=result.model_dump(mode="json", by_alias=True),
        )

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("ctx", keyword, annotation=Context)]
    for name, field in arguments.model_fields.items():
        described = Field(description=field.description)
        annotation = _annotated(field.annotation, *field.metadata, described)
        default = (
            inspect.Parameter.empty
            if field.is_required()
            else field.get_default(call_default_factory=True)
        )
        parameters.append(inspect.Parameter(name, keyword, annotation=annotation, default=default))
    returns = Annotated[CallToolResult, output]
    tool.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": returns}
    return tool


def _annotated(*parts: Any) -> Any:
    """Return ``Annotated[type, *metadata]`` for parts known only at run time."""
    return Annotated.__class_getitem__(parts)  # type: ignore[attr-defined]


def error_result(body: dict[str, Any]) -> CallToolResult:
    """Return a tool error carrying the REST API's error body."""
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body, default=str))],
        structured_content=body,
        is_error=True,
    )


class ArgumentCheck:
    """Validate a Jury tool's arguments before the SDK does, answering field-named errors."""

    def __init__(self, models: Mapping[str, type[BaseModel]]) -> None:
        self._models = models

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Answer bad arguments with the fields named; pass everything else on."""
        params: Any = ctx.params
        if ctx.method == "tools/call" and isinstance(params, Mapping):
            model = self._models.get(str(params.get("name")))
            if model is not None:
                try:
                    model.model_validate(params.get("arguments") or {})
                except ValidationError as exc:
                    return error_result(validation_body(exc.errors()))
        return await call_next(ctx)


def http_routes(server: MCPServer, *, allowed_hosts: Sequence[str]) -> list[BaseRoute]:
    """Return the route that serves ``server`` over streamable HTTP at ``/mcp``.

    The SDK's DNS-rebinding guard admits the same host names as the review pages
    (``JURY_ALLOWED_HOSTS``, any port); ``*`` admits every name, as it does there.
    """
    if "*" in allowed_hosts:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    else:
        names = [f"[{name}]" if ":" in name else name for name in allowed_hosts]
        hosts = [pattern for name in names for pattern in (name, f"{name}:*")]
        origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
        security = TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)
    app = server.streamable_http_app(streamable_http_path="/mcp", transport_security=security)
    return list(app.routes)


def _reporter(ctx: AnyContext) -> Report:
    async def report(count: int, event: str) -> None:
        await ctx.report_progress(count, None, event)

    return report
