"""An embedded PostgreSQL (the `pgserver` package) whose data lives in a folder of the checkout.

- The folder is initialised on first use and reused afterwards: the data persists.
- One launcher per folder: a lock file next to it says which process owns it.
- A server found running on the folder with no launcher owning it is a leftover of a launcher
  that was killed outright; it is adopted, and stopped with the rest.
- On exit the server is stopped (`pg_ctl stop -m fast`), whoever started it.
"""

import asyncio
import contextlib
import fcntl
import os
import subprocess
import warnings
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING

import asyncpg

from devstack.errors import StackError

if TYPE_CHECKING:  # psutil comes with pgserver, which is optional (the `embedded` extra)
    import psutil

DATABASE = "pipelines"


def _pgserver() -> ModuleType:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver
    except ImportError:
        raise StackError(
            "the embedded PostgreSQL needs the 'pgserver' package: "
            "pip install -e '.[embedded]' (make run does it), or set DATABASE_URL"
        ) from None
    return pgserver


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.lock_path = self.data_dir.with_name(self.data_dir.name + ".lock")
        self.adopted_pid: int | None = None
        self._lock: IO[str] | None = None
        self._system_user: str | None = None

    def __enter__(self) -> str:
        """Start (or adopt) the server; returns the URL of the `pipelines` database."""
        self._acquire_lock()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _acquire_lock(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        lock = self.lock_path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            lock.close()
            raise StackError(
                f"{self.data_dir} is used by another running stack (pid {owner}). "
                "Stop that one first, or give this one its own --data-dir."
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock

    def _start(self) -> str:
        pgserver = _pgserver()
        leftover = self._postmaster()
        if leftover is not None:
            self.adopted_pid = leftover.pid
        self.data_dir.mkdir(exist_ok=True)
        try:
            # The constructor (unlike get_server, which caches per path) always makes sure the
            # folder is initialised and the server is running. cleanup_mode=None: we stop it.
            server = pgserver.PostgresServer(self.data_dir, cleanup_mode=None)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            log = self.data_dir / "log"
            raise StackError(
                f"the embedded PostgreSQL in {self.data_dir} did not start ({error}); "
                f"its log is {log}"
            ) from None
        self._system_user = server.system_user
        asyncio.run(_create_database(server.get_uri(), DATABASE))
        return str(server.get_uri(database=DATABASE))

    def _postmaster(self) -> "psutil.Process | None":
        """The server process running on the folder, if any."""
        _pgserver()
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        return info.process if info is not None and info.is_running() else None

    def stop(self) -> None:
        try:
            postmaster = self._postmaster() if self._lock is not None else None
            if postmaster is not None:
                user = self._system_user
                if user is None and os.geteuid() == 0:
                    user = "pgserver"  # pgserver runs the server as this user when we are root
                with contextlib.suppress(subprocess.CalledProcessError):  # it stopped meanwhile
                    _pgserver().pg_ctl(
                        ["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user
                    )
                import psutil

                # pg_ctl returns once the pid file is gone, a moment before the process is.
                _, alive = psutil.wait_procs([postmaster], timeout=10)
                for process in alive:
                    process.kill()
        finally:
            if self._lock is not None:
                self._lock.close()  # releases the flock
                self._lock = None


async def _create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
