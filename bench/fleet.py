"""The fleet rows of `make bench`: 1080p at c=32 on the same two cores,

- one replica of 2 workers, wrk straight at it, then the same replica through HAProxy: what
  the load balancer costs (the ratio of the two, each against the floor measured around it);
- two replicas of 1 worker each behind HAProxy: what splitting the cores into replicas costs.

Then what each tier costs per request (CPU ms, from the stack's processes), and the cores each
tier needs per 10,000 requests a minute (docs/scaling.md).
"""

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.stack import running_stack
from bench.wrk import run_wrk

if TYPE_CHECKING:
    from bench.__main__ import Floors, Row

IMAGE = "parking_1920x1080.jpg"
CONCURRENCY = 32
PER_MINUTE = 10_000
TIERS = ("pipeline", "model", "postgres", "haproxy")

HEADER = (
    "| setup | req/s | p50 ms | p99 ms | errors | fault-free floor req/s "
    "| req/s / fault-free floor | vs direct "
    "| runs = 200s | CPU ms/req pipeline / model / postgres / haproxy / wrk |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
)


def run(
    args: argparse.Namespace,
    images: Path,
    measured_run: Callable[..., "Row"],
    measure_floors: Callable[[Path, float], "Floors"],
) -> None:
    image = images / IMAGE
    measure_floor = partial(measure_floors, image, args.floor_seconds)
    rows: list[tuple[str, Row]] = []
    print(f"\nfleet rows: {IMAGE}, c={CONCURRENCY}, {args.seconds:g} s each", flush=True)
    with running_stack(args.port, 2, args.model_workers, replicas=1) as stack:
        run_wrk(stack.url, image, CONCURRENCY, args.warmup)
        before = measure_floor()
        direct = measured_run(
            stack,
            image,
            CONCURRENCY,
            args.seconds,
            before,
            args.floor_seconds,
            url=stack.replica_url(),
        )
        rows.append(("direct: 1 replica x 2 workers", direct))
        behind = measured_run(
            stack, image, CONCURRENCY, args.seconds, direct.floors_after, args.floor_seconds
        )
        rows.append(("HAProxy: 1 replica x 2 workers", behind))
    with running_stack(args.port, 1, args.model_workers, replicas=2) as stack:
        run_wrk(stack.url, image, CONCURRENCY, args.warmup)
        two = measured_run(
            stack, image, CONCURRENCY, args.seconds, measure_floor(), args.floor_seconds
        )
        rows.append(("HAProxy: 2 replicas x 1 worker", two))

    print("\n" + HEADER)
    for label, row in rows:
        print(table_row(label, row, direct))
    print(
        "\nload balancer overhead (HAProxy / direct, same replica): "
        f"{behind.ratio / direct.ratio:.3f}; 2 replicas x 1 worker / 1 replica x 2 workers "
        f"(both via HAProxy): {two.ratio / behind.ratio:.3f}"
    )
    print("\n".join(capacity_lines(two)))
    if any(r.runs_stored != r.load.ok or r.load.errors for _, r in rows):
        raise SystemExit("fleet rows: errors, or runs stored that do not match the 200 answers")


def table_row(label: str, r: "Row", direct: "Row") -> str:
    load = r.load
    stored = "yes" if r.runs_stored == load.ok else f"**NO**: {r.runs_stored} runs, {load.ok} 200s"
    per_tier = tier_cpu_ms(r)
    cpu = " / ".join(f"{per_tier[tier]:.2f}" for tier in TIERS) + f" / {r.cpu_ms['wrk']:.2f}"
    return (
        f"| {label} | {load.requests_per_s:.1f} | {load.p50_ms:.1f} | {load.p99_ms:.1f} "
        f"| {load.errors} | {r.floors.fault_free.requests_per_s:.1f} | {r.ratio:.2f} "
        f"| {r.ratio / direct.ratio:.3f} | {stored} | {cpu} |"
    )


def tier_cpu_ms(row: Any) -> dict[str, float]:
    """CPU ms per request of each tier; the pipeline service is its event loops and threads."""
    cpu = row.cpu_ms
    return {"pipeline": cpu["loop"] + cpu["threads"], **{t: cpu[t] for t in TIERS[1:]}}


def capacity_lines(row: Any) -> list[str]:
    """Cores each tier needs for 10,000 requests a minute, from its CPU per request."""
    per_second = PER_MINUTE / 60
    per_tier = tier_cpu_ms(row)
    cores = {tier: per_tier[tier] * per_second / 1000 for tier in TIERS}
    parts = ", ".join(f"{tier} {cores[tier]:.2f}" for tier in TIERS)
    return [
        f"cores per {PER_MINUTE:,} requests/min (CPU ms/req x {per_second:.1f} req/s): {parts}; "
        f"total {sum(cores.values()):.2f}"
    ]
