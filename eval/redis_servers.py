"""Throwaway Redis servers: a test's or a gate's own, so that freezing one disturbs nobody.

``redis_server(workdir)`` starts a ``redis-server`` on a free loopback port, without
persistence; SIGSTOP freezes it (connections stay open, commands get no answer), SIGCONT thaws
it, and started again on the same port it is a Redis that restarted empty.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from eval.perf.procs import free_port


@dataclass
class RedisServer:
    """A redis-server process of a test's own."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        """Return its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open, commands get no answer."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw it (SIGCONT)."""
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop it for good."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def redis_server(workdir: Path, port: int | None = None) -> Iterator[RedisServer]:
    """Run a throwaway redis-server on ``port`` (a free loopback one by default), without
    persistence: started again on the same port, it is a Redis that restarted empty."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = port or free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(process=process, port=port)
    try:
        _wait_until_up(server)
        yield server
    finally:
        server.stop()


def _wait_until_up(server: RedisServer, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with closing(redis.Redis.from_url(server.url, socket_timeout=0.5)) as client:
                if client.ping():
                    return
        except redis.RedisError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {server.port} did not start")
