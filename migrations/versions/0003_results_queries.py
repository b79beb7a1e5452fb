"""Indexes for GET /results, and the inserting transaction of each run for stable paging.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-21

`created_xid` is the id of the transaction that inserted the run. A results cursor carries
the snapshot its first page was read in; later pages keep only runs visible in that snapshot
(`pg_visible_in_snapshot`), so a run that commits while a client pages through (possibly with
an older id or timestamp than rows already shown) is neither slipped in nor skipped: it shows
up in the next listing. Rows that predate this migration have NULL: committed long ago.

Adding the column without a default and setting the default afterwards is instant: no
rewrite of an existing table.

`timings_ms` becomes json instead of jsonb: jsonb stores keys in its own order, and the
timings are answered in the order the steps ran (json keeps the text as written).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # json, not jsonb: jsonb reorders keys, and the timings are read back in step order.
    op.alter_column("processing_runs", "timings_ms", server_default=None)
    op.alter_column(
        "processing_runs", "timings_ms", type_=sa.JSON(), postgresql_using="timings_ms::json"
    )
    op.alter_column("processing_runs", "timings_ms", server_default="{}")
    op.execute("ALTER TABLE processing_runs ADD COLUMN created_xid xid8")
    op.execute(
        "ALTER TABLE processing_runs ALTER COLUMN created_xid SET DEFAULT pg_current_xact_id()"
    )
    # Newest first is ORDER BY created_at DESC, id DESC; each index serves one kind of filter
    # in that order, with the keyset condition (created_at, id) < (:t, :id) as its range.
    op.create_index("ix_processing_runs_created", "processing_runs", ["created_at", "id"])
    op.create_index(
        "ix_processing_runs_pipeline_created",
        "processing_runs",
        ["pipeline_id", "created_at", "id"],
    )
    # Failed runs are rare: a small partial index finds them without walking the successes.
    op.create_index(
        "ix_processing_runs_failed_created",
        "processing_runs",
        ["created_at", "id"],
        postgresql_where=sa.text("status = 'failed'"),
    )


def downgrade() -> None:
    for name in (
        "ix_processing_runs_failed_created",
        "ix_processing_runs_pipeline_created",
        "ix_processing_runs_created",
    ):
        op.drop_index(name, table_name="processing_runs")
    op.drop_column("processing_runs", "created_xid")
    op.alter_column("processing_runs", "timings_ms", server_default=None)
    op.alter_column(
        "processing_runs", "timings_ms", type_=JSONB(), postgresql_using="timings_ms::jsonb"
    )
    op.alter_column("processing_runs", "timings_ms", server_default="{}")
