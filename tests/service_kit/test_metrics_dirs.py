"""The automatic metrics directories of stopped servers are removed at the next start; a live
server's never is."""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from service_kit import multiprocess

pytestmark = pytest.mark.subprocess


def metrics_dir(service: str, pid: int | str, started: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"prometheus-{service}-{pid}-{started}"
    path.mkdir()
    (path / "counter_1.db").write_bytes(b"\0" * 64)
    return path


def test_only_the_directories_of_stopped_servers_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    me = os.getpid()
    ended = subprocess.Popen(["true"])
    ended.wait()  # reaped: its pid is free
    gone_pid = ended.pid
    live = metrics_dir("pipeline_service", me, multiprocess._start_time(me))
    gone = metrics_dir("pipeline_service", gone_pid, "12345")
    pid_reused = metrics_dir("pipeline_service", me, "1")  # same pid, another start time
    other_service = metrics_dir("model_service", gone_pid, "12345")
    not_ours = metrics_dir("pipeline_service", "x", "12345")

    multiprocess.remove_stopped_servers_dirs("pipeline_service")

    assert live.is_dir() and (live / "counter_1.db").is_file()
    assert not gone.exists() and not pid_reused.exists()
    assert other_service.is_dir() and not_ours.is_dir()
