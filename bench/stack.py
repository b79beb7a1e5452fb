"""Start the whole stack for a benchmark run and find its processes."""

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stack:
    url: str  # the pipeline service
    database_url: str
    launcher: psutil.Process

    def processes(self) -> dict[str, list[psutil.Process]]:
        """The stack's live processes grouped as pipeline / model / postgres."""
        groups: dict[str, list[psutil.Process]] = {"pipeline": [], "model": [], "postgres": []}
        for proc in [self.launcher, *self.launcher.children(recursive=True)]:
            group = _group_of(proc)
            if group:
                groups[group].append(proc)
        return groups


def _group_of(proc: psutil.Process) -> str | None:
    """A process belongs to the nearest ancestor (or itself) that names a service."""
    try:
        for candidate in [proc, *proc.parents()]:
            cmdline = " ".join(candidate.cmdline())
            if "pipeline_service" in cmdline:
                return "pipeline"
            if "model_service" in cmdline:
                return "model"
            if "postgres" in candidate.name():
                return "postgres"
    except psutil.Error:
        pass
    return None


def _wait_ready(urls: list[str], launcher: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(urls)
    while pending:
        if launcher.poll() is not None:
            raise RuntimeError(f"the stack exited with code {launcher.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stack did not answer within {timeout_s:g} s: {pending}")
        try:
            with urllib.request.urlopen(pending[0], timeout=1):
                pending.pop(0)
        except OSError:
            time.sleep(0.2)


@contextmanager
def running_stack(port: int, workers: int | None, model_workers: int | None) -> Iterator[Stack]:
    """The stack as `make run` starts it, on `port` (pipeline) and `port + 1` (model)."""
    with _temporary_stack(port, workers or 1, model_workers or 1, {}) as stack:
        yield stack


# --- temporary: replaced by `python -m devstack` once it lands -------------------------------
@contextmanager
def _temporary_stack(
    port: int, workers: int, model_workers: int, env: dict[str, str]
) -> Iterator[Stack]:
    import asyncio

    import asyncpg

    from pipeline_service.db.engine import libpq_url
    from tests.conftest import _with_database

    server = libpq_url(
        os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    name = f"bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    database_url = _with_database(server, name)
    env = {
        **os.environ,
        **env,
        "DATABASE_URL": database_url,
        "MODEL_SERVICE_URL": f"http://127.0.0.1:{port + 1}",
    }
    subprocess.run(
        [sys.executable, "-m", "pipeline_service.db.migrate"], env=env, cwd=ROOT, check=True
    )
    script = f"""
trap 'kill $(jobs -p); wait' TERM INT
{sys.executable} -m uvicorn model_service.app:create_app --factory --host 127.0.0.1 --port {port + 1} --workers {model_workers} --no-access-log --log-level warning &
{sys.executable} -m uvicorn pipeline_service.app:create_app --factory --host 127.0.0.1 --port {port} --workers {workers} --no-access-log --log-level warning &
wait
"""
    launcher = subprocess.Popen(["bash", "-c", script], env=env, cwd=ROOT)
    try:
        _wait_ready(
            [f"http://127.0.0.1:{port + 1}/openapi.json", f"http://127.0.0.1:{port}/openapi.json"],
            launcher,
        )
        yield Stack(f"http://127.0.0.1:{port}", database_url, psutil.Process(launcher.pid))
    finally:
        launcher.terminate()
        launcher.wait(30)
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
