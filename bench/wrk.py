"""Run wrk with bench/process_image.lua and read its one-line JSON summary."""

import json
import os
import resource
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).with_name("process_image.lua")
SAFETY_S = 30  # wrk's own bound; the script stops each thread long before it


@dataclass(frozen=True)
class LoadResult:
    ok: int  # 200 answers
    failed: int  # any other status
    statuses: str  # "status:count,..." of the failures
    socket_errors: int
    seconds: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    wrk_cpu_s: float

    @property
    def errors(self) -> int:
        return self.failed + self.socket_errors

    @property
    def requests_per_s(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds > 0 else 0.0


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    raise SystemExit(
        "wrk is not installed. Install it with `apt-get install -y wrk` (Debian/Ubuntu, as root),"
        " or run `make bench` as root, which installs it."
    )


def run_wrk(
    url: str,
    image: Path,
    concurrency: int,
    seconds: float,
    requests: int = 0,
    pipeline_id: int = 1,
) -> LoadResult:
    """`concurrency` connections, one per wrk thread, for `seconds` (or until `requests`
    answers, spread evenly over the threads), then stop cleanly; the image goes to
    `pipeline_id`.

    wrk itself would sleep for its whole -d and then cut off requests in flight; instead each
    thread stops on its first answer after `seconds` and writes a byte to a pipe, and wrk is
    told to finish (SIGINT) once every thread has.
    """
    stopped_r, stopped_w = os.pipe()
    command = [
        require_wrk(),
        f"-t{concurrency}",
        f"-c{concurrency}",
        f"-d{int(seconds + 2 * SAFETY_S)}s",
        "--timeout=30s",
        "-s",
        str(LUA),
        url,
        "--",
        str(image),
        str(seconds),
        str(stopped_w),
        str(-(-requests // concurrency) if requests else 0),
        str(pipeline_id),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=[stopped_w]
    )
    os.close(stopped_w)
    try:
        _wait_for_threads(stopped_r, concurrency, deadline=time.monotonic() + seconds + SAFETY_S)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=SAFETY_S)
    finally:
        os.close(stopped_r)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child reaped here
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    lines = [line for line in stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {stderr.strip() or stdout.strip()}")
    summary = json.loads(lines[-1][len("BENCH ") :])
    summary["statuses"] = _sum_statuses(summary["statuses"])
    return LoadResult(**summary, wrk_cpu_s=cpu)


def _sum_statuses(per_thread: str) -> str:
    """ "415:3,415:2,500:1" (one entry per wrk thread and status) -> "415:5,500:1"."""
    totals: dict[int, int] = {}
    for entry in filter(None, per_thread.split(",")):
        status, count = entry.split(":")
        totals[int(status)] = totals.get(int(status), 0) + int(count)
    return ",".join(f"{status}:{count}" for status, count in sorted(totals.items()))


def _wait_for_threads(fd: int, count: int, deadline: float) -> None:
    seen = 0
    while seen < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return  # a thread never got its last answer: wrk's SIGINT cuts it off
        chunk = os.read(fd, 4096)
        if not chunk:
            return  # wrk exited
        seen += len(chunk)
