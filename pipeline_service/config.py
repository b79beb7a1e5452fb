"""Settings, read from the environment (and an optional `.env` file)."""

import os
from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from service_kit.settings import ServiceSettings

PG_INT_MAX = 2_147_483_647


def asyncpg_url(url: str) -> str:
    """Accept the usual `postgresql://` URL and point SQLAlchemy at the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/pipelines",
        description="PostgreSQL to use; postgresql:// and postgresql+asyncpg:// both work.",
    )
    listen_database_url: str | None = Field(
        None,
        description="PostgreSQL for the one LISTEN connection per process that hears pipeline "
        "changes. It must reach PostgreSQL itself: a pooler in transaction mode (PgBouncer) "
        "cannot hold a LISTEN. Default: DATABASE_URL.",
    )
    db_pool_size: int = Field(10, ge=1, description="Connections kept open per process.")
    db_max_overflow: int | None = Field(
        None,
        ge=0,
        description="Connections a process may open beyond DB_POOL_SIZE in a burst (closed "
        "again once returned). Default: DB_POOL_SIZE. PostgreSQL must allow replicas x workers "
        "x (DB_POOL_SIZE + DB_MAX_OVERFLOW + 1 listener) connections (docs/scaling.md).",
    )
    db_transaction_pooler: bool = Field(
        False,
        description="DATABASE_URL is a pooler in transaction mode (PgBouncer pool_mode="
        "transaction): statements are not kept prepared on a server connection (asyncpg's and "
        "SQLAlchemy's statement caches off, so asyncpg sends each as an unnamed statement, "
        "parsed and executed in one message sequence). Costs a round trip per statement "
        "(docs/decisions/0022-pgbouncer-transaction-mode.md).",
    )
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
        2, ge=0, description="Retries (with backoff) of a connection the model service refused."
    )
    model_retry_backoff_s: float = Field(
        0.1,
        ge=0,
        description="First pause before retrying a refused connection; doubles, with jitter, "
        "at most 2 s.",
    )
    model_breaker_failures: int = Field(
        5, ge=0, description="Consecutive model failures that open the circuit (0: never)."
    )
    model_breaker_reset_s: float = Field(
        5.0, gt=0, description="How long an open circuit fails fast before one trial call."
    )
    idempotency_ttl_s: int = Field(
        86_400,
        ge=1,
        description="How long an Idempotency-Key is remembered. Must be shorter than "
        "RESULTS_RETENTION_DAYS when that is set: a key must not outlive its run.",
    )
    shutdown_drain_s: float = Field(
        10.0, ge=0, description="At shutdown, how long to wait for runs still being written."
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1,
        description="Largest accepted upload: a larger one gets 413 without being read.",
    )
    admit_image_requests: int = Field(
        4,
        ge=1,
        description="Image requests (/process_image, /pipelines/preview) one worker process "
        "works on at once; more are answered 503 `overloaded` with Retry-After at once, before "
        "their body is read, and their connection is read again only after Retry-After. Chosen "
        "from the benchmark's overload row against the mock model, which answers in ~3 ms; with "
        "a slower model raise it to about the req/s one worker should reach x the seconds one "
        "request takes (docs/decisions/0020-admission-limit.md).",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A request's headers must arrive within this many seconds of the "
        "connection opening (or of the request's first byte on a kept-alive one): 408 and "
        "closed after (slowloris). Needs the protocol uvicorn is started with: --http "
        "pipeline_service.http_protocol:HeaderTimeoutProtocol.",
    )
    request_body_timeout_s: float = Field(
        60.0,
        gt=0,
        description="A request body must arrive within this many seconds of its headers "
        "(408 after): a client trickling an upload cannot hold a slot forever.",
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (comma-separated, e.g. https://console.example.com) whose pages "
        "may call this API from a browser. Empty (the default): no CORS headers at all, so "
        "browsers allow no cross-origin calls.",
    )
    max_header_bytes: int = Field(
        8192,
        ge=1024,
        description="Largest request headers (all of them, names and values) accepted (431 "
        "above). uvicorn refuses far larger ones itself with a bare 400.",
    )
    max_image_pixels: int = Field(
        50_000_000,
        ge=1,
        description="Largest accepted width x height, read from the image header before any "
        "decode (413 above).",
    )
    max_pixels_per_byte: int = Field(
        1000,
        ge=1,
        description="An image over PIXELS_PER_BYTE_FROM pixels may declare at most this many "
        "pixels per byte of its file (415 above): a tiny file declaring a huge image would "
        "cost a full decode. Real images measured at most ~310 (a uniform PNG), docs/api.md.",
    )
    pixels_per_byte_from: int = Field(
        2_073_600,
        ge=0,
        description="Images up to this many pixels (1920x1080) skip MAX_PIXELS_PER_BYTE.",
    )
    pipeline_memory_budget_bytes: int = Field(
        256 * 2**20,
        ge=1,
        description="Largest image (or base64 payload) a pipeline definition may produce at "
        "any step, estimated when it is saved or previewed (422 above). Before the first "
        "resize or crop the image counts at MAX_IMAGE_PIXELS: 143 MiB for the default 50 MP "
        "in colour (docs/api.md, Memory).",
    )
    max_jpeg_scans: int = Field(
        100,
        ge=1,
        description="Most scans a progressive JPEG may have (415 above): each is another pass "
        "over the whole image; standard encoders write about 10.",
    )
    cpu_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Threads for image work (OpenCV releases the GIL).",
    )
    image_thread_nice: int = Field(
        5,
        ge=0,
        le=19,
        description="Nice value of the image threads (0: as the event loop). Higher: when the "
        "cores are busy, the event loop (health probes, refusals, model calls, run writes) goes "
        "first and the image work takes what is left.",
    )
    opencv_threads: int = Field(
        1,
        ge=0,
        description="cv2.setNumThreads: OpenCV's own threads inside one call. 1: requests "
        "already run in parallel, splitting one call too only adds overhead "
        "(docs/performance.md).",
    )
    readiness_timeout_s: float = Field(
        2.0,
        gt=0,
        description="How long a readiness check waits for PostgreSQL and the model "
        "service before it calls them down.",
    )
    readiness_interval_s: float = Field(
        1.0,
        gt=0,
        description="How often the readiness checks run, in a thread of their own; GET /readyz "
        "answers the latest at once, so a busy dependency never makes the probe wait.",
    )

    migrate_connect_wait_s: float = Field(
        60.0,
        ge=0,
        description="How long `python -m pipeline_service.db.migrate` keeps trying its first "
        "connection while PostgreSQL starts up (refused, or 'starting up'), one line every 5 s, "
        "then stops with a sentence naming host, port and the last error.",
    )

    results_retention_days: int = Field(
        0,
        ge=0,
        description="Keep runs at least this many whole days (UTC), at most one more; older "
        "days are dropped a partition at a time. 0: keep every run.",
    )
    run_partitions_ahead_days: int = Field(
        3,
        ge=1,
        le=60,
        description="Day partitions of processing_runs made ahead of today, so inserts find "
        "theirs even if maintenance cannot run for that long.",
    )
    partition_maintenance_s: float = Field(
        600.0,
        gt=0,
        description="How often a process checks the day partitions (ahead, expired); one "
        "replica at a time does the work (an advisory lock).",
    )

    pipeline_admin_token: SecretStr | None = Field(
        None,
        description="Bearer token that may create, change and delete pipelines (compared in "
        "constant time); unset or blank: every change is refused (403).",
    )

    @field_validator("pipeline_admin_token")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("database_url", "listen_database_url")
    @classmethod
    def _driver(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else asyncpg_url(value)

    @model_validator(mode="after")
    def _keys_expire_before_their_runs(self) -> "Settings":
        retention_s = self.results_retention_days * 86_400
        if retention_s and self.idempotency_ttl_s >= retention_s:
            raise ValueError(
                f"IDEMPOTENCY_TTL_S ({self.idempotency_ttl_s}) must be shorter than "
                f"RESULTS_RETENTION_DAYS ({self.results_retention_days} days): a key must not "
                "outlive the run it answers"
            )
        return self

    @property
    def listen_url(self) -> str:
        return self.listen_database_url or self.database_url

    @property
    def max_overflow(self) -> int:
        return self.db_pool_size if self.db_max_overflow is None else self.db_max_overflow


@lru_cache
def get_settings() -> Settings:
    return Settings()
