"""A TCP relay on loopback that a test or a gate can freeze: a frozen database, without touching it.

Run as a process of its own (``relay(...)``): it forwards every connection to a target and
prints the port it listens on. SIGSTOP freezes it (connections stay open, and new ones are
still accepted by the kernel, but nothing answers), SIGCONT thaws it: the way a database server
that hangs looks to its clients. ``python eval/tcp_relay.py HOST PORT`` is the relay itself.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

CHUNK = 65_536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with suppress(OSError):
            writer.close()


async def _serve(target_host: str, target_port: int) -> None:
    async def forward(client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream), _pipe(upstream_reader, client))

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


@dataclass
class Relay:
    """A running relay process."""

    process: subprocess.Popen[str]
    port: int

    def freeze(self) -> None:
        """Stop answering (SIGSTOP), connections held open."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Answer again (SIGCONT)."""
        self.process.send_signal(signal.SIGCONT)


@contextmanager
def relay(target_host: str, target_port: int) -> Iterator[Relay]:
    """Run a relay to ``target_host:target_port`` and yield it; killed on exit."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__)), target_host, str(target_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield Relay(process=process, port=port)
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2])))
