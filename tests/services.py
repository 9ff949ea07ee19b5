"""The services the tests need, started when they are not running (the README's test command).

On a fresh machine ``uv run --locked --extra local pytest`` must pass on its own, the way
``.ci/run`` does it: PostgreSQL is started with its cluster's ``pg_ctlcluster``, Redis as a
daemon without persistence, and Chromium installed from Debian when ``/usr/bin/chromium`` is
missing. Each starter first probes: a service that already answers is left alone, so a test run
never restarts what another run uses. Only loopback servers are started: a remote one that does
not answer is the operator's to fix, and the fixture says so.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

LOOPBACK = ("127.0.0.1", "localhost", "::1")
START_TIMEOUT_S = 30.0
POSTGRES_CLUSTERS = Path("/etc/postgresql")
CHROMIUM = Path("/usr/bin/chromium")


class ServiceError(RuntimeError):
    """A service the tests need could not be reached or started; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """Where a service listens."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """Say whether it is on this machine (only those are started here)."""
        return self.host in LOOPBACK


def listening(endpoint: Endpoint, *, timeout_s: float = 1.0) -> bool:
    """Say whether something accepts TCP connections at ``endpoint``."""
    try:
        with closing(socket.create_connection((endpoint.host, endpoint.port), timeout_s)):
            return True
    except OSError:
        return False


def ensure_running(
    name: str,
    endpoint: Endpoint,
    start: Sequence[str],
    *,
    timeout_s: float = START_TIMEOUT_S,
    up: Callable[[Endpoint], bool] = listening,
) -> bool:
    """Start ``name`` with the command ``start`` unless it answers already; True if started.

    Raises ``ServiceError`` when it is not on loopback, the command fails, or it does not come
    up within ``timeout_s``.
    """
    if up(endpoint):
        return False
    if not endpoint.loopback:
        raise ServiceError(f"{name} at {endpoint.host}:{endpoint.port} does not answer")
    completed = subprocess.run(list(start), capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise ServiceError(
            f"starting {name} with {' '.join(start)!r} failed ({completed.returncode}): "
            f"{(completed.stderr or completed.stdout).strip()}"
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if up(endpoint):
            return True
        time.sleep(0.2)
    raise ServiceError(f"{name} did not answer at {endpoint.host}:{endpoint.port} once started")


def url_endpoint(url: str, default_port: int) -> Endpoint:
    """Return the host and port of a database or Redis URL."""
    parsed = make_url(url)
    return Endpoint(host=parsed.host or "127.0.0.1", port=parsed.port or default_port)


def postgres_start_command() -> list[str]:
    """Return the command that starts this machine's PostgreSQL cluster (Debian's wrapper)."""
    versions = sorted(POSTGRES_CLUSTERS.iterdir()) if POSTGRES_CLUSTERS.is_dir() else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        raise ServiceError("PostgreSQL is not installed here (no pg_ctlcluster, no cluster)")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "start"]


def redis_start_command(endpoint: Endpoint) -> list[str]:
    """Return the command that starts a Redis daemon at ``endpoint``, without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError("Redis is not installed here (no redis-server)")
    return [
        binary,
        "--daemonize",
        "yes",
        "--bind",
        endpoint.host,
        "--port",
        str(endpoint.port),
        "--save",
        "",
        "--appendonly",
        "no",
        # A pid file of its own: the default /var/run/redis.pid may be another server's.
        "--pidfile",
        str(Path(tempfile.gettempdir()) / f"jury-test-redis-{endpoint.port}.pid"),
    ]


def ensure_postgres(url: str) -> bool:
    """Start the PostgreSQL server of ``url`` if it is down; True if started."""
    endpoint = url_endpoint(url, 5432)
    if listening(endpoint):
        return False
    return ensure_running("PostgreSQL", endpoint, postgres_start_command())


def ensure_redis(url: str) -> bool:
    """Start the Redis server of ``url`` if it is down; True if started."""
    endpoint = url_endpoint(url, 6379)
    if listening(endpoint):
        return False
    return ensure_running("Redis", endpoint, redis_start_command(endpoint))


def ensure_chromium(path: Path = CHROMIUM) -> Path:
    """Install Debian's Chromium when ``path`` is missing (as ``.ci/run`` does); return it."""
    if path.exists():
        return path
    if shutil.which("apt-get") is None:
        raise ServiceError(f"Chromium is not installed at {path} and there is no apt-get")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        completed = subprocess.run(
            command, capture_output=True, text=True, check=False, env=environment
        )
        if completed.returncode != 0:
            raise ServiceError(f"{' '.join(command)} failed: {completed.stderr.strip()}")
    if not path.exists():
        raise ServiceError(f"apt-get installed chromium but {path} is still missing")
    return path
