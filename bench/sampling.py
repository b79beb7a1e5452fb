"""What each process of the stack used between two moments: CPU seconds (the pipeline
workers' event loop apart from their other threads) and minor page faults, from /proc."""

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

GROUPS = ("pipeline", "model", "postgres", "haproxy")
# CPU per request by stage: the pipeline workers' event loop (their main thread) and their
# other threads (the image threads, nearly all of it), the model service, PostgreSQL, and the
# load balancer of a fleet (bench/fleet.py).
STAGES = ("loop", "threads", "model", "postgres", "haproxy")
TABLE_STAGES = STAGES[:-1]  # the main table's stacks have no load balancer


@dataclass(frozen=True)
class Sample:
    cpu_s: float
    main_thread_cpu_s: float
    minor_faults: int


Snapshot = dict[tuple[str, int], Sample]


def minor_faults(pid: int) -> int:
    """Field 10 of /proc/<pid>/stat (after the command name, which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[7])


def sample(proc: psutil.Process) -> Sample:
    with proc.oneshot():
        times = proc.cpu_times()
        main = next((t for t in proc.threads() if t.id == proc.pid), None)
    return Sample(
        times.user + times.system,
        main.user_time + main.system_time if main else 0.0,
        minor_faults(proc.pid),
    )


def snapshot(groups: dict[str, list[psutil.Process]]) -> Snapshot:
    values = {}
    for group, procs in groups.items():
        for proc in procs:
            with contextlib.suppress(psutil.Error, OSError):  # gone in between
                values[group, proc.pid] = sample(proc)
    return values


def _delta(before: Snapshot, after: Snapshot) -> Iterable[tuple[str, Sample]]:
    """Per process, what it used in between; a process that ended in between (an overflow
    database connection) is not counted, one that started is counted in full."""
    zero = Sample(0.0, 0.0, 0)
    for key, now in after.items():
        then = before.get(key, zero)
        yield (
            key[0],
            Sample(
                now.cpu_s - then.cpu_s,
                now.main_thread_cpu_s - then.main_thread_cpu_s,
                now.minor_faults - then.minor_faults,
            ),
        )


def cpu_by_stage(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per stage (STAGES) between two snapshots."""
    used = dict.fromkeys(STAGES, 0.0)
    for group, delta in _delta(before, after):
        if group == "pipeline":
            used["loop"] += delta.main_thread_cpu_s
            # The process's and its main thread's times are read one after the other, in
            # 10 ms ticks: the difference may come out a tick below zero.
            used["threads"] += max(delta.cpu_s - delta.main_thread_cpu_s, 0.0)
        else:
            used[group] += delta.cpu_s
    return used


def faults_by_group(before: Snapshot, after: Snapshot) -> dict[str, int]:
    faults = dict.fromkeys(GROUPS, 0)
    for group, delta in _delta(before, after):
        faults[group] += delta.minor_faults
    return faults
