"""Tests for assembling model files from multi-part distributions, on small fake data."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from app.providers.local import assemble
from app.providers.local.assemble import (
    ModelHashMismatchError,
    ModelNotInstalledError,
    ensure_model,
    locate_part,
    marker_path,
    model_cache_dir,
)
from app.providers.local.catalog import LocalModel, ModelPart

CHUNKS = [b"alpha-" * 1000, b"bravo-" * 700, b"charlie"]


def _model(chunks: list[bytes], *, digest_of: list[bytes] | None = None) -> LocalModel:
    """Build a catalogue entry for parts ``fakemodel-part{n}`` holding ``chunks``."""
    joined = b"".join(digest_of if digest_of is not None else chunks)
    return LocalModel(
        key="fake",
        family="qwen",
        title="fake",
        filename="fake.gguf",
        parts=tuple(
            ModelPart(
                distribution=f"fakemodel-part{i}",
                path=f"fakemodel_part{i}/data/part{i:02d}.bin",
                size=len(c),
            )
            for i, c in enumerate(chunks, start=1)
        ),
        sha256=hashlib.sha256(joined).hexdigest(),
        size=len(joined),
    )


def _install_fake_distributions(site: Path, chunks: list[bytes]) -> None:
    """Write dist-info metadata and data files the way a wheel install would."""
    for index, chunk in enumerate(chunks, start=1):
        package = f"fakemodel_part{index}"
        data = site / package / "data" / f"part{index:02d}.bin"
        data.parent.mkdir(parents=True)
        data.write_bytes(chunk)
        info = site / f"{package}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: fakemodel-part{index}\nVersion: 0.1.0\n"
        )
        (info / "RECORD").write_text(
            f"{package}/data/part{index:02d}.bin,,\n{package}-0.1.0.dist-info/RECORD,,\n"
        )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Provide an importable site directory holding the fake part distributions."""
    directory = tmp_path / "site"
    directory.mkdir()
    _install_fake_distributions(directory, CHUNKS)
    monkeypatch.syspath_prepend(str(directory))
    return directory


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """Provide an empty model cache directory."""
    return tmp_path / "cache"


def test_locate_part_uses_distribution_record(site: Path) -> None:
    part = _model(CHUNKS).parts[1]
    assert locate_part(part) == site / "fakemodel_part2" / "data" / "part02.bin"


def test_parts_are_joined_in_catalogue_order(site: Path, cache: Path) -> None:
    path = ensure_model(_model(CHUNKS), cache)
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert marker_path(path).is_file()


def test_wrong_order_fails_hash_and_leaves_nothing(site: Path, cache: Path) -> None:
    model = _model(CHUNKS, digest_of=[CHUNKS[1], CHUNKS[0], CHUNKS[2]])
    with pytest.raises(ModelHashMismatchError, match="sha256"):
        ensure_model(model, cache)
    assert sorted(p.name for p in cache.iterdir()) == [".fake.gguf.lock"]


def test_missing_distribution_raises_not_installed(cache: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="uv sync --extra local"):
        ensure_model(_model(CHUNKS), cache)


def test_part_with_wrong_size_is_reported(site: Path, cache: Path) -> None:
    (site / "fakemodel_part3" / "data" / "part03.bin").write_bytes(b"short")
    with pytest.raises(ModelHashMismatchError, match="fakemodel-part3"):
        ensure_model(_model(CHUNKS), cache)


def test_partial_file_is_rebuilt(site: Path, cache: Path) -> None:
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"".join(CHUNKS)[:100])
    assert ensure_model(_model(CHUNKS), cache).read_bytes() == b"".join(CHUNKS)


def test_corrupt_file_of_right_size_is_rebuilt(site: Path, cache: Path) -> None:
    cache.mkdir()
    good = b"".join(CHUNKS)
    (cache / "fake.gguf").write_bytes(b"x" * len(good))
    assert ensure_model(_model(CHUNKS), cache).read_bytes() == good


def test_leftover_temp_files_are_removed(site: Path, cache: Path) -> None:
    cache.mkdir()
    leftover = cache / ".fake.gguf.abc123.tmp"
    leftover.write_bytes(b"half")
    ensure_model(_model(CHUNKS), cache)
    assert not leftover.exists()


def test_valid_unmarked_file_is_adopted_without_copying(site: Path, cache: Path) -> None:
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"".join(CHUNKS))
    ensure_model(_model(CHUNKS), cache, locate=_fail_locate)
    assert marker_path(cache / "fake.gguf").is_file()


def test_marker_fast_path_skips_hashing(
    site: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(CHUNKS)
    ensure_model(model, cache)
    monkeypatch.setattr(assemble, "sha256_file", _fail_hash)
    assert ensure_model(model, cache, locate=_fail_locate) == cache / "fake.gguf"


def test_file_changed_after_marker_is_rechecked(site: Path, cache: Path) -> None:
    model = _model(CHUNKS)
    path = ensure_model(model, cache)
    good = path.read_bytes()
    path.write_bytes(b"y" * len(good))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ensure_model(model, cache).read_bytes() == good


def test_cache_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JURY_MODEL_CACHE", str(tmp_path / "models"))
    assert model_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("JURY_MODEL_CACHE")
    assert model_cache_dir() == Path("~/.cache/jury/models").expanduser()


def _fail_locate(part: ModelPart) -> Path:
    """Stand in for the part locator where no copying may happen."""
    raise AssertionError(f"unexpected lookup of {part.distribution}")


def _fail_hash(path: Path) -> str:
    """Stand in for hashing where the marker must make it unnecessary."""
    raise AssertionError(f"unexpected hash of {path}")
