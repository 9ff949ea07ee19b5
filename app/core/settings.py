"""Process settings read from the environment (prefix ``JURY_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Importing litellm must never reach for the network: it would otherwise fetch its price map.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
# The names a browser on this machine uses for it; a page fetched under any other Host name
# (a DNS rebinding attack's) is refused.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def default_data_dir() -> Path:
    """Return the per-user data directory that holds the default SQLite file."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "jury"


class Settings(BaseSettings):
    """Typed process settings; the panel roster lives in the YAML config, not here."""

    model_config = SettingsConfigDict(env_prefix="JURY_", extra="ignore", frozen=True)

    config: Path = Field(default=REPO_CONFIG_DIR / "jury.yaml", description="Jury YAML config.")
    database_url: str = Field(default="", description="SQLAlchemy URL; SQLite file if empty.")
    database_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="The longest one database statement, connection attempt or wait for a "
        "pooled connection may take (PostgreSQL: connect, command and statement timeouts; "
        "SQLite: the busy timeout) before the request answers 503.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for idempotency keys, rate limits, progress events and the queue of "
        "asynchronous verdicts, shared by every replica; in-process equivalents if unset.",
    )
    redis_timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="Socket and connect timeout of every Redis command: the longest a request "
        "waits on a Redis that is down or frozen before Jury carries on without it.",
    )
    redis_retry_after_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="After a Redis failure, how long Jury uses its in-process fallbacks before "
        "trying Redis again.",
    )
    rate_limit_per_minute: int = Field(
        default=60, ge=0, description="Verdict requests per minute per API key; 0: no limit."
    )
    idempotency_ttl_s: int = Field(
        default=86_400, gt=0, description="How long an Idempotency-Key's answer is replayed."
    )
    events_ttl_s: int = Field(
        default=86_400, gt=0, description="How long a verdict's progress events are kept."
    )
    worker_concurrency: int = Field(
        default=4, gt=0, le=256, description="Asynchronous verdicts one process runs at once."
    )
    worker_lease_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A worker's claim on an asynchronous verdict lasts this long unless renewed "
        "(every third of it); a crashed worker's verdict is taken over after it lapses.",
    )
    queue_redelivery_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="A queued job not acknowledged for this long (its worker died) is handed "
        "to another worker. Keep it longer than worker_lease_s.",
    )
    sweep_interval_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How often `jury serve` and `jury worker` look for the rows a dead process "
        "left: synchronous verdicts still running past their deadline (marked interrupted) and "
        "asynchronous jobs that may be lost (queued again).",
    )
    auto_migrate: bool = Field(default=True, description="Run Alembic migrations at start-up.")
    max_question_chars: int = Field(default=8_000, gt=0)
    max_context_chars: int = Field(default=200_000, gt=0)
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    require_api_keys: bool = Field(
        default=False,
        description="Refuse unauthenticated requests even before any API key exists (no local "
        "mode); lets `jury serve` bind to other interfaces than loopback.",
    )
    reopen_local_mode: bool = Field(
        default=False,
        description="Once any API key has existed, Jury requires a key even when every key is "
        "revoked. True (or `jury serve --reopen-local-mode`): an admin's explicit choice that a "
        "process starting with no active key runs in local mode again (loopback only).",
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long in-flight verdicts may run on at shutdown before they are "
        "interrupted (recorded as such).",
    )
    trust_cache_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a process reuses the active trust weights before reading them "
        "again (0: every verdict reads them). An approval or rollback made through this "
        "process applies at once; one made elsewhere (another replica, the CLI) within this.",
    )
    auth_cache_s: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description="How long a process reuses an API key lookup, and local mode's 'no key "
        "exists yet' (0: every request reads them). A key revoked through this process stops "
        "at once; one revoked elsewhere (another replica, the CLI) within this.",
    )
    # NoDecode: the environment gives a comma-separated list, read by the validator below.
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=LOOPBACK_HOSTS,
        description="Host names the review pages, and every keyless (local mode) request, "
        "answer to (ports aside); any other Host header is refused, which stops DNS "
        "rebinding. '*' admits every name: only behind a proxy that checks the Host itself.",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs the review pages' session cookies. Set the same value on "
        "every replica; if unset, each process draws a random one, so a restart signs "
        "every reviewer out.",
    )
    session_ttl_s: int = Field(
        default=8 * 3600,
        gt=0,
        le=7 * 86_400,
        description="How long a reviewer's sign-in lasts, from the moment of signing in.",
    )
    access_log: bool = Field(
        default=False,
        description="Log every HTTP request (uvicorn's access log). Off by default: "
        "/metrics counts requests by route and status, and a line per request costs CPU "
        "at hundreds of verdicts per second.",
    )
    mcp_wait_s: float = Field(
        default=45.0,
        ge=0,
        le=3600,
        description="How long an MCP request_verdict or get_verdict waits for the verdict "
        "before answering status 'pending' with its id: below the minute MCP clients give a "
        "tool call. The deliberation goes on; get_verdict fetches it.",
    )
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated_hosts(cls, value: object) -> object:
        """Read ``JURY_ALLOWED_HOSTS=a.example,b.example`` (names are case-insensitive)."""
        names = value.split(",") if isinstance(value, str) else value
        if isinstance(names, list | tuple):
            return tuple(str(name).strip().lower() for name in names if str(name).strip())
        return value

    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file in the user's data dir."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        path = default_data_dir() / "jury.db"
        return f"sqlite+aiosqlite:///{path}"


def normalise_database_url(url: str) -> str:
    """Map plain driver names onto the async drivers Jury uses."""
    for plain, async_driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_driver + url[len(plain) :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings, read once."""
    return Settings()
