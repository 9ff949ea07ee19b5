"""The provider interface every model backend implements (litellm, scripted)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from app.core.config import ModelSpec

Role = Literal["system", "user", "assistant"]
CallRole = Literal["juror", "judge"]
CallPurpose = Literal["answer", "probe", "prior"]
"""A call's purpose: an answer; a calibrated judge's verdict probe; its content-free probe."""


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class CompletionRequest(BaseModel):
    """A structured-output chat call to one model.

    ``call_role`` and ``round_number`` describe the call for logs and metrics; real providers
    ignore them, the scripted provider uses them to pick its scripted answer. ``metadata`` is
    the verdict's caller data: the recorded provider finds its recording through it.
    """

    model_config = ConfigDict(frozen=True)

    messages: tuple[Message, ...]
    schema_name: str
    output_schema: dict[str, Any]
    call_role: CallRole
    round_number: int = Field(ge=1)
    attempt: int = Field(default=1, ge=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # A calibrated judge's verdict probe: the likeliest alternatives at each output token, and
    # a tighter token limit than the model's (the probe only needs the verdict's first token).
    top_logprobs: int = Field(default=0, ge=0, le=20)
    purpose: CallPurpose = "answer"
    max_tokens: int | None = Field(default=None, ge=1)

    def options(self) -> list[str]:
        """Return the option labels the answer must use, from the requested schema's enum."""
        field = "verdict" if self.call_role == "judge" else "position"
        options: list[str] = self.output_schema["properties"][field]["enum"]
        return options


class TokenLogprobs(BaseModel):
    """One output token with its log-probability and its likeliest alternatives'."""

    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class Completion(BaseModel):
    """A model's raw answer with its usage."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    # Only when the request asked for ``top_logprobs`` and the server returns them.
    tokens: tuple[TokenLogprobs, ...] | None = None


class Provider(Protocol):
    """Anything that can answer a completion request for a configured model."""

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Answer ``request`` with ``spec``'s model, or raise a ``ProviderError``."""
        ...
