"""The chat request every real provider sends: messages and the structured-output format.

Shared by the litellm provider and the direct OpenAI-compatible one, so that both ask a model
exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from app.core.config import ModelSpec
from app.providers.base import CompletionRequest, Message
from app.providers.local.catalog import get_model


def chat_messages(spec: ModelSpec, given: Sequence[Message]) -> list[dict[str, str]]:
    """Return the chat messages, folding the system prompt into the user turn if needed."""
    messages = [{"role": m.role, "content": m.content} for m in given]
    if spec.local is None or get_model(spec.local.catalog).supports_system_role:
        return messages
    # Some local chat formats (Gemma's) silently drop system messages.
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}
    return rest


# Length bounds on the free-text fields of a locally served model's schema, in characters. The
# server's grammar enforces them while decoding: a small model cannot answer a bare label as
# its reason (each would cost a repair call) nor ramble into ``max_tokens`` and be cut off
# mid-JSON (invalid, and slow: decoding is most of a local call).
# Decoding is most of a local call (a 0.5B model on one core: about 10 tokens/s), so the bounds
# are as tight as a sentence allows: the position is decoded before the reasoning, so a shorter
# reason costs no accuracy in the round itself.
LOCAL_TEXT_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "reasoning": (20, 160),
    "evidence": (0, 60),
    "disagreement": (15, 200),
    # Each value of a split panel's "sides" (the argument for one position).
    "sides": (15, 120),
    "note": (15, 100),
}
LOCAL_MAX_NOTES: Final = 2
# A split panel's local judge gives each side's argument ("sides"), the dissenting side's
# included, and no per-juror notes: on two cores they doubled its decoding for no new argument.
LOCAL_MAX_NOTES_WITH_SIDES: Final = 0


def text_bound(spec: ModelSpec, field: str) -> int | None:
    """Return the longest text ``field`` the server lets ``spec`` write (None: unbounded).

    A model's text stops there mid-clause: what reads it can tell a cut text from a whole one.
    """
    bounds = LOCAL_TEXT_BOUNDS.get(field) if spec.is_local else None
    return bounds[1] if bounds is not None else None


def bounded_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` with length bounds on the known free-text fields (for local models)."""
    properties = {
        name: _bounded_property(name, prop) for name, prop in schema.get("properties", {}).items()
    }
    notes = properties.get("dissenter_notes")
    if "sides" in properties and notes is not None:
        properties["dissenter_notes"] = {**notes, "maxItems": LOCAL_MAX_NOTES_WITH_SIDES}
    return {**schema, "properties": properties} if properties else schema


def _bounded_property(name: str, prop: dict[str, Any]) -> dict[str, Any]:
    """Bound one property: a known text field's length, an array's items and their fields."""
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        return {**prop, "items": bounded_schema(prop["items"]), "maxItems": LOCAL_MAX_NOTES}
    if prop.get("type") == "object" and name in LOCAL_TEXT_BOUNDS:
        # An object of free texts keyed by label ("sides"): each value gets the object's bounds.
        children = prop.get("properties", {})
        return {
            **prop,
            "properties": {key: _bounded_property(name, c) for key, c in children.items()},
        }
    bounds = LOCAL_TEXT_BOUNDS.get(name)
    if bounds is None or "enum" in prop:
        return prop
    low, high = bounds
    return {**prop, "minLength": low, "maxLength": high}


def response_format(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any] | None:
    """Ask for JSON in the most constrained form the model's server supports."""
    schema = bounded_schema(request.output_schema) if spec.is_local else request.output_schema
    if spec.structured_output == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": schema, "strict": True},
        }
    if spec.structured_output == "json_object_schema":
        # llama.cpp's server: JSON mode constrained by a schema-derived grammar.
        return {"type": "json_object", "schema": schema}
    if spec.structured_output == "json_object":
        return {"type": "json_object"}
    return None
