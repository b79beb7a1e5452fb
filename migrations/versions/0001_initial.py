"""Pipelines, their steps and versions; runs and detections; change notifications.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")

# Every change to a pipeline, through the API or by hand in psql/adminer, is announced on
# this channel when its transaction commits; each service process LISTENs and drops its cache.
NOTIFY_FUNCTION = """
CREATE FUNCTION notify_pipeline_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'pipelines' THEN
        PERFORM pg_notify('pipeline_changed', COALESCE(NEW.id, OLD.id)::text);
    ELSE
        PERFORM pg_notify('pipeline_changed', COALESCE(NEW.pipeline_id, OLD.pipeline_id)::text);
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "pipeline_steps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "pipeline_id",
            sa.Integer,
            sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False, server_default="{}"),
        sa.UniqueConstraint("pipeline_id", "position"),
    )
    op.create_table(
        "pipeline_versions",
        sa.Column(
            "pipeline_id",
            sa.Integer,
            sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("snapshot", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "processing_runs",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("pipeline_id", sa.Integer, sa.ForeignKey("pipelines.id"), nullable=False),
        sa.Column("pipeline_version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("car_detected", sa.Boolean),
        sa.Column("image_sha256", sa.Text, nullable=False),
        sa.Column("image_bytes", sa.Integer, nullable=False),
        sa.Column("image_width", sa.Integer),
        sa.Column("image_height", sa.Integer),
        sa.Column("timings_ms", JSONB, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name="status_known"),
    )
    op.create_table(
        "detections",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "run_id",
            sa.BigInteger,
            sa.ForeignKey("processing_runs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("top_left_x", sa.Float, nullable=False),
        sa.Column("top_left_y", sa.Float, nullable=False),
        sa.Column("w", sa.Float, nullable=False),
        sa.Column("h", sa.Float, nullable=False),
        sa.Column("conf", sa.Float, nullable=False),
        sa.Column("label", sa.SmallInteger, nullable=False),
    )
    op.execute(NOTIFY_FUNCTION)
    for table in ("pipelines", "pipeline_steps"):
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION notify_pipeline_changed()"
        )


def downgrade() -> None:
    for table in ("pipelines", "pipeline_steps"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS notify_pipeline_changed()")
    for table in (
        "detections",
        "processing_runs",
        "pipeline_versions",
        "pipeline_steps",
        "pipelines",
    ):
        op.drop_table(table)
