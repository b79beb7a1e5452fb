"""Start the whole stack for a benchmark run (`python -m devstack`, as `make run` does) and
find its processes."""

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / ".data" / "bench"
READY_TIMEOUT_S = 120
LOG_TAIL_LINES = 20
REPLICA_OFFSET = 10  # the first replica's port, from the stack's


@dataclass(frozen=True)
class Stack:
    url: str  # the pipeline service
    database_url: str  # libpq form, for counting the runs
    launcher: psutil.Process

    def replica_url(self, index: int = 0) -> str:
        """A replica of a fleet, directly (not through HAProxy)."""
        port = int(self.url.rsplit(":", 1)[1]) + REPLICA_OFFSET + index
        return f"http://127.0.0.1:{port}"

    def processes(self) -> dict[str, list[psutil.Process]]:
        """The stack's live processes: the services' (uvicorn and its workers) and the
        PostgreSQL backends serving this database."""
        groups: dict[str, list[psutil.Process]] = {
            "pipeline": [],
            "model": [],
            "postgres": [],
            "haproxy": [],
        }
        for proc in self.launcher.children(recursive=True):
            group = _service_of(proc)
            if group:
                groups[group].append(proc)
        for pid in asyncio.run(_backend_pids(self.database_url)):
            with contextlib.suppress(psutil.Error):
                groups["postgres"].append(psutil.Process(pid))
        return groups


def _service_of(proc: psutil.Process) -> str | None:
    """A process belongs to the nearest ancestor (or itself) that runs a service's app."""
    with contextlib.suppress(psutil.Error):
        for candidate in [proc, *proc.parents()]:
            cmdline = candidate.cmdline()
            if any("pipeline_service.app" in arg for arg in cmdline):
                return "pipeline"
            if any("model_service.app" in arg for arg in cmdline):
                return "model"
            if cmdline and Path(cmdline[0]).name == "haproxy":
                return "haproxy"
    return None


async def _backend_pids(database_url: str) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


@contextmanager
def running_stack(
    port: int,
    workers: int | None,
    model_workers: int | None,
    data_dir: Path = DATA_DIR,
    replicas: int | None = None,
) -> Iterator[Stack]:
    """`python -m devstack`, as `make run` starts it, with the pipeline service on `port` and
    the model service on `port + 1`; PostgreSQL at DATABASE_URL, else the embedded one (kept
    in `data_dir`, apart from the one `make run` uses). The services' logs go to
    `log_path(data_dir)`; the launcher's own lines are shown. Stopped on the way out.
    `replicas`: that many pipeline-service replicas behind HAProxy on `port`, the replicas on
    `port + 10` and up (`Stack.replica_url`)."""
    command = [sys.executable, "-m", "devstack", "--no-access-log"]
    command += ["--pipeline-port", str(port), "--model-port", str(port + 1)]
    command += ["--data-dir", str(data_dir)]
    if workers:
        command += ["--workers", str(workers)]
    if model_workers:
        command += ["--model-workers", str(model_workers)]
    if replicas:
        command += ["--replicas", str(replicas), "--replica-port", str(port + REPLICA_OFFSET)]
    log = log_path(data_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"the services' logs: {log}", file=sys.stderr, flush=True)
    with log.open("w") as log_file:
        launcher = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            start_new_session=True,
        )
    try:
        try:
            database_url = _wait_ready(launcher)
        except RuntimeError as error:
            print(_log_tail(log), file=sys.stderr)
            raise SystemExit(f"bench: {error}") from None
        yield Stack(f"http://127.0.0.1:{port}", database_url, psutil.Process(launcher.pid))
    finally:
        launcher.terminate()  # devstack stops the services and the embedded PostgreSQL
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, 9)
            launcher.wait()


def _wait_ready(launcher: subprocess.Popen[str]) -> str:
    """Read the launcher's lines until `ready`; returns the database it announced."""
    assert launcher.stdout is not None
    timer = threading.Timer(READY_TIMEOUT_S, launcher.terminate)
    timer.start()
    database_url = os.environ.get("DATABASE_URL")
    try:
        for line in launcher.stdout:
            print(line, end="", file=sys.stderr)
            found = re.search(r"\bdatabase (postgres(?:ql)?(?:\+asyncpg)?://\S+)", line)
            if found and "*" not in found.group(1):  # DATABASE_URL's is shown masked
                database_url = found.group(1)
            if "ready" in line:
                break
        else:
            raise RuntimeError(f"the stack stopped before it was ready ({launcher.wait()})")
    finally:
        timer.cancel()
    # Keep draining its output so that it never blocks on a full pipe.
    threading.Thread(target=_drain, args=(launcher.stdout,), daemon=True).start()
    if not database_url:
        raise RuntimeError("the stack did not say which database it uses")
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def log_path(data_dir: Path) -> Path:
    """Both services' JSON lines (two per request), kept off the terminal. Beside the data
    directory, not in it: initdb wants an empty one."""
    return data_dir.with_name(data_dir.name + ".log")


def _drain(stream: IO[str]) -> None:
    for _ in stream:
        pass


def _log_tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join([f"last lines of {log}:", *lines])
