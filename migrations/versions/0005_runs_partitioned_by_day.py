"""Runs partitioned by day (UTC) of created_at, boxes inside the run row, smaller rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

What changes (docs/decisions/0024-runs-partitioned-by-day.md):
- processing_runs becomes PARTITION BY RANGE (created_at): one partition a day,
  `processing_runs_pYYYYMMDD`, plus `processing_runs_default` for a run whose day has no
  partition yet (so an insert never fails for that; maintenance moves such runs into their
  day's partition). Retention drops whole days (pipeline_service/db/partitions.py).
- The boxes live in the run row (`boxes`, six numbers a box, double precision as before):
  the detections table goes, and with it its join and its two indexes. A view named
  `detections` shows them as before, read-only.
- `image_sha256` is 32 bytes (bytea) instead of 64 hex digits; `status` is an enum (4 bytes).
- Indexes: (created_at, id) primary key; per outcome (car, no car, no detection, failed)
  partial (created_at, id) and (pipeline_id, created_at, id); BRIN on id for GET by id:
  see db/models.py and db/results.py.
- idempotency_keys.run_id loses its foreign key (a partitioned table's unique key must hold
  created_at); keys expire before retention drops their run (config.py checks).

Every run is copied with its id, created_at, created_xid and boxes; the id sequence is kept.
The copy runs in the migration's transaction: the service is stopped meanwhile.

One-way: downgrade refuses (see downgrade()).
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAYS_AHEAD = 2  # the service's maintenance makes the rest (RUN_PARTITIONS_AHEAD_DAYS)

# Column order: 8-byte, then 4-byte, then variable-length columns, no alignment padding.
CREATE_RUNS = """
CREATE TABLE processing_runs (
    id bigint NOT NULL DEFAULT nextval('processing_runs_id_seq'),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_xid xid8 DEFAULT pg_current_xact_id(),
    pipeline_id integer NOT NULL
        CONSTRAINT processing_runs_pipeline_id_fkey REFERENCES pipelines (id),
    pipeline_version integer NOT NULL,
    status run_status NOT NULL,
    image_bytes integer NOT NULL,
    image_width integer,
    image_height integer,
    car_detected boolean,
    image_sha256 bytea NOT NULL,
    timings_ms json NOT NULL DEFAULT '{}',
    error text,
    boxes double precision[],
    CONSTRAINT processing_runs_pkey PRIMARY KEY (created_at, id),
    CONSTRAINT failed_has_no_car CHECK (status = 'succeeded' OR car_detected IS NULL)
) PARTITION BY RANGE (created_at)
"""
# Each run is in exactly one outcome; each outcome has its partial indexes (db/models.py).
OUTCOME_INDEXES = {
    "car": "car_detected",
    "no_car": "NOT car_detected",
    "no_detection": "status = 'succeeded' AND car_detected IS NULL",
    "failed": "status = 'failed'",
}
INDEXES = [
    "CREATE INDEX ix_processing_runs_id ON processing_runs USING brin (id) "
    "WITH (pages_per_range = 32)",
    *(
        f"CREATE INDEX ix_processing_runs_{name} ON processing_runs (created_at, id) "
        f"WHERE {predicate}"
        for name, predicate in OUTCOME_INDEXES.items()
    ),
    *(
        f"CREATE INDEX ix_processing_runs_pipeline_{name} "
        f"ON processing_runs (pipeline_id, created_at, id) WHERE {predicate}"
        for name, predicate in OUTCOME_INDEXES.items()
    ),
]

COPY_RUNS = """
INSERT INTO processing_runs (id, created_at, pipeline_id, pipeline_version, status,
                             car_detected, image_sha256, image_bytes, image_width,
                             image_height, timings_ms, error, created_xid, boxes)
SELECT r.id, r.created_at, r.pipeline_id, r.pipeline_version, r.status::run_status,
       r.car_detected, decode(r.image_sha256, 'hex'), r.image_bytes, r.image_width,
       r.image_height, r.timings_ms, r.error, r.created_xid,
       (SELECT array_agg(v ORDER BY d.id, k)
        FROM detections_0004 d,
             unnest(ARRAY[d.top_left_x, d.top_left_y, d.w, d.h, d.conf, d.label])
                 WITH ORDINALITY AS u (v, k)
        WHERE d.run_id = r.id)
FROM processing_runs_0004 r
"""

DETECTIONS_VIEW = """
CREATE VIEW detections AS
SELECT r.id AS run_id, b.n AS position,
       r.boxes[6 * b.n - 5] AS top_left_x, r.boxes[6 * b.n - 4] AS top_left_y,
       r.boxes[6 * b.n - 3] AS w, r.boxes[6 * b.n - 2] AS h, r.boxes[6 * b.n - 1] AS conf,
       r.boxes[6 * b.n]::smallint AS label
FROM processing_runs r, generate_series(1, cardinality(r.boxes) / 6) AS b (n)
"""


def partition_name(day: date) -> str:
    return f"processing_runs_p{day:%Y%m%d}"


def create_partition(day: date) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    op.execute(
        f"CREATE TABLE {partition_name(day)} PARTITION OF processing_runs "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
    )


def upgrade() -> None:
    bind = op.get_bind()
    op.execute("ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_run_id_fkey")
    op.execute("ALTER TABLE processing_runs RENAME TO processing_runs_0004")
    op.execute("ALTER INDEX processing_runs_pkey RENAME TO processing_runs_0004_pkey")
    op.execute("ALTER TABLE detections RENAME TO detections_0004")
    op.execute("CREATE TYPE run_status AS ENUM ('succeeded', 'failed')")
    op.execute(CREATE_RUNS)
    for index in INDEXES:
        op.execute(index)
    op.execute("CREATE TABLE processing_runs_default PARTITION OF processing_runs DEFAULT")
    today = datetime.now(UTC).date()
    days = {today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)}
    days |= {
        row[0]
        for row in bind.exec_driver_sql(
            "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM processing_runs_0004"
        )
    }
    for day in sorted(days):
        create_partition(day)
    op.execute(COPY_RUNS)
    op.execute("ALTER SEQUENCE processing_runs_id_seq OWNED BY processing_runs.id")
    op.execute("DROP TABLE detections_0004")
    op.execute("DROP TABLE processing_runs_0004")
    op.execute(DETECTIONS_VIEW)
    op.execute("ANALYZE processing_runs")


def downgrade() -> None:
    raise RuntimeError(
        "Migration 0005 (runs partitioned by day) is one-way: going back would squeeze every "
        "partition into one table again and bring the detections table back, for as long as "
        "that takes with the service stopped. Restore the backup taken before the upgrade "
        "instead (docs/operations.md, 'Upgrading to partitioned runs'). Nothing was changed."
    )
