"""The SQLAlchemy models (pipeline_service/db/models.py) describe the database the migrations
build: Alembic's autogenerate comparison against the test database migrated to head finds
nothing to do, and every constraint and index is named in the models as it is in the
database (the naming convention, or a name pinned where it is declared)."""

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, Column, Index, Integer, MetaData, Table, text
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from pipeline_service.config import asyncpg_url
from pipeline_service.db.models import Base, Xid8
from tests.fixtures.database import fresh_database

MIGRATIONS_ONLY = {"alembic_version"}  # Alembic's own bookkeeping, no model of it
# The day partitions of processing_runs (and its default one) are made and dropped at run time
# by pipeline_service/db/partitions.py, not described by the models: the partitioned table
# itself is, and each partition gets its indexes and constraints from it.
RUN_PARTITION = re.compile(r"processing_runs_(p\d{8}|default)")


def _described_by_models(table: str) -> bool:
    return table not in MIGRATIONS_ONLY and not RUN_PARTITION.fullmatch(table)


def _json_default_differs(
    _context: MigrationContext,
    _inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_default: str | None,
    _metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic compares server defaults by asking PostgreSQL `'{}'::json = '{}'`, and json
    has no `=`: compare the text instead ("'{}'::json" in the database, "{}" in the model).
    None: Alembic's own comparison for every other type."""
    if not isinstance(metadata_column.type, JSON):
        return None
    return _json_literal(inspected_default) != _json_literal(rendered_metadata_default)


def _json_literal(default: str | None) -> str:
    return re.sub(r"^'(.*)'(::jsonb?)?$", r"\1", default or "")


def _differences(metadata: MetaData) -> Callable[[Connection], list[Any]]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": _json_default_differs,
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or _described_by_models(name)
                ),
            },
        )
        return compare_metadata(context, metadata)

    return compare


def _names(connection: Connection) -> set[tuple[str, str]]:
    """(table, name) of every constraint and of every index that backs none."""
    rows = connection.execute(
        text(
            """
            SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint c
            JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE n.nspname = 'public' AND c.contype IN ('p', 'f', 'u', 'c')
            UNION
            SELECT i.tablename, i.indexname FROM pg_indexes i
            WHERE i.schemaname = 'public'
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """
        )
    )
    return {(table, name) for table, name in rows if _described_by_models(table)}


async def _on_database(database_url: str, work: Callable[[Connection], Any]) -> Any:
    engine = create_async_engine(asyncpg_url(database_url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


@pytest.fixture
def xid8_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reflection reads created_xid as xid8, the models' type, not as an unknown one."""
    monkeypatch.setitem(PGDialect.ischema_names, "xid8", Xid8)


@pytest.mark.usefixtures("xid8_known")
async def test_the_models_describe_the_migrated_database(database_url: str) -> None:
    assert await _on_database(database_url, _differences(Base.metadata)) == []


def test_every_constraint_and_index_has_a_name_in_the_models() -> None:
    unnamed = [
        (table.name, type(item).__name__)
        for table in Base.metadata.tables.values()
        for item in (*table.constraints, *table.indexes)
        if item.name is None
    ]
    assert unnamed == []


async def test_constraints_and_indexes_are_named_as_in_the_database(database_url: str) -> None:
    in_models = {
        (table.name, str(item.name))
        for table in Base.metadata.tables.values()
        for item in (*table.constraints, *table.indexes)
    }
    assert await _on_database(database_url, _names) == in_models


def test_the_naming_convention_renames_nothing_the_migrations_create(
    database_url: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alembic names what the migrations create by the models' convention (env.py's
    target_metadata): a database migrated before the convention existed, which PostgreSQL
    named itself, has the same names as one migrated now."""
    monkeypatch.setattr(Base.metadata, "naming_convention", MetaData().naming_convention)
    with fresh_database(postgres_url) as without_convention:
        names_then = asyncio.run(_on_database(without_convention, _names))
    monkeypatch.undo()
    assert names_then == asyncio.run(_on_database(database_url, _names))


@pytest.mark.usefixtures("xid8_known")
async def test_the_comparison_reports_a_model_that_drifted(database_url: str) -> None:
    """The check above can fail: a column type, a server default, a nullability, a new
    column, table and index in the models are each reported."""
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    runs = drifted.tables["processing_runs"]
    runs.c.image_bytes.type = JSON()  # integer in the database
    runs.c.error.nullable = False
    runs.c.timings_ms.server_default = None
    runs.append_column(Column("retries", Integer))
    Index(None, runs.c.status)
    Table("not_migrated", drifted, Column("id", Integer, primary_key=True))

    differences = await _on_database(database_url, _differences(drifted))

    kinds = sorted(_kind(difference) for difference in differences)
    assert kinds == sorted(
        [
            ("add_column", "retries"),
            ("add_index", "ix_processing_runs_status"),
            ("add_table", "not_migrated"),
            ("modify_default", "timings_ms"),
            ("modify_nullable", "error"),
            ("modify_type", "image_bytes"),
        ]
    )


def _kind(difference: Any) -> tuple[str, str]:
    """("add_table", name) for a table-level difference, ("modify_type", column) for one of
    the list Alembic gives per changed column."""
    if isinstance(difference, list):  # [("modify_type", schema, table, column, ...)]
        (change,) = difference
        return change[0], change[3]
    action, item = difference[0], difference[-1]
    return action, item.name
