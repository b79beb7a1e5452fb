"""Bring a database up to date: Alembic migrations, then the seed (both idempotent).

python -m pipeline_service.db.migrate          # uses DATABASE_URL

The first connection is retried for MIGRATE_CONNECT_WAIT_S seconds: started next to a
PostgreSQL that is still starting up (docker compose, a Kubernetes Job), migrate waits for it
instead of failing at once. Errors that waiting cannot fix (a wrong password, a database that
does not exist) end it at once, with a sentence saying what to do.
"""

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from pipeline_service.config import get_settings
from pipeline_service.db.engine import libpq_url

ROOT = Path(__file__).resolve().parents[2]
SEED_SQL = ROOT / "seed.sql"

# What a server that is starting (or not listening yet) answers; worth trying again.
NOT_YET = (OSError, TimeoutError, asyncpg.CannotConnectNowError)
RETRY_PAUSE_S = 0.5
SAY_EVERY_S = 5.0
ATTEMPT_TIMEOUT_S = 10.0  # one connection attempt, e.g. to an address that drops packets


class CannotMigrate(Exception):
    """The database cannot be reached or used; the message says what to do."""


def describe(database_url: str) -> str:
    """Where the database is, for messages: host, port and name, never the password."""
    url = make_url(database_url)
    host = url.host or url.query.get("host") or "localhost"
    return f"{host}:{url.port or 5432} (database {url.database}, user {url.username})"


async def wait_for_database(
    database_url: str, wait_s: float, say: Callable[[str], object] = print
) -> None:
    """Return once PostgreSQL accepts a connection; retry the ones refused while it starts,
    for at most `wait_s` seconds. Raises CannotMigrate."""
    where = describe(database_url)
    deadline = time.monotonic() + wait_s
    said_at = -SAY_EVERY_S
    while True:
        left = deadline - time.monotonic()
        try:
            conn = await asyncpg.connect(
                libpq_url(database_url), timeout=max(1.0, min(ATTEMPT_TIMEOUT_S, left))
            )
        except NOT_YET as error:
            reason = f"{type(error).__name__}: {error}"
            left = deadline - time.monotonic()
            if left <= 0:
                raise CannotMigrate(
                    f"PostgreSQL at {where} did not accept a connection within {wait_s:g} s "
                    f"(last error: {reason}). Check that it runs and that DATABASE_URL names "
                    "it; MIGRATE_CONNECT_WAIT_S sets how long to wait."
                ) from error
            if time.monotonic() - said_at >= SAY_EVERY_S:
                said_at = time.monotonic()
                say(
                    f"migrate: PostgreSQL at {where} does not accept connections yet "
                    f"({reason}); trying again for up to {left:.0f} s"
                )
            await asyncio.sleep(min(RETRY_PAUSE_S, left))
        except asyncpg.InvalidPasswordError as error:
            raise CannotMigrate(
                f"PostgreSQL at {where} refused the password ({error}). A PostgreSQL data "
                "directory keeps the password it was created with: with docker compose, "
                "POSTGRES_PASSWORD changed after the volume was made. Put the first password "
                "back, or change it in the server, or start from an empty volume "
                '(docs/docker.md, "Changing the PostgreSQL password").'
            ) from error
        except asyncpg.PostgresError as error:
            raise CannotMigrate(
                f"PostgreSQL at {where} refused the connection: {type(error).__name__}: {error}"
            ) from error
        else:
            await conn.close()
            return


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
    settings = get_settings()
    url = settings.database_url
    try:
        asyncio.run(
            wait_for_database(
                url, settings.migrate_connect_wait_s, lambda line: print(line, file=sys.stderr)
            )
        )
    except CannotMigrate as error:
        raise SystemExit(f"migrate: error: {error}") from None
    upgrade(url)
    seed(url)
    print("database is up to date and seeded")


if __name__ == "__main__":
    main()
