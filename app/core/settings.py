"""Process settings read from the environment (prefix ``JURY_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Importing litellm must never reach for the network: it would otherwise fetch its price map.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def default_data_dir() -> Path:
    """Return the per-user data directory that holds the default SQLite file."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "jury"


class Settings(BaseSettings):
    """Typed process settings; the panel roster lives in the YAML config, not here."""

    model_config = SettingsConfigDict(env_prefix="JURY_", extra="ignore", frozen=True)

    config: Path = Field(default=REPO_CONFIG_DIR / "jury.yaml", description="Jury YAML config.")
    database_url: str = Field(default="", description="SQLAlchemy URL; SQLite file if empty.")
    redis_url: str | None = None
    auto_migrate: bool = Field(default=True, description="Run Alembic migrations at start-up.")
    max_question_chars: int = Field(default=8_000, gt=0)
    max_context_chars: int = Field(default=200_000, gt=0)
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    require_api_keys: bool = Field(
        default=False,
        description="Refuse unauthenticated requests even before any API key exists (no local "
        "mode); lets `jury serve` bind to other interfaces than loopback.",
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long in-flight verdicts may run on at shutdown before they are "
        "interrupted (recorded as such).",
    )
    log_level: str = "INFO"
    log_json: bool = False

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
