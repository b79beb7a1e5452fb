"""python -m devstack.psql [--data-dir DIR] [psql options]: psql on the stack's database.

The database is the one at DATABASE_URL when set, else the embedded one in DIR (default
.data/postgres), which must be running (`make run` in another terminal). The psql shipped
with pgserver is used, so nothing else needs installing; else the one on PATH.
"""

import argparse
import os
import shutil
import sys
import warnings
from pathlib import Path

from devstack.embedded_postgres import DATABASE
from devstack.stack import ROOT


def _embedded_url(data_dir: Path) -> tuple[str, str | None]:
    """The URL of the running embedded server's database, and pgserver's psql (if any)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        sys.exit("devstack.psql: pgserver is not installed; set DATABASE_URL instead")
    info = pgserver.utils.PostmasterInfo.read_from_pgdata(data_dir)
    if info is None or not info.is_running():
        sys.exit(f"devstack.psql: no PostgreSQL is running on {data_dir}; start it with make run")
    bin_dir = getattr(getattr(pgserver, "_commands", None), "POSTGRES_BIN_PATH", None)
    bundled = Path(bin_dir) / "psql" if bin_dir else None
    return info.get_uri(database=DATABASE), str(bundled) if bundled and bundled.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.psql", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "postgres")
    args, psql_args = parser.parse_known_args()
    url = os.environ.get("DATABASE_URL")
    psql = None
    if url:
        url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    else:
        url, psql = _embedded_url(args.data_dir.resolve())
    psql = psql or shutil.which("psql")
    if psql is None:
        sys.exit("devstack.psql: no psql found; install the PostgreSQL client")
    os.execv(psql, [psql, url, *psql_args])


if __name__ == "__main__":
    main()
