"""Bring a database up to date: Alembic migrations, then the seed (both idempotent).

python -m pipeline_service.db.migrate          # uses DATABASE_URL
"""

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from pipeline_service.config import get_settings
from pipeline_service.db.engine import libpq_url

ROOT = Path(__file__).resolve().parents[2]
SEED_SQL = ROOT / "seed.sql"


def upgrade(database_url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "heads")


async def _seed(database_url: str) -> None:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute(SEED_SQL.read_text())  # simple protocol: many statements at once
    finally:
        await conn.close()


def seed(database_url: str) -> None:
    asyncio.run(_seed(database_url))


def main() -> None:
    url = get_settings().database_url
    upgrade(url)
    seed(url)
    print("database is up to date and seeded")


if __name__ == "__main__":
    main()
