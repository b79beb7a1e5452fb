"""`make run`'s launcher (`python -m devstack`) as a newcomer uses it: started for real, sent
requests with requests.sh, its rows read back from PostgreSQL, stopped with a signal, and
checked to leave no process behind. Both database paths: the embedded PostgreSQL (from an
empty folder, then again on the same folder) and a server given by DATABASE_URL. And a fleet:
replicas behind HAProxy with PgBouncer, restarted one at a time, and the connection check."""

import asyncio
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from devstack.allocator import ALLOCATOR_ENV
from devstack.embedded_postgres import EmbeddedPostgres
from tests.fixtures.fleet import free_ports_in_a_row, port_is_free, require
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.processes import ROOT, free_port

pytestmark = pytest.mark.subprocess

REQUESTS_SH = ROOT / "requests.sh"
STARTUP_S = 180  # generous: CI has 2 cores, shared


def launch_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "PIPELINE_WORKERS", "MODEL_WORKERS")
    }
    return {**env, **extra}


class Launcher:
    """One `python -m devstack` process; its stdout read line by line."""

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str]) -> None:
        self.stderr_path = workdir / f"devstack-{free_port()}.stderr"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, word: str) -> str:
        while True:
            try:
                line = self._queue.get(timeout=STARTUP_S)
            except queue.Empty:
                pytest.fail(f"no {word!r} line from devstack: {self.output()}")
            if line is None:
                pytest.fail(f"devstack ended before {word!r}: {self.output()}")
            self.lines.append(line)
            if word in line:
                return line

    def output(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + self.stderr_path.read_text()

    def database_url(self) -> str:
        for line in self.lines:
            if match := re.match(r"devstack: database (\S+)", line):
                return match.group(1)
        pytest.fail(f"devstack printed no database line: {self.output()}")

    def processes(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=60)
        finally:
            self._stderr.close()

    def kill(self) -> None:
        """Test teardown after a failure: take down whatever is left."""
        if self.process.poll() is None:
            for child in self.processes():
                child.kill()
            self.process.kill()
            self.process.wait()
        self._stderr.close()


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return []
    try:
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]
    except psutil.NoSuchProcess:  # a stale pid file: nothing runs
        return []


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch folder, with `pg` in it for an embedded PostgreSQL. Not pytest's tmp_path:
    other pytest runs on the machine may prune that while a server still uses it. A server
    still running after the test (the test failed) is killed: a failure leaves nothing either."""
    path = Path(tempfile.mkdtemp(prefix="devstack-test-"))
    yield path
    for process in still_running(postgres_processes(path / "pg")):
        process.kill()
    shutil.rmtree(path, ignore_errors=True)


def run_devstack(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_requests(port: int, *image: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REQUESTS_SH), *map(str, image)],
        env={**os.environ, "PIPELINE_URL": f"http://127.0.0.1:{port}"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def answers(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(row.values()) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_embedded_stack_serves_keeps_its_data_and_stops_cleanly(workdir: Path) -> None:
    data_dir = workdir / "pg"
    pipeline_port, model_port = free_port(), free_port()
    ports = ["--pipeline-port", str(pipeline_port), "--model-port", str(model_port)]
    # The model's knob rides through the launcher's environment: every image has a car.
    env = launch_env(MODEL_DETECTION_PROBABILITY="1")

    stack = Launcher(workdir, [*ports, "--data-dir", str(data_dir), "--workers", "2"], env)
    try:
        ready = stack.wait_for("ready")
        assert f"http://127.0.0.1:{pipeline_port}/docs" in ready
        assert f"http://127.0.0.1:{model_port}" in ready
        url = stack.database_url()
        started = stack.processes() + postgres_processes(data_dir)
        assert len(started) >= 5  # 2 uvicorn leaders, 2 pipeline workers, postgres
        # Every service process runs with the allocator settings (devstack/allocator.py).
        services = [p for p in stack.processes() if p.name().startswith("python")]
        assert len(services) >= 4  # the uvicorn leaders and their workers
        for service in services:
            assert ALLOCATOR_ENV.items() <= service.environ().items()

        sent = run_requests(pipeline_port)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.count("HTTP 200") == 3
        bodies = answers(sent.stdout)
        assert [b["car_detected"] for b in bodies] == [True, True, True]
        runs = query(url, "SELECT id, status, car_detected FROM processing_runs ORDER BY id")
        assert runs == [(b["run_id"], "succeeded", True) for b in bodies]
        assert query(url, "SELECT count(*) FROM detections") == [(3,)]

        # A second stack on the same port fails at once, in one sentence, starting nothing.
        other_model_port = free_port()
        busy = run_devstack(
            ["--pipeline-port", str(pipeline_port), "--model-port", str(other_model_port),
             "--data-dir", str(workdir / "other")],
            env,
        )  # fmt: skip
        assert busy.returncode != 0
        assert f"port {pipeline_port}" in busy.stderr and "already in use" in busy.stderr
        assert "Traceback" not in busy.stderr
        assert port_is_free(other_model_port) and not (workdir / "other").exists()
        # So does a second stack on other ports but the same PostgreSQL folder.
        shared = run_devstack(
            ["--pipeline-port", str(free_port()), "--model-port", str(free_port()),
             "--data-dir", str(data_dir)],
            env,
        )  # fmt: skip
        assert shared.returncode != 0
        assert "used by another running stack" in shared.stderr
        assert "Traceback" not in shared.stderr
        assert run_requests(pipeline_port).stdout.count("HTTP 200") == 3  # still serving

        assert stack.stop(signal.SIGINT) == 0, stack.output()
    finally:
        stack.kill()
    assert still_running(started) == []
    assert port_is_free(pipeline_port) and port_is_free(model_port)
    assert postgres_processes(data_dir) == []

    # Launched again on the same folder: the runs are still there, the seed is not doubled.
    again = Launcher(workdir, [*ports, "--data-dir", str(data_dir)], env)
    try:
        again.wait_for("ready")
        started = again.processes() + postgres_processes(data_dir)
        url = again.database_url()
        assert query(url, "SELECT count(*) FROM processing_runs") == [(6,)]
        assert query(url, "SELECT id, name FROM pipelines") == [(1, "car-detection")]
        assert query(url, "SELECT count(*) FROM pipeline_steps") == [(6,)]
        assert query(url, "SELECT count(*) FROM pipeline_versions") == [(1,)]
        assert again.stop(signal.SIGTERM) == 0, again.output()
    finally:
        again.kill()
    assert still_running(started) == []
    assert postgres_processes(data_dir) == []


def test_stack_on_database_url(workdir: Path, database_url: str) -> None:
    pipeline_port, model_port = free_port(), free_port()
    unused_data_dir = workdir / "pg"
    image = workdir / "street.jpg"
    image.write_bytes(jpeg_bytes(333, 222))  # an image no other test sends
    not_an_image = workdir / "notes.txt"
    not_an_image.write_text("not a picture")
    args = ["--pipeline-port", str(pipeline_port), "--model-port", str(model_port)]

    stack = Launcher(
        workdir, [*args, "--data-dir", str(unused_data_dir)], launch_env(DATABASE_URL=database_url)
    )
    try:
        stack.wait_for("ready")
        assert any("from DATABASE_URL" in line for line in stack.lines)
        started = stack.processes()

        sent = run_requests(pipeline_port, image)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        run_ids = [b["run_id"] for b in answers(sent.stdout)]
        sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
        stored = query(
            database_url,
            "SELECT id FROM processing_runs WHERE image_sha256 = decode($1, 'hex') ORDER BY id",
            sha256,
        )
        assert stored == [(run_id,) for run_id in run_ids] and len(run_ids) == 3

        refused = run_requests(pipeline_port, not_an_image)
        assert refused.returncode != 0
        assert refused.stdout.count("HTTP 415") == 3

        assert stack.stop(signal.SIGINT) == 0, stack.output()
    finally:
        stack.kill()
    assert still_running(started) == []
    assert port_is_free(pipeline_port) and port_is_free(model_port)
    assert not unused_data_dir.exists()
    assert query(database_url, "SELECT 1") == [(1,)]  # a server it was given is left alone


def test_postgres_left_by_a_killed_launcher_is_adopted_and_stopped(workdir: Path) -> None:
    data_dir = workdir / "pg"
    # What a launcher killed outright leaves behind: a server nobody will stop.
    subprocess.run(
        [sys.executable, "-W", "ignore", "-c",
         "import sys, pgserver; pgserver.get_server(sys.argv[1], cleanup_mode=None)",
         str(data_dir)],
        check=True,
        timeout=120,
    )  # fmt: skip
    leftover = postgres_processes(data_dir)
    assert leftover

    embedded = EmbeddedPostgres(data_dir)
    with embedded as url:
        assert embedded.adopted_pid == leftover[0].pid
        assert query(url, "SELECT current_database()") == [("pipelines",)]
    assert still_running(leftover) == []
    assert postgres_processes(data_dir) == []


def test_fleet_behind_haproxy_with_pgbouncer_restarts_rolling_and_stops_cleanly(
    workdir: Path, own_database_url: str
) -> None:
    database_url = own_database_url  # counted below: no other test's connections on it
    require("haproxy")
    require("pgbouncer")
    port, model_port, pgbouncer_port = (free_port() for _ in range(3))
    replica_port = free_ports_in_a_row(2)
    args = [
        "--pipeline-port", str(port), "--model-port", str(model_port),
        "--replicas", "2", "--replica-port", str(replica_port), "--workers", "1",
        "--pgbouncer", "--pgbouncer-port", str(pgbouncer_port), "--pgbouncer-pool", "4",
    ]  # fmt: skip
    stack = Launcher(workdir, args, launch_env(DATABASE_URL=database_url, DB_POOL_SIZE="2"))
    try:
        stack.wait_for("ready")
        budget = next(line for line in stack.lines if "connections:" in line)
        assert "PgBouncer's 4 + 2 listener(s)" in budget, budget
        started = stack.processes()
        commands = " ".join(" ".join(p.cmdline()) for p in started)
        assert "haproxy" in commands and "pgbouncer" in commands

        sent = run_requests(port)  # through HAProxy
        assert sent.returncode == 0, sent.stdout + sent.stderr
        served = {
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).headers["x-served-by"]
            for _ in range(4)
        }
        assert served == {"pipeline-1", "pipeline-2"}
        # The pipeline service reaches PostgreSQL through PgBouncer; the listeners go direct.
        [(listeners, others)] = query(
            database_url,
            "SELECT count(*) FILTER (WHERE application_name = 'pipeline-change-listener'), "
            "count(*) FILTER (WHERE application_name <> 'pipeline-change-listener') "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()",
        )
        assert listeners == 2 and others <= 4  # PgBouncer's pool

        stack.process.send_signal(signal.SIGUSR1)  # a rolling restart
        stack.wait_for("rolling restart done")
        assert run_requests(port).stdout.count("HTTP 200") == 3

        assert stack.stop(signal.SIGINT) == 0, stack.output()
    finally:
        stack.kill()
    assert still_running(started) == []
    for freed in (port, model_port, replica_port, replica_port + 1, pgbouncer_port):
        assert port_is_free(freed)


def test_a_fleet_that_would_exceed_max_connections_is_refused(
    workdir: Path, database_url: str
) -> None:
    ports = ["--pipeline-port", str(free_port()), "--model-port", str(free_port())]
    ports += ["--replica-port", str(free_ports_in_a_row(2))]
    refused = run_devstack(
        [*ports, "--replicas", "2", "--workers", "1"],
        launch_env(DATABASE_URL=database_url, DB_POOL_SIZE="60"),
    )
    assert refused.returncode == 1
    [line] = [line for line in refused.stderr.splitlines() if "error" in line]
    expected = (
        "2 replica(s) x 1 worker(s) x (60 + 60 overflow + 1 readiness + 1 purge + 1 listener)"
    )
    assert f"{expected} = 246" in line, line
    assert "--pgbouncer" in line and "Traceback" not in refused.stderr
    assert "starting the model service" not in refused.stdout
