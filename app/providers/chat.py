"""The chat request every real provider sends: messages and the structured-output format.

Shared by the litellm provider and the direct OpenAI-compatible one, so that both ask a model
exactly the same thing.
"""

from __future__ import annotations

from typing import Any

from app.core.config import ModelSpec
from app.providers.base import CompletionRequest
from app.providers.local.catalog import get_model


def chat_messages(spec: ModelSpec, request: CompletionRequest) -> list[dict[str, str]]:
    """Return the chat messages, folding the system prompt into the user turn if needed."""
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    if spec.local is None or get_model(spec.local.catalog).supports_system_role:
        return messages
    # Some local chat formats (Gemma's) silently drop system messages.
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}
    return rest


def response_format(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any] | None:
    """Ask for JSON in the most constrained form the model's server supports."""
    if spec.structured_output == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name,
                "schema": request.output_schema,
                "strict": True,
            },
        }
    if spec.structured_output == "json_object_schema":
        # llama.cpp's server: JSON mode constrained by a schema-derived grammar.
        return {"type": "json_object", "schema": request.output_schema}
    if spec.structured_output == "json_object":
        return {"type": "json_object"}
    return None
