"""Is PostgreSQL answering? (for GET /readyz)"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable


async def ping(engine: AsyncEngine) -> None:
    """Raise DatabaseUnavailable unless a pooled connection answers `SELECT 1`."""
    async with database_errors_as_unavailable(), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
