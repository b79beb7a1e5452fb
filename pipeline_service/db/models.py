"""The schema, as SQLAlchemy tables. Alembic migrations are the only way it changes."""

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, JSONB
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


RUN_STATUS = Enum("succeeded", "failed", name="run_status")
# The outcomes a run can have, each with partial indexes of its own: every run is in exactly
# one. GET /results reads each outcome its filters allow newest first and merges them
# (db/results.py). One index led by (status, car_detected) instead was twice the size: its
# leaf pages split half full, as runs of each outcome arrive interleaved (decision 0025).
OUTCOME_INDEXES = {
    "car": "car_detected",
    "no_car": "NOT car_detected",
    "no_detection": "status = 'succeeded' AND car_detected IS NULL",
    "failed": "status = 'failed'",
}


def _outcome_indexes() -> list[Index]:
    indexes = []
    for name, predicate in OUTCOME_INDEXES.items():
        where = text(predicate)
        indexes.append(
            Index(f"ix_processing_runs_{name}", "created_at", "id", postgresql_where=where)
        )
        indexes.append(
            Index(
                f"ix_processing_runs_pipeline_{name}",
                "pipeline_id",
                "created_at",
                "id",
                postgresql_where=where,
            )
        )
    return indexes


class ProcessingRun(Base):
    """One row per run, partitioned by day of `created_at` (UTC), boxes inside the row
    (migration 0005, docs/decisions/0024-runs-partitioned-by-day.md). The partitions
    (`processing_runs_pYYYYMMDD` and `processing_runs_default`) are made and dropped at run
    time by pipeline_service/db/partitions.py, so they are not described here."""

    __tablename__ = "processing_runs"
    __table_args__ = (
        # A unique key of a partitioned table must hold the partition key. (created_at, id)
        # also serves the listings without an outcome filter, newest first.
        PrimaryKeyConstraint("created_at", "id", name="processing_runs_pkey"),
        CheckConstraint("status = 'succeeded' OR car_detected IS NULL", name="failed_has_no_car"),
        # GET /results/{id}: ids grow with the rows' place in each partition, so a BRIN index
        # (a few pages a partition) finds a run's block range; ids come from one sequence, so
        # they are unique without a unique index of their own.
        Index(
            "ix_processing_runs_id",
            "id",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 32},
        ),
        *_outcome_indexes(),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    # Columns in the table's order (migration 0005): 8-byte ones, 4-byte ones, then the rest,
    # so that no byte goes to alignment.
    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The inserting transaction, for results paging pinned to a snapshot (migration 0003).
    created_xid: Mapped[int | None] = mapped_column(Xid8, server_default=func.pg_current_xact_id())
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    pipeline_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(RUN_STATUS)
    image_bytes: Mapped[int] = mapped_column(Integer)
    image_width: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    car_detected: Mapped[bool | None] = mapped_column(Boolean)
    image_sha256: Mapped[bytes] = mapped_column(LargeBinary)  # 32 bytes, not 64 hex digits
    # json, not jsonb: keeps the keys in step order (migration 0003)
    timings_ms: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    # Every box as six numbers in a row: top_left_x, top_left_y, w, h, conf, label; NULL when
    # there is none. Replaces the detections table (a view of that name reads them).
    boxes: Mapped[list[float] | None] = mapped_column(ARRAY(DOUBLE_PRECISION))


class IdempotencyKey(Base):
    """An Idempotency-Key bound to the succeeded run it produced, until it expires."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(Integer)
    request_sha256: Mapped[str] = mapped_column(Text)
    # No foreign key: runs are partitioned (their key is (id, created_at)). A key expires
    # (IDEMPOTENCY_TTL_S) before retention drops its run: config.py refuses the opposite.
    run_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("idempotency_keys_expires_at", "expires_at"),)
