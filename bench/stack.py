"""Start the whole stack for a benchmark run (`python -m devstack`, as `make run` does) and
find its processes."""

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 120


@dataclass(frozen=True)
class Stack:
    url: str  # the pipeline service
    database_url: str  # libpq form, for counting the runs
    launcher: psutil.Process

    def processes(self) -> dict[str, list[psutil.Process]]:
        """The stack's live processes: the services' (uvicorn and its workers) and the
        PostgreSQL backends serving this database."""
        groups: dict[str, list[psutil.Process]] = {"pipeline": [], "model": [], "postgres": []}
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
def running_stack(port: int, workers: int | None, model_workers: int | None) -> Iterator[Stack]:
    """The stack on `port` (pipeline) and `port + 1` (model); stopped on the way out."""
    with _temporary_stack(port, workers, model_workers) as stack:
        yield stack


@contextmanager
def _devstack(port: int, workers: int | None, model_workers: int | None) -> Iterator[Stack]:
    """`python -m devstack`: PostgreSQL at DATABASE_URL, or the embedded one in .data/bench."""
    command = [sys.executable, "-m", "devstack", "--no-access-log"]
    command += ["--pipeline-port", str(port), "--model-port", str(port + 1)]
    command += ["--data-dir", str(ROOT / ".data" / "bench")]
    if workers:
        command += ["--workers", str(workers)]
    if model_workers:
        command += ["--model-workers", str(model_workers)]
    launcher = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        database_url = _wait_ready(launcher)
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
    threading.Thread(target=lambda: [None for _ in launcher.stdout], daemon=True).start()  # type: ignore[union-attr]
    if not database_url:
        raise RuntimeError("the stack did not say which database it uses")
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


# --- temporary, until `python -m devstack` lands: then running_stack uses _devstack -------
@contextmanager
def _temporary_stack(port: int, workers: int | None, model_workers: int | None) -> Iterator[Stack]:
    from tests.conftest import _with_database

    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    database_url = _with_database(server, name)
    model_url = f"http://127.0.0.1:{port + 1}"
    env = {**os.environ, "DATABASE_URL": database_url, "MODEL_SERVICE_URL": model_url}
    subprocess.run([sys.executable, "-m", "pipeline_service.db.migrate"], env=env, check=True)
    common = ["--factory", "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
    services = [
        ("model_service.app:create_app", port + 1, model_workers or 1),
        ("pipeline_service.app:create_app", port, workers or 1),
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, *common, "--port", str(p), "--workers", str(w)],
            env=env,
            cwd=ROOT,
        )
        for app, p, w in services
    ]
    holder = subprocess.Popen(["sleep", "infinity"])  # stands in for the launcher process
    try:
        for p in (port + 1, port):
            deadline = time.monotonic() + READY_TIMEOUT_S
            while True:
                try:
                    with urllib_open(f"http://127.0.0.1:{p}/openapi.json"):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        yield _TemporaryStack(
            f"http://127.0.0.1:{port}", database_url, psutil.Process(holder.pid), procs
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        holder.kill()
        holder.wait()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def urllib_open(url: str):
    import urllib.request

    return urllib.request.urlopen(url, timeout=1)


@dataclass(frozen=True)
class _TemporaryStack(Stack):
    services: list[subprocess.Popen] | None = None

    def processes(self) -> dict[str, list[psutil.Process]]:
        groups: dict[str, list[psutil.Process]] = {"pipeline": [], "model": [], "postgres": []}
        for popen in self.services or []:
            root = psutil.Process(popen.pid)
            for proc in [root, *root.children(recursive=True)]:
                group = _service_of(proc)
                if group:
                    groups[group].append(proc)
        for pid in asyncio.run(_backend_pids(self.database_url)):
            with contextlib.suppress(psutil.Error):
                groups["postgres"].append(psutil.Process(pid))
        return groups
