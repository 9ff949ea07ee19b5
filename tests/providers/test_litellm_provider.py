"""The litellm provider, without any network: error mapping, response formats, no stray calls."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from litellm import exceptions as llm
from pytest_socket import SocketConnectBlockedError

from app.core.config import ModelSpec
from app.providers.base import CompletionRequest, Message
from app.providers.chat import response_format as _response_format
from app.providers.errors import (
    RAW_DETAIL_CHARS,
    AuthError,
    FailureKind,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeoutError,
)
from app.providers.litellm_provider import LiteLLMProvider, _call_arguments, _map_error

MODEL = "openai/gpt-4o-mini"
PROVIDER = "openai"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"position": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["position"],
    "additionalProperties": False,
}


def _response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "https://api.openai.com/v1"))


def spec(**overrides: Any) -> ModelSpec:
    """Return a hosted juror spec."""
    values: dict[str, Any] = {"name": "gpt", "model": MODEL, "family": "openai", **overrides}
    return ModelSpec(**values)


def request() -> CompletionRequest:
    """Return a juror's structured-output request."""
    return CompletionRequest(
        messages=(Message(role="system", content="Judge."), Message(role="user", content="Ok?")),
        schema_name="juror_position",
        output_schema=SCHEMA,
        call_role="juror",
        round_number=1,
    )


# --- error mapping --------------------------------------------------------------------------

ERRORS: list[tuple[str, Callable[[], Exception], type[ProviderError]]] = [
    ("timeout", lambda: llm.Timeout("slow", MODEL, PROVIDER), ProviderTimeoutError),
    ("builtin timeout", lambda: TimeoutError("read timed out"), ProviderTimeoutError),
    (
        "rate limit",
        lambda: llm.RateLimitError("429", PROVIDER, MODEL, response=_response(429)),
        ProviderRateLimitedError,
    ),
    ("authentication", lambda: llm.AuthenticationError("401", PROVIDER, MODEL), AuthError),
    (
        "permission denied",
        lambda: llm.PermissionDeniedError("403", PROVIDER, MODEL, response=_response(403)),
        AuthError,
    ),
    ("bad request", lambda: llm.BadRequestError("400", MODEL, PROVIDER), ProviderRequestError),
    ("unknown model", lambda: llm.NotFoundError("404", MODEL, PROVIDER), ProviderRequestError),
    (
        "context window",
        lambda: llm.ContextWindowExceededError("too long", MODEL, PROVIDER),
        ProviderRequestError,
    ),
    (
        "content policy",
        lambda: llm.ContentPolicyViolationError("refused", MODEL, PROVIDER),
        ProviderRequestError,
    ),
    (
        "server error",
        lambda: llm.InternalServerError("500", PROVIDER, MODEL),
        ProviderServerError,
    ),
    (
        "unavailable",
        lambda: llm.ServiceUnavailableError("503", PROVIDER, MODEL),
        ProviderServerError,
    ),
    (
        "connection",
        lambda: llm.APIConnectionError("refused", PROVIDER, MODEL),
        ProviderServerError,
    ),
    ("anything else", lambda: RuntimeError("boom"), ProviderServerError),
]


@pytest.mark.parametrize(
    ("make", "expected"),
    [(make, expected) for _, make, expected in ERRORS],
    ids=[e[0] for e in ERRORS],
)
def test_litellm_errors_map_onto_typed_failures(
    make: Callable[[], Exception], expected: type[ProviderError]
) -> None:
    original = make()

    mapped = _map_error(original)

    assert type(mapped) is expected
    assert mapped.detail.startswith(type(original).__name__)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ProviderTimeoutError, FailureKind.TIMEOUT),
        (ProviderRateLimitedError, FailureKind.RATE_LIMITED),
        (ProviderServerError, FailureKind.PROVIDER_ERROR),
        (AuthError, FailureKind.AUTH),
        (ProviderRequestError, FailureKind.PROVIDER_ERROR),
    ],
)
def test_mapped_failures_record_their_kind(error: type[ProviderError], kind: FailureKind) -> None:
    assert error.kind == kind


def test_mapped_detail_is_bounded_for_the_hub_to_scrub_and_cut() -> None:
    mapped = _map_error(RuntimeError("x" * 5_000))

    assert len(mapped.detail) == RAW_DETAIL_CHARS


def test_mapped_detail_leaves_out_the_traceback_litellm_writes_into_a_message() -> None:
    message = (
        "OpenAIException - Invalid response object Traceback (most recent call last):\n"
        '  File "/srv/.venv/lib/python3.11/site-packages/litellm/x.py", line 691, in f\n'
        "TypeError: 'NoneType' object is not subscriptable"
    )

    mapped = _map_error(RuntimeError(message))

    assert mapped.detail == "RuntimeError: OpenAIException - Invalid response object"


# --- structured output ----------------------------------------------------------------------


def test_json_schema_mode_sends_the_strict_schema() -> None:
    assert _response_format(spec(structured_output="json_schema"), request()) == {
        "type": "json_schema",
        "json_schema": {"name": "juror_position", "schema": SCHEMA, "strict": True},
    }


def test_json_object_schema_mode_sends_the_schema_for_a_grammar() -> None:
    assert _response_format(spec(structured_output="json_object_schema"), request()) == {
        "type": "json_object",
        "schema": SCHEMA,
    }


def test_json_object_mode_asks_for_any_json() -> None:
    assert _response_format(spec(structured_output="json_object"), request()) == {
        "type": "json_object"
    }


def test_none_mode_sends_no_response_format() -> None:
    assert _response_format(spec(structured_output="none"), request()) is None
    assert "response_format" not in _call_arguments(spec(structured_output="none"), request())


def test_call_arguments_disable_litellm_retries_and_bound_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JURY_TEST_KEY", "sk-test")

    arguments = _call_arguments(spec(api_key_env="JURY_TEST_KEY", timeout_s=12), request())

    assert arguments["num_retries"] == 0
    assert arguments["timeout"] == 12
    assert arguments["api_key"] == "sk-test"
    assert arguments["model"] == MODEL
    assert arguments["messages"][1] == {"role": "user", "content": "Ok?"}


def test_local_server_gets_a_placeholder_key_not_a_real_one() -> None:
    arguments = _call_arguments(spec(api_base="http://127.0.0.1:8081/v1"), request())

    assert arguments["api_base"] == "http://127.0.0.1:8081/v1"
    assert arguments["api_key"] == "jury-local-no-key"


# --- no network in tests --------------------------------------------------------------------


# pytest-socket warns as it blocks; the suite's warnings-as-errors would turn that into the error.
BLOCKED = "A test tried to use socket.socket.connect"


def test_the_suite_blocks_connections_beyond_loopback() -> None:
    with pytest.warns(UserWarning, match=BLOCKED), pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


@pytest.mark.anyio
# litellm builds a pydantic model over a ReadOnly TypedDict on its first call; the warning it
# raises there is litellm's business, and as an error it would end the call before the socket.
@pytest.mark.filterwarnings("ignore:Item .* is using the `ReadOnly` qualifier:UserWarning")
async def test_a_stray_real_call_fails_fast_as_a_provider_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        # Resolve the API's name to a documentation address, so that whether or not this machine
        # has DNS, the call gets as far as opening a connection, which the suite blocks.
        if host == "api.openai.com":
            return real_getaddrinfo("192.0.2.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("JURY_TEST_OPENAI_KEY", "sk-test-not-a-key")
    hosted = spec(
        api_base="https://api.openai.com/v1", api_key_env="JURY_TEST_OPENAI_KEY", timeout_s=10
    )

    with (
        anyio.fail_after(30),
        pytest.warns(UserWarning, match=BLOCKED),
        pytest.raises(ProviderError) as caught,
    ):
        await LiteLLMProvider().complete(hosted, request())

    assert caught.value.kind == FailureKind.PROVIDER_ERROR
    assert any(isinstance(cause, SocketConnectBlockedError) for cause in _causes(caught.value))
