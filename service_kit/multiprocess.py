"""Prometheus metrics across several worker processes.

prometheus_client decides when it is imported whether values live in process memory or in
files under PROMETHEUS_MULTIPROC_DIR (summed over every process at scrape time). So the
directory must be known before that import: each service calls `use_shared_metrics_dir` from
its package's `__init__`.

- PROMETHEUS_MULTIPROC_DIR set: used as is (whoever sets it empties it at each start).
- Not set, and this process was spawned by a multiprocessing parent (uvicorn --workers N,
  --reload): every worker of that parent gets the same fresh directory under the temp dir,
  named after the service and the parent's pid and start time, so one server's workers add
  up and two servers never mix. The directories of servers that have stopped are removed
  then: nothing tells a worker that it is the last one to stop, so cleaning up falls to the
  next start.
- Otherwise (a single process): values stay in memory, nothing is written.
"""

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks (Linux), so a reused pid is a new directory."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rsplit(")", 1)[1].split()[19]


def _dir_prefix(service: str) -> str:
    return f"prometheus-{service}-"


def _server_dir(service: str, pid: int) -> Path:
    """The directory of one server: its supervisor's pid and start time tell it apart."""
    return Path(tempfile.gettempdir()) / f"{_dir_prefix(service)}{pid}-{_start_time(pid)}"


def use_shared_metrics_dir(service: str) -> str | None:
    """Point prometheus_client at a directory shared by the workers; None: single process."""
    configured = os.environ.get(ENV)
    if configured:
        Path(configured).mkdir(parents=True, exist_ok=True)
        return configured
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return None
    remove_stopped_servers_dirs(service)
    path = _server_dir(service, parent.pid)
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ[ENV] = str(path)
    return str(path)


def remove_stopped_servers_dirs(service: str) -> None:
    """Remove the directories whose server (pid and start time in the name) is gone. Never a
    live server's: its pid still has the start time of its name. Errors are ignored: another
    worker may be removing the same directory, or it belongs to another user."""
    prefix = _dir_prefix(service)
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        pid, _, started = path.name.removeprefix(prefix).partition("-")
        if pid.isdigit() and started.isdigit() and _start_time(int(pid)) != started:
            shutil.rmtree(path, ignore_errors=True)
