"""The benchmark's processes: start, wait for, measure (CPU, RSS from /proc) and stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """Return a loopback TCP port that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """Return a process's user + system CPU seconds so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of /proc/PID/stat (utime, stime); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """Return a process's resident set and its peak (VmRSS, VmHWM), in MiB."""
    rss = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return rss, peak


def tree(pid: int) -> list[int]:
    """Return ``pid`` and its living descendants (uvicorn's workers, uv's python)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """Return the CPU seconds of a process and its descendants; a worker that exited is lost."""
    total = 0.0
    for member in tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(member)
    return total


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """Return the summed resident sets and peaks of a process and its descendants, in MiB."""
    rss = peak = 0.0
    for member in tree(pid):
        with contextlib.suppress(OSError):
            one, top = memory_mb(member)
            rss, peak = rss + one, peak + top
    return rss, peak


def load_average() -> tuple[float, float, float]:
    """Return the 1, 5 and 15-minute load averages."""
    return os.getloadavg()


@dataclass(slots=True)
class Managed:
    """A child process the benchmark started, with its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """Return the child's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Return whether the child still runs."""
        return self.process.poll() is None

    def stop(self, grace_s: float = 10.0) -> None:
        """Ask the child to stop (SIGINT, like Ctrl-C), then kill it after ``grace_s``."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def tail(self, lines: int = 20) -> str:
        """Return the end of the child's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str, argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None
) -> Managed:
    """Start ``argv`` with its output in ``log``."""
    handle = log.open("wb")
    process = subprocess.Popen(
        list(argv),
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # a Ctrl-C at the terminal reaches the bench, which stops it
    )
    handle.close()
    return Managed(name=name, process=process, log=log)


def wait_healthy(managed: Managed, url: str, *, timeout_s: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail with the child's log if it dies or never does."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not managed.alive():
                raise RuntimeError(f"{managed.name} exited:\n{managed.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError(
        f"{managed.name} not healthy at {url} in {timeout_s:.0f}s:\n{managed.tail()}"
    )


def python_module(module: str, *args: str) -> list[str]:
    """Return the argv that runs ``module`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def jury_command(*args: str) -> list[str]:
    """Return the argv of the ``jury`` console script of this environment."""
    script = Path(sys.executable).parent / "jury"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from app.cli.main import main; main()", *args]


@contextlib.contextmanager
def running(managed: Managed) -> Iterator[Managed]:
    """Stop the child when the block ends, however it ends."""
    try:
        yield managed
    finally:
        managed.stop()
