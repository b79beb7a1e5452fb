"""The schema, as SQLAlchemy tables. Alembic migrations are the only way it changes."""

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "xid8"


# PostgreSQL's own names for what it names itself (`pipeline_steps_pipeline_id_position_key`,
# `detections_run_id_fkey`, `pipelines_pkey`), which are the names the migrations left in the
# database, and SQLAlchemy's default for indexes (`ix_detections_run_id`); a name given
# explicitly is kept as given. No entry for check constraints: one needs the given name in it,
# and Alembic applies this convention to the migrations too (target_metadata), so it would
# rename 0001's `status_known` in new databases only. tests/db/test_models_match_migrations.py
# checks the names against a migrated database, and that the convention renames nothing.
NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ix": "ix_%(column_0_label)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {dict[str, Any]: JSONB, list[Any]: JSONB}


class Pipeline(Base):
    __tablename__ = "pipelines"
    # Names are unique among active pipelines; a deleted one gives its name back (0002).
    __table_args__ = (
        Index("pipelines_active_name_key", "name", unique=True, postgresql_where=text("is_active")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    # Bumped by the database itself whenever the definition changes (migration 0002).
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PipelineStep(Base):
    __tablename__ = "pipeline_steps"
    __table_args__ = (UniqueConstraint("pipeline_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(server_default="{}")


class PipelineVersion(Base):
    """A frozen copy of each definition, so every run can name what produced it."""

    __tablename__ = "pipeline_versions"

    pipeline_id: Mapped[int] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProcessingRun(Base):
    __tablename__ = "processing_runs"
    __table_args__ = (
        CheckConstraint("status IN ('succeeded', 'failed')", name="status_known"),
        # GET /results: newest first, by filter (migration 0003)
        Index("ix_processing_runs_created", "created_at", "id"),
        Index("ix_processing_runs_pipeline_created", "pipeline_id", "created_at", "id"),
        Index(
            "ix_processing_runs_failed_created",
            "created_at",
            "id",
            postgresql_where=text("status = 'failed'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    pipeline_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    car_detected: Mapped[bool | None] = mapped_column(Boolean)
    image_sha256: Mapped[str] = mapped_column(Text)
    image_bytes: Mapped[int] = mapped_column(Integer)
    image_width: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    # json, not jsonb: keeps the keys in step order (migration 0003)
    timings_ms: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The inserting transaction, for results paging pinned to a snapshot (migration 0003).
    created_xid: Mapped[int | None] = mapped_column(Xid8, server_default=func.pg_current_xact_id())


class Detection(Base):
    __tablename__ = "detections"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("processing_runs.id", ondelete="CASCADE"), index=True
    )
    top_left_x: Mapped[float] = mapped_column(Float)
    top_left_y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    conf: Mapped[float] = mapped_column(Float)
    label: Mapped[int] = mapped_column(SmallInteger)


class IdempotencyKey(Base):
    """An Idempotency-Key bound to the succeeded run it produced, until it expires."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(Integer)
    request_sha256: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int] = mapped_column(ForeignKey("processing_runs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("idempotency_keys_expires_at", "expires_at"),)
