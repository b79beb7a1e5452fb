"""Prometheus metrics across several worker processes.

prometheus_client decides when it is imported whether values live in process memory or in
files under PROMETHEUS_MULTIPROC_DIR (summed over every process at scrape time). So the
directory must be known before that import: each service calls `use_shared_metrics_dir` from
its package's `__init__`.

- PROMETHEUS_MULTIPROC_DIR set: used as is (the launcher creates it empty at each start).
- Not set, and this process was spawned by a multiprocessing parent (uvicorn --workers N,
  --reload): every worker of that parent gets the same fresh directory under the temp dir,
  named after the service and the parent's pid and start time, so one server's workers add
  up and two servers never mix.
- Otherwise (a single process): values stay in memory, nothing is written.
"""

import multiprocessing
import os
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


def use_shared_metrics_dir(service: str) -> str | None:
    """Point prometheus_client at a directory shared by the workers; None: single process."""
    configured = os.environ.get(ENV)
    if configured:
        Path(configured).mkdir(parents=True, exist_ok=True)
        return configured
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return None
    path = Path(tempfile.gettempdir()) / (
        f"prometheus-{service}-{parent.pid}-{_start_time(parent.pid)}"
    )
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ[ENV] = str(path)
    return str(path)
