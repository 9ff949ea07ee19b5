"""Serve the config's local models for as long as the runtime is open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from app.core.config import JuryConfig, ModelSpec
from app.core.errors import ConfigError
from app.providers.local.assemble import LocalModelError
from app.providers.local.supervisor import (
    LocalServerSpec,
    LocalServerSupervisor,
    StartupProgress,
)


def served_alias(spec: ModelSpec) -> str:
    """Return the alias a local server answers to: the model string after its provider."""
    return spec.model.split("/", 1)[-1]


def local_specs(config: JuryConfig) -> list[LocalServerSpec]:
    """Return one server spec per locally served model of the config (shared by port)."""
    by_port: dict[int, LocalServerSpec] = {}
    for spec in config.models():
        if spec.local is None:
            continue
        server = LocalServerSpec(
            key=spec.local.catalog,
            alias=served_alias(spec),
            port=spec.local.port,
            n_threads=spec.local.threads,
            n_ctx=spec.local.context,
        )
        known = by_port.setdefault(server.port, server)
        if known != server:
            raise ConfigError(
                f"'{spec.name}': port {server.port} is already used by local model "
                f"'{known.key}' with other settings"
            )
    return list(by_port.values())


@asynccontextmanager
async def serve_local_models(
    config: JuryConfig, *, progress: StartupProgress | None = None
) -> AsyncIterator[anyio.CapacityLimiter | None]:
    """Start (or reuse) the local servers, yield the limiter every local call must hold."""
    specs = local_specs(config)
    if not specs:
        yield None
        return
    supervisor = LocalServerSupervisor(specs, progress=progress)
    try:
        await supervisor.start()
    except LocalModelError as exc:
        raise ConfigError(f"local models unavailable: {exc}") from exc
    try:
        yield supervisor.limiter
    finally:
        with anyio.CancelScope(shield=True):
            await supervisor.stop()


def status_table(config: JuryConfig) -> list[dict[str, object]]:
    """Return what ``jury local status`` shows for each configured local server."""
    supervisor = LocalServerSupervisor(local_specs(config))
    return [status.model_dump(mode="json") for status in supervisor.status()]
