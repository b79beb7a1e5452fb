"""Versions kept by the database itself; pipeline names unique among active pipelines.

Every committed change of a pipeline's definition (name, description, steps), whether made
through the API or by hand in psql/adminer, bumps `pipelines.version` once and stores the
new definition in `pipeline_versions`. Deferred triggers do it at commit time, once per
transaction: the function compares the live definition with the snapshot of the current
version and bumps only when they differ, so the API (which calls the same function itself
to learn the new version) never causes a double bump.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SNAPSHOT_FUNCTION = """
CREATE FUNCTION pipeline_snapshot(pid integer) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'name', p.name,
        'description', p.description,
        'steps', COALESCE(
            (SELECT jsonb_agg(jsonb_build_object('type', s.type, 'params', s.params)
                              ORDER BY s.position)
             FROM pipeline_steps s WHERE s.pipeline_id = p.id),
            '[]'::jsonb))
    FROM pipelines p WHERE p.id = pid
$$;
"""

# Returns the version that describes the pipeline as it is now in this transaction.
SYNC_FUNCTION = """
CREATE FUNCTION sync_pipeline_version(pid integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    current_version integer;
    stored jsonb;
    fresh jsonb;
    next_version integer;
BEGIN
    -- One writer per pipeline at a time: concurrent changes get consecutive versions.
    SELECT version INTO current_version FROM pipelines WHERE id = pid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;  -- the pipeline row itself was deleted
    END IF;
    fresh := pipeline_snapshot(pid);
    SELECT snapshot INTO stored FROM pipeline_versions
    WHERE pipeline_id = pid AND version = current_version;
    IF NOT FOUND THEN
        INSERT INTO pipeline_versions (pipeline_id, version, snapshot)
        VALUES (pid, current_version, fresh);
        RETURN current_version;
    END IF;
    IF stored = fresh THEN
        RETURN current_version;
    END IF;
    SELECT GREATEST(current_version, COALESCE(max(version), 0)) + 1 INTO next_version
    FROM pipeline_versions WHERE pipeline_id = pid;
    UPDATE pipelines SET version = next_version, updated_at = now() WHERE id = pid;
    INSERT INTO pipeline_versions (pipeline_id, version, snapshot)
    VALUES (pid, next_version, fresh);
    RETURN next_version;
END $$;
"""

TRIGGER_FUNCTION = """
CREATE FUNCTION pipeline_version_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'pipelines' THEN
        PERFORM sync_pipeline_version(NEW.id);
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.pipeline_id <> NEW.pipeline_id THEN
        PERFORM sync_pipeline_version(OLD.pipeline_id);  -- a step moved to another pipeline
    END IF;
    PERFORM sync_pipeline_version(COALESCE(NEW.pipeline_id, OLD.pipeline_id));
    RETURN NULL;
END $$;
"""

TRIGGERS = [
    """
    CREATE CONSTRAINT TRIGGER pipeline_steps_version
        AFTER INSERT OR UPDATE OR DELETE ON pipeline_steps
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION pipeline_version_on_change()
    """,
    """
    CREATE CONSTRAINT TRIGGER pipelines_version
        AFTER INSERT OR UPDATE OF name, description, version ON pipelines
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION pipeline_version_on_change()
    """,
]


def upgrade() -> None:
    # A deleted (inactive) pipeline gives its name back; runs still reference it by id.
    op.drop_constraint("pipelines_name_key", "pipelines", type_="unique")
    op.execute("CREATE UNIQUE INDEX pipelines_active_name_key ON pipelines (name) WHERE is_active")
    op.execute(SNAPSHOT_FUNCTION)
    op.execute(SYNC_FUNCTION)
    op.execute(TRIGGER_FUNCTION)
    for trigger in TRIGGERS:
        op.execute(trigger)
    op.execute("SELECT sync_pipeline_version(id) FROM pipelines")  # existing rows get a snapshot


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS pipelines_version ON pipelines")
    op.execute("DROP TRIGGER IF EXISTS pipeline_steps_version ON pipeline_steps")
    op.execute("DROP FUNCTION IF EXISTS pipeline_version_on_change()")
    op.execute("DROP FUNCTION IF EXISTS sync_pipeline_version(integer)")
    op.execute("DROP FUNCTION IF EXISTS pipeline_snapshot(integer)")
    op.execute("DROP INDEX IF EXISTS pipelines_active_name_key")
    op.create_unique_constraint("pipelines_name_key", "pipelines", ["name"])
