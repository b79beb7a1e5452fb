"""PgBouncer (the Debian package) in transaction mode between the services and PostgreSQL.

The services' pools connect to PgBouncer, which lends each transaction one of at most
`pool_size` server connections; the LISTEN connections go to PostgreSQL directly (a LISTEN
needs its session). Why transaction mode and how asyncpg is set up for it: docs/decisions/.
"""

import os
import pwd
import shutil
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from devstack.errors import StackError
from devstack.processes import GroupProcess

SYSTEM_BIN = "/usr/sbin:/sbin"  # where Debian puts it; not on every PATH
INSTALL_HINT = "install PgBouncer: apt-get install pgbouncer (Debian/Ubuntu; make does it as root)"
# PgBouncer refuses to run as root; started as root, it switches to another user.
UNPRIVILEGED_USER = "nobody"


def require_pgbouncer() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path=SYSTEM_BIN)
    if found is None:
        raise StackError(f"--pgbouncer needs PgBouncer, which is not installed: {INSTALL_HINT}")
    return found


def _host(url: URL) -> str:
    """A name or address, or the directory of a unix socket (the embedded PostgreSQL's)."""
    host = url.host or url.query.get("host") or "127.0.0.1"
    return host[0] if isinstance(host, tuple) else host


def _unprivileged_user(url: URL) -> str:
    """Who PgBouncer runs as when we are root: the owner of the server's socket directory
    (so that it may connect there), else nobody."""
    host = _host(url)
    if host.startswith("/"):
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return UNPRIVILEGED_USER


def _server(url: URL) -> str:
    """PgBouncer's connection string for the PostgreSQL at `url` (TCP or a unix socket)."""
    host = _host(url)
    parts = [f"host={host}", f"port={url.port or 5432}", f"user={url.username or 'postgres'}"]
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


def render_config(postgres_url: str, listen: tuple[str, int], pool_size: int, clients: int) -> str:
    url = make_url(postgres_url)
    return f"""\
;; Written by devstack/pgbouncer.py at each start; see docs/scaling.md.
[databases]
* = {_server(url)}

[pgbouncer]
listen_addr = {listen[0]}
listen_port = {listen[1]}
unix_socket_dir =
;; Local development only: any client may connect; PgBouncer logs in as the user above.
auth_type = any
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = {clients}
;; A server connection is checked before reuse only after being idle this long.
server_check_delay = 10
log_connections = 0
log_disconnections = 0
"""


def pooled_url(postgres_url: str, listen: tuple[str, int]) -> str:
    """The URL of the same database and user, through PgBouncer."""
    url = make_url(postgres_url)
    return (
        url.set(host=listen[0], port=listen[1], query={}, password=None)
        .render_as_string(hide_password=False)
        .replace("postgresql+asyncpg://", "postgresql://", 1)
    )


class PgBouncer(GroupProcess):
    def __init__(
        self,
        postgres_url: str,
        listen: tuple[str, int],
        pool_size: int,
        clients: int,
        run_dir: Path,
        env: Mapping[str, str],
    ) -> None:
        self.listen = listen
        self.pool_size = pool_size
        self.config_path = run_dir / "pgbouncer.ini"
        self.config_path.write_text(render_config(postgres_url, listen, pool_size, clients))
        argv = [require_pgbouncer(), str(self.config_path)]
        if os.geteuid() == 0:
            # It reads its configuration after switching user.
            run_dir.chmod(0o755)
            self.config_path.chmod(0o644)
            argv[1:1] = ["-u", _unprivileged_user(make_url(postgres_url))]
        super().__init__("PgBouncer", argv, env, run_dir)
        self.url = pooled_url(postgres_url, listen)
