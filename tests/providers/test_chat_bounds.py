"""A locally served model gets length bounds on its free-text fields; a hosted one does not."""

from __future__ import annotations

from typing import Any

from app.core.config import LocalServe, ModelSpec
from app.deliberation.answers import judge_schema, juror_schema
from app.providers.base import CompletionRequest, Message
from app.providers.chat import LOCAL_TEXT_BOUNDS, response_format


def _spec(*, local: bool) -> ModelSpec:
    serve = LocalServe(catalog="smollm2-135m", port=8471) if local else None
    return ModelSpec(
        name="juror",
        model="openai/smollm2-135m",
        family="smollm",
        structured_output="json_object_schema",
        local=serve,
    )


def _request(schema: dict[str, Any]) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message(role="user", content="Ok?"),),
        schema_name="juror_position",
        output_schema=schema,
        call_role="juror",
        round_number=1,
    )


def _sent_schema(spec: ModelSpec, schema: dict[str, Any]) -> dict[str, Any]:
    sent = response_format(spec, _request(schema))
    assert sent is not None
    result: dict[str, Any] = sent["schema"]
    return result


def test_local_juror_reasoning_is_bounded_and_labels_untouched() -> None:
    properties = _sent_schema(_spec(local=True), juror_schema(["yes", "no"]))["properties"]
    low, high = LOCAL_TEXT_BOUNDS["reasoning"]
    assert (properties["reasoning"]["minLength"], properties["reasoning"]["maxLength"]) == (
        low,
        high,
    )
    # A bare label ("no") cannot satisfy the minimum: the grammar makes the model write more.
    assert low > len("no")
    assert properties["evidence"]["maxLength"] == LOCAL_TEXT_BOUNDS["evidence"][1]
    assert properties["position"] == {"type": "string", "enum": ["yes", "no"]}


def test_local_judge_notes_are_bounded_inside_the_array() -> None:
    properties = _sent_schema(_spec(local=True), judge_schema(["yes", "no"]))["properties"]
    assert properties["disagreement"]["maxLength"] == LOCAL_TEXT_BOUNDS["disagreement"][1]
    notes = properties["dissenter_notes"]
    assert notes["items"]["properties"]["note"]["maxLength"] == LOCAL_TEXT_BOUNDS["note"][1]
    assert "maxLength" not in notes["items"]["properties"]["juror"]
    assert notes["maxItems"] >= 1


def test_a_split_panels_local_judge_gives_bounded_sides_and_no_notes() -> None:
    schema = judge_schema(["yes", "no"], ["yes", "no", "no"], ["Juror A", "Juror B"])
    properties = _sent_schema(_spec(local=True), schema)["properties"]
    assert "disagreement" not in properties
    sides = properties["sides"]
    assert sides["required"] == ["no", "yes"]
    low, high = LOCAL_TEXT_BOUNDS["sides"]
    for position in ("yes", "no"):
        assert (
            sides["properties"][position]["minLength"],
            sides["properties"][position]["maxLength"],
        ) == (low, high)
    # Each side's argument is in the sides, the dissenting one's included: no per-juror notes.
    assert properties["dissenter_notes"]["maxItems"] == 0
    juror = properties["dissenter_notes"]["items"]["properties"]["juror"]
    assert juror == {"type": "string", "enum": ["Juror A", "Juror B"]}
    # A hosted judge is asked for the same sides, unbounded, and may add notes.
    hosted = _sent_schema(_spec(local=False), schema)["properties"]
    assert "maxItems" not in hosted["dissenter_notes"]
    assert "maxLength" not in hosted["sides"]["properties"]["yes"]


def test_hosted_model_gets_the_schema_unchanged() -> None:
    schema = juror_schema(["yes", "no"])
    assert _sent_schema(_spec(local=False), schema) == schema
