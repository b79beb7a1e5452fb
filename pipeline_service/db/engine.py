"""The async SQLAlchemy engine (asyncpg underneath), and what a lost database looks like."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from pipeline_service.errors import DatabaseUnavailable


def create_engine(
    database_url: str,
    pool_size: int,
    pre_ping: bool,
    max_overflow: int | None = None,
    transaction_pooler: bool = False,
) -> AsyncEngine:
    """The pool replaces, before use, every connection the server has closed (a restart, a
    terminated backend): see `_refuse_closed`. `pre_ping` adds SQLAlchemy's ping, which also
    finds a connection that died silently (a firewall dropping idle ones) but costs three
    round trips (BEGIN, `;`, ROLLBACK) per checkout.

    `transaction_pooler`: the URL is PgBouncer in transaction mode, where consecutive
    transactions of one client connection may run on different server connections, so a
    statement prepared in one is unknown in the next. See `POOLER_CONNECT_ARGS`."""
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=pre_ping,
        connect_args=POOLER_CONNECT_ARGS if transaction_pooler else {},
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def create_unpooled_engine(
    database_url: str, application_name: str, transaction_pooler: bool = False
) -> AsyncEngine:
    """An engine that opens a connection for each use and closes it after: for occasional
    background work (the idempotency purge, the partition maintenance: background.py), which
    then never holds one of the request pool's connections, nor counts in its gauge.
    `application_name` shows it in pg_stat_activity."""
    connect_args: dict[str, Any] = {"server_settings": {"application_name": application_name}}
    if transaction_pooler:
        connect_args.update(POOLER_CONNECT_ARGS)
    return create_async_engine(database_url, poolclass=NullPool, connect_args=connect_args)


# asyncpg with its statement cache off sends every statement unnamed, and parses it again in
# the same Parse/Bind/Execute/Sync sequence that runs it (asyncpg >= 0.29), which PgBouncer
# hands to one server connection whole. SQLAlchemy's own cache of prepared statements must go
# too (it would keep asyncpg statements across transactions). PgBouncer >= 1.21 could keep
# named statements itself (max_prepared_statements); Debian 12 ships 1.18.
# (docs/decisions/, PgBouncer)
POOLER_CONNECT_ARGS = {"statement_cache_size": 0, "prepared_statement_cache_size": 0}


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """asyncpg keeps reading every idle connection, so it has already seen the server close
    it: asking costs no round trip. The pool then reconnects, and also replaces every other
    connection older than this one, which died with the same server."""
    if dbapi_connection.driver_connection.is_closed():
        raise InvalidatePoolError("PostgreSQL closed this pooled connection")


def libpq_url(database_url: str) -> str:
    """The same URL without the SQLAlchemy driver suffix, for plain asyncpg/psql."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def database_errors_as_unavailable() -> AsyncIterator[None]:
    """Turn "cannot reach PostgreSQL" into DatabaseUnavailable (503); other errors pass."""
    try:
        yield
    except (
        OSError,
        TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
    ) as error:
        raise DatabaseUnavailable(
            f"The database cannot be reached ({type(error).__name__})"
        ) from error
    except DBAPIError as error:
        if not (error.connection_invalidated or _is_connection_error(error.orig)):
            raise
        raise DatabaseUnavailable("The database connection was lost") from error


def _is_connection_error(orig: BaseException | None) -> bool:
    cause = getattr(orig, "__cause__", None) or orig
    return isinstance(
        cause,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.InterfaceError,
    )
