"""Tests for the local server supervisor, using a tiny stand-in for llama-server."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from app.providers.local import supervisor as supervisor_module
from app.providers.local.catalog import LocalModel
from app.providers.local.supervisor import (
    LocalServerError,
    LocalServerPortInUseError,
    LocalServerSpec,
    LocalServerStartError,
    LocalServerSupervisor,
    default_specs,
    find_server_binary,
    server_command,
    server_environment,
)

pytestmark = pytest.mark.enable_socket

# Serves GET /health and /v1/models like llama-server, or exits at once when the alias is
# "crash". For the alias "loading" its /health answers 503 (model still loading) for ever.
FAKE_SERVER = textwrap.dedent(
    """\
    import argparse, http.server, json, os, sys
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--alias")
    parser.add_argument("--port", type=int)
    args, _ = parser.parse_known_args()
    print("fake server env OMP_WAIT_POLICY=" + os.environ.get("OMP_WAIT_POLICY", ""), flush=True)
    if args.alias == "crash":
        print("error: model failed to load", flush=True)
        sys.exit(3)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            loading = self.path == "/health" and args.alias == "loading"
            if self.path == "/health":
                body = json.dumps({"status": "loading" if loading else "ok"}).encode()
            else:
                body = json.dumps({"object": "list", "data": [{"id": args.alias}]}).encode()
            self.send_response(503 if loading else 200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
    """
)


def _free_port() -> int:
    """Return a loopback port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Provide an executable that behaves like ``llama-server``."""
    script = tmp_path / "fake-llama-server"
    script.write_text(f"#!{sys.executable}\n" + FAKE_SERVER)
    script.chmod(0o755)
    # Assembly is tested elsewhere; here any path will do.
    monkeypatch.setattr(supervisor_module, "ensure_model", _no_assembly)
    return script


def _no_assembly(model: LocalModel, cache_dir: Path | None = None) -> Path:
    """Pretend the model file is ready."""
    return Path("/nonexistent") / model.filename


def test_command_names_alias_port_and_chat_template(tmp_path: Path) -> None:
    spec = LocalServerSpec(key="gemma3-270m", alias="gemma", port=8472, n_threads=2, n_ctx=2048)
    command = server_command(spec, tmp_path / "m.gguf", Path("/opt/llama-server"))
    assert command[:3] == ["/opt/llama-server", "--model", str(tmp_path / "m.gguf")]
    joined = " ".join(command)
    assert "--alias gemma" in joined
    assert "--port 8472" in joined
    assert "--host 127.0.0.1" in joined
    assert "--no-jinja --chat-template gemma" in joined
    assert "--threads 2" in joined
    assert "--ctx-size 2048 --parallel 1" in joined
    assert "--cache-reuse" in joined
    # Gemma 3's sliding-window layers: without the full cache no prompt prefix is reused.
    assert "--swa-full" in command


def test_slots_share_the_context(tmp_path: Path) -> None:
    spec = LocalServerSpec(key="smollm2-135m", alias="s", port=8471, n_ctx=2048, n_parallel=2)
    joined = " ".join(server_command(spec, tmp_path / "m.gguf", Path("llama-server")))
    # Each slot gets the configured context: the server divides its total by the slots.
    assert "--ctx-size 4096 --parallel 2" in joined
    # A model with its own template keeps the Jinja path.
    assert "--no-jinja" not in joined
    assert "--swa-full" not in joined


def test_missing_runtime_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "SERVER_PACKAGE", "no_such_llama_package")
    with pytest.raises(LocalServerError, match="install the local extra"):
        find_server_binary()


def test_environment_is_minimal_and_passive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "secret")
    env = server_environment(LocalServerSpec(key="smollm2-135m", alias="s", port=8471))
    assert "API_KEY" not in env
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["OMP_NUM_THREADS"] == "1"


def test_default_specs_use_consecutive_ports() -> None:
    specs = default_specs(["smollm2-135m", "gemma3-270m"])
    assert [(s.alias, s.port) for s in specs] == [("smollm2-135m", 8471), ("gemma3-270m", 8472)]


def test_duplicate_ports_are_rejected() -> None:
    spec = LocalServerSpec(key="smollm2-135m", alias="a", port=8471)
    with pytest.raises(ValueError, match="unique"):
        LocalServerSupervisor([spec, spec.model_copy(update={"alias": "b"})])


def test_status_when_nothing_runs(tmp_path: Path) -> None:
    spec = LocalServerSpec(key="smollm2-135m", alias="s", port=_free_port())
    [status] = LocalServerSupervisor([spec], cache_dir=tmp_path).status()
    assert (status.healthy, status.pid, status.started_by) == (False, None, "none")


@pytest.mark.anyio
async def test_start_status_stop(fake_server: Path, tmp_path: Path) -> None:
    spec = LocalServerSpec(key="smollm2-135m", alias="juror-a", port=_free_port())
    heard: list[str] = []
    supervisor = LocalServerSupervisor(
        [spec], cache_dir=tmp_path, server_binary=fake_server, progress=heard.append
    )
    async with supervisor.running():
        assert [message.split(" ")[1] for message in heard] == ["assembling", "starting", "ready"]
        [status] = supervisor.status()
        assert status.healthy
        assert status.started_by == "this-process"
        assert status.pid is not None
        assert status.api_base == f"http://127.0.0.1:{spec.port}/v1"
        pid = status.pid
        assert "OMP_WAIT_POLICY=PASSIVE" in supervisor.log_path(spec).read_text()
    await anyio.sleep(0.1)
    assert not _alive(pid)
    assert not supervisor.run_file(spec).exists()
    assert supervisor.status()[0].healthy is False


@pytest.mark.anyio
async def test_other_supervisor_sees_jury_server_and_reuses_it(
    fake_server: Path, tmp_path: Path
) -> None:
    spec = LocalServerSpec(key="smollm2-135m", alias="juror-a", port=_free_port())
    owner = LocalServerSupervisor([spec], cache_dir=tmp_path, server_binary=fake_server)
    async with owner.running():
        heard: list[str] = []
        other = LocalServerSupervisor(
            [spec], cache_dir=tmp_path, server_binary=fake_server, progress=heard.append
        )
        assert other.status()[0].started_by == "jury"
        async with other.running():
            assert other.status()[0].healthy
            assert heard == [f"juror-a: reusing the server already on port {spec.port}"]
        # The reusing supervisor must not stop a server it did not start.
        assert owner.status()[0].healthy


@pytest.mark.anyio
async def test_crash_reports_log_tail(fake_server: Path, tmp_path: Path) -> None:
    spec = LocalServerSpec(key="smollm2-135m", alias="crash", port=_free_port())
    supervisor = LocalServerSupervisor([spec], cache_dir=tmp_path, server_binary=fake_server)
    with pytest.raises(
        LocalServerStartError, match=r"(?s)exited with code 3.*model failed to load"
    ):
        await supervisor.start()


@pytest.mark.anyio
async def test_deadline_reports_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeper = tmp_path / "sleepy-python"
    sleeper.write_text(
        f"#!{sys.executable}\nimport time\nprint('loading...', flush=True)\ntime.sleep(60)\n"
    )
    sleeper.chmod(0o755)
    monkeypatch.setattr(supervisor_module, "ensure_model", _no_assembly)
    spec = LocalServerSpec(key="smollm2-135m", alias="slow", port=_free_port())
    supervisor = LocalServerSupervisor(
        [spec], cache_dir=tmp_path, server_binary=sleeper, start_timeout_s=1.0
    )
    with pytest.raises(LocalServerStartError, match=r"(?s)not healthy after 1s.*loading"):
        await supervisor.start()
    assert supervisor.status()[0].pid is None


@pytest.mark.anyio
async def test_a_server_still_loading_is_not_healthy(fake_server: Path, tmp_path: Path) -> None:
    # /v1/models would list the alias, but /health says the model is not loaded yet.
    spec = LocalServerSpec(key="smollm2-135m", alias="loading", port=_free_port())
    supervisor = LocalServerSupervisor(
        [spec], cache_dir=tmp_path, server_binary=fake_server, start_timeout_s=1.0
    )
    with pytest.raises(LocalServerStartError, match="not healthy after 1s"):
        await supervisor.start()


@pytest.mark.anyio
async def test_port_taken_by_something_else(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        spec = LocalServerSpec(key="smollm2-135m", alias="a", port=int(listener.getsockname()[1]))
        supervisor = LocalServerSupervisor([spec], cache_dir=tmp_path, start_timeout_s=1.0)
        with pytest.raises(LocalServerPortInUseError):
            await supervisor.start()


def _alive(pid: int) -> bool:
    """Say whether a process exists (zombies reaped by the supervisor do not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.anyio
async def test_call_limit_follows_cpu_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    specs = default_specs(["smollm2-135m", "gemma3-270m"], n_threads=2)
    supervisor = LocalServerSupervisor(specs, cache_dir=tmp_path)
    assert supervisor.limiter.total_tokens == 2
    judge = LocalServerSpec(key="qwen2.5-coder-1.5b", alias="judge", port=8479, n_threads=4)
    # The judge's extra threads do not shrink the jurors' share.
    assert LocalServerSupervisor([*specs, judge], cache_dir=tmp_path).limiter.total_tokens == 2
    assert supervisor.limiter is supervisor.limiter
    assert LocalServerSupervisor(specs, max_concurrent_calls=1).limiter.total_tokens == 1
