"""The overload row: 256 connections upload as fast as they are answered (wrk, no one waits
for Retry-After) while a prober checks /healthz and /readyz every 100 ms on a new connection
each time, as an orchestrator does. Reports admitted req/s, the share shed (503 overloaded),
the p99 of the admitted requests, the worst health-check latencies, and runs == 200s."""

import http.client
import json
import os
import resource
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.wrk import SAFETY_S, require_wrk

LUA = Path(__file__).with_name("overload.lua")
CONCURRENCY = 256
PROBE_EVERY_S = 0.1


@dataclass
class Probes:
    healthz_ms: list[float] = field(default_factory=list)
    readyz_ms: list[float] = field(default_factory=list)
    failures: int = 0


@dataclass(frozen=True)
class OverloadResult:
    ok: int
    shed: int
    other: int
    socket_errors: int
    seconds: float
    admitted_ms: list[float]
    probes: Probes
    runs_stored: int
    wrk_cpu_s: float

    @property
    def admitted_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def shed_share(self) -> float:
        answers = self.ok + self.shed + self.other
        return self.shed / answers if answers else 0.0

    @property
    def admitted_p99_ms(self) -> float:
        ordered = sorted(self.admitted_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def _probe_forever(url: str, stop: threading.Event, probes: Probes) -> None:
    address = urlsplit(url)
    while not stop.is_set():
        for path, seen in (("/healthz", probes.healthz_ms), ("/readyz", probes.readyz_ms)):
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(address.netloc, timeout=10)
                conn.request("GET", path)
                status = conn.getresponse().status
                conn.close()
            except OSError:
                status = 0
            seen.append((time.perf_counter() - started) * 1000)
            probes.failures += status != 200
        stop.wait(PROBE_EVERY_S)


def run_overload(url: str, image: Path, seconds: float, count_runs: object) -> OverloadResult:
    """wrk at CONCURRENCY connections for `seconds`, the prober beside it."""
    assert callable(count_runs)
    stopped_r, stopped_w = os.pipe()
    # wrk's 256 busy threads would take most of the 2 cores from the 6 or so threads of the
    # service under test (the scheduler is fair per thread); real clients are elsewhere.
    # At the lowest priority it still sends as fast as the service answers.
    command = [
        "nice", "-n", "19",
        require_wrk(), f"-t{CONCURRENCY}", f"-c{CONCURRENCY}",
        f"-d{int(seconds + 2 * SAFETY_S)}s", "--timeout=30s", "-s", str(LUA), url, "--",
        str(image), str(seconds), str(stopped_w),
    ]  # fmt: skip
    runs_before = count_runs()
    probes, stop = Probes(), threading.Event()
    prober = threading.Thread(target=_probe_forever, args=(url, stop, probes), daemon=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=[stopped_w]
    )
    os.close(stopped_w)
    prober.start()
    try:
        _wait(stopped_r, CONCURRENCY, time.monotonic() + seconds + SAFETY_S)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=SAFETY_S)
    finally:
        stop.set()
        prober.join()
        os.close(stopped_r)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in stdout.splitlines() if line.startswith("OVERLOAD ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {stderr.strip() or stdout.strip()}")
    summary = json.loads(lines[-1][len("OVERLOAD ") :])
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return OverloadResult(
        **summary, probes=probes, runs_stored=count_runs() - runs_before, wrk_cpu_s=cpu
    )


def _wait(fd: int, count: int, deadline: float) -> None:
    seen = 0
    while seen < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        seen += len(chunk)


HEADER = (
    "| image | concurrency | admitted req/s | shed | p99 admitted ms | /healthz ms median / worst "
    "| /readyz ms median / worst | other errors | runs = 200s |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
)


def _median_worst(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:.0f} / {ordered[-1]:.0f}"


def table_row(image: str, r: OverloadResult) -> str:
    stored = "yes" if r.runs_stored == r.ok else f"**NO**: {r.runs_stored} runs, {r.ok} 200s"
    errors = r.other + r.socket_errors + r.probes.failures
    return (
        f"| {image} | {CONCURRENCY} | {r.admitted_per_s:.1f} | {r.shed_share:.0%} "
        f"| {r.admitted_p99_ms:.0f} | {_median_worst(r.probes.healthz_ms)} "
        f"| {_median_worst(r.probes.readyz_ms)} | {errors} | {stored} |"
    )


def judged(r: OverloadResult) -> bool:
    """No error of any kind, every 200 has its run, every probe answered 200."""
    return r.other + r.socket_errors + r.probes.failures == 0 and r.runs_stored == r.ok
