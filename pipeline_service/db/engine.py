"""The async SQLAlchemy engine (asyncpg underneath), and what a lost database looks like."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pipeline_service.errors import DatabaseUnavailable


def create_engine(database_url: str, pool_size: int, pre_ping: bool) -> AsyncEngine:
    # Either way a restarted PostgreSQL needs no restart of ours: without pre-ping the first
    # request on a dead connection fails (503) and SQLAlchemy then invalidates the whole pool.
    return create_async_engine(
        database_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping
    )


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
            f"The database cannot be reached ({type(error).__name__}); try again shortly."
        ) from error
    except DBAPIError as error:
        if not (error.connection_invalidated or _is_connection_error(error.orig)):
            raise
        raise DatabaseUnavailable("The database connection was lost; try again shortly.") from error


def _is_connection_error(orig: BaseException | None) -> bool:
    cause = getattr(orig, "__cause__", None) or orig
    return isinstance(
        cause,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.InterfaceError,
    )
