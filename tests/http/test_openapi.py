"""The OpenAPI document says what the app answers: its error body, and where each can come."""

from __future__ import annotations

from typing import Any

import pytest

from app.http.app import create_app
from tests.builders import make_settings

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Return the app's OpenAPI document (building it opens nothing)."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('openapi') / 'jury.db'}"
    openapi: dict[str, Any] = create_app(make_settings(url)).openapi()
    return openapi


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Return every operation as (method, path, operation)."""
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def error_schema(operation: dict[str, Any], status: str) -> Any:
    """Return the JSON schema an operation documents for ``status``."""
    return operation["responses"][status]["content"]["application/json"]["schema"]


def test_the_422_documented_is_the_body_the_app_sends(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    fields = document["components"]["schemas"]["ErrorBody"]["properties"]
    assert {"error", "detail", "fields"} <= set(fields)
    with_input = [
        op for op in operations(document) if op[2].get("parameters") or "requestBody" in op[2]
    ]
    assert with_input
    for method, path, operation in with_input:
        assert error_schema(operation, "422") == ERROR_BODY, (method, path)


def test_every_route_behind_a_key_documents_401_403_and_503(document: dict[str, Any]) -> None:
    keyed = [op for op in operations(document) if op[2].get("security")]
    assert len(keyed) >= 15
    for method, path, operation in keyed:
        for status in ("401", "403", "503"):
            assert error_schema(operation, status) == ERROR_BODY, (method, path, status)


def test_every_route_with_a_body_documents_400_413_and_409(document: dict[str, Any]) -> None:
    with_body = [op for op in operations(document) if "requestBody" in op[2]]
    assert len(with_body) >= 6
    for method, path, operation in with_body:
        for status in ("400", "409", "413"):
            assert error_schema(operation, status) == ERROR_BODY, (method, path, status)


def test_the_verdict_route_documents_its_rate_limits_and_no_quorum(
    document: dict[str, Any],
) -> None:
    responses = document["paths"]["/verdict"]["post"]["responses"]

    assert "'rate_limited'" in responses["429"]["description"]
    assert "'spend_cap_exceeded'" in responses["429"]["description"]
    assert "'no_quorum'" in responses["503"]["description"]
    assert "'unavailable'" in responses["503"]["description"]
