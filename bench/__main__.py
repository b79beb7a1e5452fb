"""The benchmark: the compute floor, then wrk against the running stack; one markdown table.

python -m bench              # what `make bench` runs: floor + 3 sizes x 3 concurrencies,
                             # then the fleet rows (HAProxy, 1 vs 2 replicas; bench/fleet.py)
python -m bench --memory     # what `make bench-memory` runs: RSS after 2,000 and 20,000
python -m bench --inserts    # the run-insert ceiling of one PostgreSQL (bench/inserts.py)
"""

import argparse
import asyncio
import contextlib
import os
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import cv2
import psutil
from PIL import Image

from bench import floor, growth, overload, sampling
from bench.pipelines import CAR_PIPELINE_ID, car_pipeline_with_decode
from bench.sampling import GROUPS, STAGES, TABLE_STAGES
from bench.stack import ROOT, Stack, running_stack
from bench.wrk import LoadResult, run_wrk
from pipeline_service.pipeline.decode_scale import decode_flag

IMAGE_DIRS = [ROOT.parent / "shared" / "images", ROOT.parents[1] / "shared" / "images"]
FAST_DECODE = "reduce: fast"  # the variant of the rows that use the opt-in fast decode


@dataclass(frozen=True)
class Floors:
    """Both floors, measured together with the stack idle (bench/floor.py)."""

    literal: floor.Floor  # in a new process with glibc's malloc defaults
    fault_free: floor.Floor  # in a new process with the services' allocator settings

    @staticmethod
    def mean(a: "Floors", b: "Floors") -> "Floors":
        return Floors(
            floor.Floor.mean(a.literal, b.literal), floor.Floor.mean(a.fault_free, b.fault_free)
        )


@dataclass(frozen=True)
class Row:
    image: str
    concurrency: int
    load: LoadResult
    floors_before: Floors  # measured just before the row, with the stack idle
    floors_after: Floors  # and just after it
    cpu_ms: dict[str, float]  # CPU ms per answer, per stage (sampling.STAGES) and wrk
    faults: dict[str, float]  # minor page faults per answer, per process group
    runs_stored: int
    variant: str = ""  # "" for the car pipeline as seeded, else what differs (FAST_DECODE)

    @property
    def floors(self) -> Floors:
        """The machine's speed drifts (other tenants): the row is compared with the floors
        measured around it, not with ones taken minutes earlier."""
        return Floors.mean(self.floors_before, self.floors_after)

    @property
    def ratio(self) -> float:
        """Throughput / fault-free floor: the headline."""
        return self.load.requests_per_s / self.floors.fault_free.requests_per_s

    @property
    def literal_ratio(self) -> float:
        """Throughput / literal floor."""
        return self.load.requests_per_s / self.floors.literal.requests_per_s

    @property
    def cpu_ratio(self) -> float:
        """The fault-free floor's CPU per image / all the CPU one request costs (services,
        PostgreSQL, wrk): the ratio throughput would reach on cores of its own. The machine
        is shared, and a single-threaded floor gets a larger share of it than the stack's
        dozen busy threads, so the throughput ratio drops whenever others run."""
        return self.floors.fault_free.cpu_ms_per_image / max(sum(self.cpu_ms.values()), 1e-9)


def find_images(directory: Path | None) -> Path:
    for candidate in [directory] if directory else IMAGE_DIRS:
        if candidate and (candidate / "parking_1920x1080.jpg").is_file():
            return candidate
    raise SystemExit("Sample photos not found: pass --images DIR (with parking_1920x1080.jpg).")


def per_process(
    stack: Stack, measure: Callable[[psutil.Process], float]
) -> dict[tuple[str, int], float]:
    values = {}
    for group, procs in stack.processes().items():
        for proc in procs:
            with contextlib.suppress(psutil.Error):  # gone in between
                values[group, proc.pid] = measure(proc)
    return values


def group_totals(stack: Stack, measure: Callable[[psutil.Process], float]) -> dict[str, float]:
    totals = dict.fromkeys(GROUPS, 0.0)
    for (group, _), value in per_process(stack, measure).items():
        totals[group] += value
    return totals


def rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


async def _count_runs(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM processing_runs")
    finally:
        await conn.close()


def count_runs(stack: Stack) -> int:
    return asyncio.run(_count_runs(stack.database_url))


def measure_floors(image: Path, seconds: float) -> Floors:
    return Floors(floor.measure_literal(image, seconds), floor.measure_fault_free(image, seconds))


def measured_run(
    stack: Stack,
    image: Path,
    concurrency: int,
    seconds: float,
    before: Floors,
    floor_seconds: float,
    pipeline_id: int = CAR_PIPELINE_ID,
    variant: str = "",
    url: str | None = None,
) -> Row:
    """One row: wrk for `seconds` against `url` (default: the stack's), then the floors again
    (`before` was measured just before)."""
    runs_before, sampled_before = count_runs(stack), sampling.snapshot(stack.processes())
    load = run_wrk(url or stack.url, image, concurrency, seconds, pipeline_id=pipeline_id)
    sampled_after = sampling.snapshot(stack.processes())
    runs_after = count_runs(stack)
    after = measure_floors(image, floor_seconds)
    answers = max(load.ok + load.failed, 1)
    used = sampling.cpu_by_stage(sampled_before, sampled_after)
    cpu_ms = {stage: used[stage] * 1000 / answers for stage in STAGES}
    cpu_ms["wrk"] = load.wrk_cpu_s * 1000 / answers
    faults = sampling.faults_by_group(sampled_before, sampled_after)
    per_answer = {group: faults[group] / answers for group in GROUPS}
    size = image.stem.removeprefix("parking_")
    return Row(
        size,
        concurrency,
        load,
        before,
        after,
        cpu_ms,
        per_answer,
        runs_after - runs_before,
        variant,
    )


HEADER = (
    "| image | concurrency | req/s | req/min | mean ms | p50 ms | p99 ms | errors "
    "| fault-free floor req/s (before / after) | **req/s / fault-free floor** "
    "| literal floor req/s (before / after) | req/s / literal floor | runs = 200s "
    "| page faults/req pipeline / model "
    "| CPU ms/req pipeline loop / pipeline threads / model / postgres / wrk "
    "| floor CPU ms / CPU ms per req |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- "
    "| --- | --- | ---: |"
)


def _floor_cell(mean: floor.Floor, before: floor.Floor, after: floor.Floor) -> str:
    return f"{mean.requests_per_s:.1f} ({before.requests_per_s:.0f} / {after.requests_per_s:.0f})"


def table_row(r: Row) -> str:
    load = r.load
    errors = f"{load.errors}" + (f" ({load.statuses})" if load.statuses else "")
    stored = "yes" if r.runs_stored == load.ok else f"**NO**: {r.runs_stored} runs, {load.ok} 200s"
    cpu = " / ".join(f"{r.cpu_ms[stage]:.1f}" for stage in (*TABLE_STAGES, "wrk"))
    faults = " / ".join(f"{r.faults[group]:,.0f}" for group in ("pipeline", "model"))
    image = f"{r.image}, {r.variant}" if r.variant else r.image
    fl, before, after = r.floors, r.floors_before, r.floors_after
    return (
        f"| {image} | {r.concurrency} | {load.requests_per_s:.1f} "
        f"| {load.requests_per_s * 60:,.0f} | {load.mean_ms:.1f} | {load.p50_ms:.1f} "
        f"| {load.p99_ms:.1f} | {errors} "
        f"| {_floor_cell(fl.fault_free, before.fault_free, after.fault_free)} "
        f"| **{r.ratio:.2f}** "
        f"| {_floor_cell(fl.literal, before.literal, after.literal)} "
        f"| {r.literal_ratio:.2f} "
        f"| {stored} | {faults} | {cpu} | {r.cpu_ratio:.2f} |"
    )


def floor_faults_line(rows: list[Row]) -> str:
    """The floors' own page faults per image, by photo: what makes the literal one slower."""
    seen: dict[str, Floors] = {}
    for r in rows:
        seen.setdefault(r.image, r.floors)
    parts = [
        f"{image} {fl.literal.faults_per_image:,.0f} / {fl.fault_free.faults_per_image:,.0f}"
        for image, fl in seen.items()
    ]
    return "floor page faults per image, literal / fault-free: " + ", ".join(parts)


# The performance targets (docs/performance.md): 1080p at c=32, and latency at c=8.
TARGET_IMAGE = "1920x1080"
TARGET_REQUESTS_PER_S = 150.0
TARGET_RATIO = 0.75  # of the fault-free floor
TARGET_P99_MS = 150.0
TARGET_P99_OVER_MEAN = 2.0


def target_lines(rows: list[Row]) -> list[str]:
    """Each target against the rows that measure it; rows not run are not judged."""
    lines = []
    for r in rows:
        if r.image != TARGET_IMAGE or r.variant:
            continue
        if r.concurrency == 32:
            lines.append(
                f"target {TARGET_IMAGE} c=32 >= {TARGET_REQUESTS_PER_S:g} req/s: "
                f"{_verdict(r.load.requests_per_s >= TARGET_REQUESTS_PER_S)} "
                f"({r.load.requests_per_s:.1f}; this machine's fault-free floor: "
                f"{r.floors.fault_free.requests_per_s:.1f})"
            )
            lines.append(
                f"target {TARGET_IMAGE} c=32 >= {TARGET_RATIO:g} of the fault-free floor: "
                f"{_verdict(r.ratio >= TARGET_RATIO)} ({r.ratio:.2f}; by CPU: {r.cpu_ratio:.2f})"
            )
        if r.concurrency == 8:
            lines.append(
                f"target {TARGET_IMAGE} c=8 p99 < {TARGET_P99_MS:g} ms: "
                f"{_verdict(r.load.p99_ms < TARGET_P99_MS)} ({r.load.p99_ms:.1f})"
            )
            lines.append(
                f"target {TARGET_IMAGE} c=8 p99 <= {TARGET_P99_OVER_MEAN:g} x mean: "
                f"{_verdict(r.load.p99_ms <= TARGET_P99_OVER_MEAN * r.load.mean_ms)} "
                f"({r.load.p99_ms:.1f} / {r.load.mean_ms:.1f} = "
                f"{r.load.p99_ms / max(r.load.mean_ms, 1e-9):.2f})"
            )
    errors = sum(r.load.errors for r in rows)
    stored = all(r.runs_stored == r.load.ok for r in rows)
    lines.append(f"zero errors, runs = 200s: {_verdict(errors == 0 and stored)}")
    return lines


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"


def print_floors(images: Path, sizes: list[str], seconds: float) -> None:
    """Printed before the stack starts, with what the reduced decodes change; each row then
    measures its own floors around it."""
    for size in sizes:
        path = images / f"parking_{size}.jpg"
        data = path.read_bytes()
        floors = measure_floors(path, seconds)
        line = f"floor {size}: " + "; ".join(
            f"{name} {fl.ms_per_image:.2f} ms/image on one thread ({fl.cpu_ms_per_image:.2f} "
            f"ms CPU, {fl.faults_per_image:,.0f} page faults/image) -> "
            f"{fl.requests_per_s:.1f} req/s on {fl.cores} cores"
            for name, fl in (("literal", floors.literal), ("fault-free", floors.fault_free))
        )
        with Image.open(path) as header:
            for reduce in ("auto", "fast"):
                flag, scale = decode_flag("color", data, header.size, (640, 640), reduce)
                if scale > 1:
                    reduced = floor.measure_fault_free(path, seconds, flag)
                    line += (
                        f"; fault-free with the 1/{scale} decode of reduce: {reduce}: "
                        f"{reduced.ms_per_image:.2f} ms ({reduced.cpu_ms_per_image:.2f} ms CPU) "
                        f"-> {reduced.requests_per_s:.1f} req/s"
                    )
        print(line, flush=True)


def throughput(args: argparse.Namespace, images: Path) -> None:
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    fast_sizes = [s.strip() for s in args.fast_sizes.split(",") if s.strip()]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    print_floors(images, sizes, args.floor_seconds)
    rows: list[Row] = []
    with (
        admission_out_of_the_way(max([*concurrencies, args.fast_concurrency])),
        running_stack(args.port, args.workers, args.model_workers) as stack,
    ):
        fast_id = car_pipeline_with_decode(stack.url, "bench-fast-decode", reduce="fast")
        print(HEADER, flush=True)
        for size in sizes:
            image = images / f"parking_{size}.jpg"
            run_wrk(stack.url, image, max(concurrencies), args.warmup)
            before = measure_floors(image, args.floor_seconds)
            runs = [(c, CAR_PIPELINE_ID, "") for c in concurrencies]
            if size in fast_sizes:
                run_wrk(stack.url, image, args.fast_concurrency, 2, pipeline_id=fast_id)
                runs.append((args.fast_concurrency, fast_id, FAST_DECODE))
            for concurrency, pipeline_id, variant in runs:
                row = measured_run(
                    stack,
                    image,
                    concurrency,
                    args.seconds,
                    before,
                    args.floor_seconds,
                    pipeline_id,
                    variant,
                )
                rows.append(row)
                before = row.floors_after
                print(table_row(row), flush=True)
    overloaded = None
    if args.overload_seconds > 0:  # a stack of its own, with the admission limit as configured
        with running_stack(args.port, args.workers, args.model_workers) as stack:
            overloaded = _overload_row(stack, images, args.overload_seconds)
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; {args.seconds:g} s per row; "
        f"workers: pipeline {args.workers}, model {args.model_workers}\n"
    )
    print(HEADER)
    print("\n".join(table_row(r) for r in rows))
    print("\n".join(["", floor_faults_line(rows), *target_lines(rows)]))
    if overloaded is not None:
        print(f"\nOverload ({overload.CONCURRENCY} connections, {args.overload_seconds:g} s):\n")
        print(overload.HEADER)
        print(overload.table_row(OVERLOAD_IMAGE, overloaded))
    if any(r.runs_stored != r.load.ok or r.load.errors for r in rows):
        raise SystemExit("errors, or runs stored that do not match the 200 answers (see above)")
    if overloaded is not None and not overload.judged(overloaded):
        raise SystemExit("overload row: errors, failed probes or runs != 200s (see above)")


OVERLOAD_IMAGE = "1920x1080"


@contextlib.contextmanager
def admission_out_of_the_way(concurrency: int) -> Iterator[None]:
    """The throughput and memory rows measure capacity, so the stack they start admits every
    connection they open (a worker may get most of them); the admission limit itself is
    measured by the overload row, on a stack of its own. An ADMIT_IMAGE_REQUESTS set in the
    environment is kept."""
    if "ADMIT_IMAGE_REQUESTS" in os.environ:
        yield
        return
    os.environ["ADMIT_IMAGE_REQUESTS"] = str(concurrency)
    try:
        yield
    finally:
        del os.environ["ADMIT_IMAGE_REQUESTS"]


def _overload_row(stack: Stack, images: Path, seconds: float) -> overload.OverloadResult:
    """The overload row, after the others (bench/overload.py)."""
    image = images / f"parking_{OVERLOAD_IMAGE}.jpg"
    result = overload.run_overload(stack.url, image, seconds, lambda: count_runs(stack))
    print(overload.HEADER, flush=True)
    print(overload.table_row(OVERLOAD_IMAGE, result), flush=True)
    return result


def memory(args: argparse.Namespace, images: Path) -> None:
    """RSS of each service after the first 10 % of the requests and after all of them (the
    check), read after every further 10 % as well, to tell growth from noise."""
    image = images / "parking_1920x1080.jpg"
    concurrency = int(args.concurrency.split(",")[0]) if args.concurrency_given else 32
    bound_s = 1800.0  # a safety bound: 20,000 requests take 3-6 min here
    step = args.requests // 10
    readings: list[tuple[int, dict[str, float]]] = []
    answers = ok = errors = 0
    with (
        admission_out_of_the_way(concurrency),
        running_stack(args.port, args.workers, args.model_workers) as stack,
    ):
        runs_before = count_runs(stack)
        for _ in range(10):
            load = run_wrk(stack.url, image, concurrency, bound_s, requests=step)
            answers += load.ok + load.failed
            ok += load.ok
            errors += load.errors
            readings.append((answers, group_totals(stack, rss_mb)))
            if len(readings) == 1:
                sampled_first = sampling.snapshot(stack.processes())
            rss = readings[-1][1]
            print(
                f"RSS MiB after {answers:,}: pipeline {rss['pipeline']:.1f}, "
                f"model {rss['model']:.1f}",
                file=sys.stderr,
                flush=True,
            )
        faults = sampling.faults_by_group(sampled_first, sampling.snapshot(stack.processes()))
        per_process_rss = per_process(stack, rss_mb)
        runs = count_runs(stack) - runs_before
    (first_n, first), (last_n, last) = readings[0], readings[-1]
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; {image.name}, c={concurrency}\n")
    print(
        f"| service | RSS MiB after {first_n:,} | RSS MiB after {last_n:,} | growth "
        "| lowest - highest after each 10 % |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    failed = errors > 0 or runs != ok
    for group in ("pipeline", "model"):
        growth = last[group] / first[group] - 1
        failed |= growth > 0.10
        values = [r[group] for _, r in readings]
        print(
            f"| {group} | {first[group]:.1f} | {last[group]:.1f} | {growth:+.1%} "
            f"| {min(values):.1f} - {max(values):.1f} |"
        )
    steady = answers - readings[0][0]
    print(
        "\nRSS MiB per process at the end: "
        + ", ".join(
            f"{group} {pid}: {value:.1f}"
            for (group, pid), value in sorted(per_process_rss.items())
            if group != "postgres"
        )
    )
    print(
        f"page faults per request after the first 10 %: pipeline "
        f"{faults['pipeline'] / steady:,.1f}, model {faults['model'] / steady:,.1f}"
    )
    print(f"errors: {errors}; runs stored {runs}, 200 answers {ok}")
    if failed:
        raise SystemExit("memory grew more than 10%, or errors, or runs != 200 answers")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--memory", action="store_true", help="the memory-growth check instead")
    parser.add_argument(
        "--requests", type=int, default=20_000, help="memory: RSS after 10%% and after all"
    )
    parser.add_argument("--images", type=Path, help="folder with parking_<W>x<H>.jpg")
    parser.add_argument("--sizes", default="1920x1080,1280x720,3840x2160")
    parser.add_argument(
        "--fast-sizes",
        default="1920x1080",
        help="photos (of --sizes) that get one more row through a copy of the car pipeline "
        "with decode reduce: fast ('' for none)",
    )
    parser.add_argument(
        "--fast-concurrency", type=int, default=32, help="the concurrency of that row"
    )
    parser.add_argument("--concurrency", help="comma-separated (default 8,32,64; memory: 32)")
    parser.add_argument("--seconds", type=float, default=20, help="length of each measured run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of warm-up per image")
    parser.add_argument("--floor-seconds", type=float, default=3)
    parser.add_argument(
        "--overload-seconds",
        type=float,
        default=20,
        help="length of the overload row (c=256, bench/overload.py); 0 skips it",
    )
    parser.add_argument("--port", type=int, default=18700, help="pipeline port; model = +1")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("PIPELINE_WORKERS") or os.cpu_count() or 1),
        help="pipeline service uvicorn workers (default: $PIPELINE_WORKERS, else one per core)",
    )
    parser.add_argument(
        "--model-workers",
        type=int,
        default=int(os.environ.get("MODEL_WORKERS") or 1),
        help="model service uvicorn workers (default: $MODEL_WORKERS, else 1)",
    )
    parser.add_argument("--fleet", action="store_true", help="only the fleet rows")
    parser.add_argument("--no-fleet", action="store_true", help="without the fleet rows")
    parser.add_argument(
        "--inserts", action="store_true", help="the run-insert ceiling of PostgreSQL instead"
    )
    growth.add_arguments(parser)
    args = parser.parse_args()
    args.concurrency_given = args.concurrency is not None
    args.concurrency = args.concurrency or "8,32,64"
    cv2.setNumThreads(1)
    if args.inserts:
        from bench import inserts

        inserts.run(args.seconds, args.concurrency if args.concurrency_given else None)
        return
    images = find_images(args.images)
    if args.growth:
        with admission_out_of_the_way(growth.CONCURRENCY):
            growth.run(args, images)
        return
    if args.memory:
        memory(args, images)
        return
    if not args.fleet:
        throughput(args, images)
    if not args.no_fleet:
        from bench import fleet

        with admission_out_of_the_way(fleet.CONCURRENCY):  # they measure capacity too
            fleet.run(args, images, measured_run, measure_floors)


if __name__ == "__main__":
    main()
