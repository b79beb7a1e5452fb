"""Settings, read from the environment (and an optional `.env` file)."""

import os
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PG_INT_MAX = 2_147_483_647


def asyncpg_url(url: str) -> str:
    """Accept the usual `postgresql://` URL and point SQLAlchemy at the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/pipelines",
        description="PostgreSQL to use; postgresql:// and postgresql+asyncpg:// both work.",
    )
    db_pool_size: int = Field(10, ge=1, description="Connections kept open per process.")
    db_pool_pre_ping: bool = Field(
        False,
        description="Also ping each pooled connection before use (three round trips): finds "
        "connections dropped silently on the way, e.g. by a firewall. Connections the server "
        "closed (a restart) are replaced before use either way, at no cost.",
    )
    model_service_url: str = Field(
        "http://127.0.0.1:8001", description="Base URL of the model service."
    )
    model_timeout_s: float = Field(
        5.0, gt=0, description="How long one call to the model service may take (504 after)."
    )
    model_connect_retries: int = Field(
        2, ge=0, description="Retries of a refused connection to the model service."
    )
    model_retry_backoff_s: float = Field(
        0.1, ge=0, description="First pause before retrying a refused connection; doubles."
    )
    model_breaker_failures: int = Field(
        5, ge=0, description="Consecutive model failures that open the circuit (0: never)."
    )
    model_breaker_reset_s: float = Field(
        5.0, gt=0, description="How long an open circuit fails fast before one trial call."
    )
    idempotency_ttl_s: int = Field(
        86_400, ge=1, description="How long an Idempotency-Key is remembered."
    )
    shutdown_drain_s: float = Field(
        10.0, ge=0, description="At shutdown, how long to wait for runs still being written."
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Largest accepted upload (413 above)."
    )
    max_image_pixels: int = Field(
        50_000_000, ge=1, description="Largest accepted width*height, read from the header."
    )
    cpu_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Threads for image work (OpenCV releases the GIL).",
    )
    opencv_threads: int = Field(
        1,
        ge=0,
        description="cv2.setNumThreads: OpenCV's own threads inside one call. 1: requests "
        "already run in parallel, splitting one call too only adds overhead "
        "(docs/performance.md).",
    )
    log_level: str = Field("INFO", description="Level of the JSON logs on stdout.")
    gc_freeze: bool = Field(
        True,
        description="Once started, keep the startup objects out of Python's cyclic garbage "
        "collector (no 100+ ms full collections under load). Off only where apps are started "
        "many times in one process (the in-process tests).",
    )
    readiness_timeout_s: float = Field(
        2.0, gt=0, description="How long GET /readyz waits for PostgreSQL and the model service."
    )

    migrate_connect_wait_s: float = Field(
        60.0,
        ge=0,
        description="How long `python -m pipeline_service.db.migrate` keeps trying its first "
        "connection while PostgreSQL starts up (refused, or 'starting up'), then gives up.",
    )

    pipeline_admin_token: SecretStr | None = Field(
        None,
        description="Bearer token that may change pipelines; unset: changes are refused.",
    )

    @field_validator("pipeline_admin_token")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("database_url")
    @classmethod
    def _driver(cls, value: str) -> str:
        return asyncpg_url(value)


@lru_cache
def get_settings() -> Settings:
    return Settings()
