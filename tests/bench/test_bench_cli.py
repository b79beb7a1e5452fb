"""The bench starts on a fresh install (every module it imports is a declared dependency) and
its compute floor is a real measurement. Speed itself is never asserted here."""

import base64
import mmap
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import httpx
import psutil
import pytest

from bench import floor, sampling
from bench.__main__ import HEADER, Floors, Row, floor_faults_line, table_row, target_lines
from bench.stack import log_path, running_stack
from bench.wrk import LoadResult
from tests.fixtures.processes import ROOT, free_port

pytestmark = pytest.mark.subprocess


def test_bench_command_starts_with_the_declared_dependencies() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "--concurrency" in result.stdout and "--memory" in result.stdout


def test_floor_times_the_car_pipelines_cpu_work_on_a_real_photo() -> None:
    data = (ROOT / "samples" / "parking_1280x720.jpg").read_bytes()
    # The work timed is the whole car pipeline: 640x640 BGR pixels, base64-encoded.
    assert len(base64.b64decode(floor.car_pipeline_work(data), validate=True)) == 640 * 640 * 3
    measured = floor.measure(data, 0.2)
    assert measured.ms_per_image > 0


def test_the_fault_free_floor_decodes_as_the_service_does_to_the_same_pixels() -> None:
    """The headline floor times the service's own decode (libjpeg-turbo in strict mode), the
    literal one cv2.imdecode: the same library, the same pixels, so the same work."""
    data = (ROOT / "samples" / "parking_1280x720.jpg").read_bytes()
    reduced = cv2.IMREAD_REDUCED_COLOR_2
    assert floor.car_pipeline_work(data, decoder="service") == floor.car_pipeline_work(data)
    assert floor.car_pipeline_work(data, reduced, "service") == floor.car_pipeline_work(
        data, reduced
    )


def test_a_stack_that_cannot_start_stops_the_bench_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(SystemExit, match="stopped before it was ready"),
            running_stack(port, 1, 1, data_dir=tmp_path / "bench"),
        ):
            pytest.fail("the stack cannot be ready: its port is taken")
    # The services' output went to the log, and its tail, with the reason, to the terminal.
    assert "already in use" in log_path(tmp_path / "bench").read_text()
    assert "already in use" in capsys.readouterr().err


def port_pair() -> int:
    """A free port whose next one is free too (the bench puts the model service there)."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port + 1)) != 0:
                return port


def test_the_stack_starts_on_a_fresh_data_directory(tmp_path: Path) -> None:
    """What `make bench` does on a new machine: the embedded PostgreSQL is created in the
    data directory, and the services answer; their log lines go beside it."""
    data_dir = tmp_path / "bench"
    with running_stack(port_pair(), 1, 1, data_dir=data_dir) as stack:
        answer = httpx.get(f"{stack.url}/readyz", timeout=10)
        assert answer.status_code == 200, answer.text
        assert stack.processes()["pipeline"] and stack.processes()["model"]
    assert (data_dir / "PG_VERSION").is_file()
    assert '"logger":"access"' in log_path(data_dir).read_text()


def bench_row(
    concurrency: int, requests_per_s: float, p99_ms: float, floor_ms: float, mean_ms: float = 0
) -> Row:
    seconds = 10.0
    ok = round(requests_per_s * seconds)
    mean_ms = mean_ms or p99_ms / 2
    load = LoadResult(ok, 0, "", 0, seconds, mean_ms, p99_ms / 2, p99_ms, p99_ms, p99_ms, 0.0)
    literal = floor.Floor(floor_ms * 1.5, 2, 2000.0)
    floors = Floors(literal, floor.Floor(floor_ms, 2, 0.0, floor_ms * 0.9))
    cpu_ms = {"loop": 3.0, "threads": 9.0, "model": 1.0, "postgres": 1.0, "wrk": 1.0}
    return Row("1920x1080", concurrency, load, floors, floors, cpu_ms, {}, ok)


def test_the_targets_are_judged_on_the_rows_that_measure_them() -> None:
    rows = [
        bench_row(8, 140.0, 120.0, floor_ms=10.0, mean_ms=57.0),  # fault-free floor 200 req/s
        bench_row(32, 151.0, 400.0, floor_ms=10.0),
    ]
    assert target_lines(rows) == [
        "target 1920x1080 c=8 p99 < 150 ms: met (120.0)",
        "target 1920x1080 c=8 p99 <= 2 x mean: NOT met (120.0 / 57.0 = 2.11)",
        "target 1920x1080 c=32 >= 150 req/s: met (151.0; this machine's fault-free floor: 200.0)",
        "target 1920x1080 c=32 >= 0.75 of the fault-free floor: met (0.76; by CPU: 0.60)",
        "zero errors, runs = 200s: met",
    ]
    slow = [bench_row(8, 60.0, 190.0, 20.0), bench_row(32, 65.0, 600.0, 20.0)]
    assert [line.split(": ")[1].split(" (")[0] for line in target_lines(slow)] == [
        "NOT met",
        "met",  # p99 = 2 x mean
        "NOT met",
        "NOT met",  # 65 of a 100 req/s floor
        "met",
    ]
    # A row of a variant (the fast decode) is shown, not judged.
    fast = replace(bench_row(32, 10.0, 400.0, 10.0), variant="reduce: fast")
    assert len(target_lines([fast])) == 1


def test_the_table_shows_both_floors_and_the_faults() -> None:
    row = replace(
        bench_row(32, 151.0, 400.0, floor_ms=10.0),
        cpu_ms={"loop": 3.0, "threads": 9.0, "model": 1.0, "postgres": 0.7, "wrk": 0.3},
        faults={"pipeline": 12.0, "model": 0.0, "postgres": 1.0},
    )
    cells = [cell.strip() for cell in table_row(row).split("|")[1:-1]]
    assert len(cells) == len(HEADER.splitlines()[0].split("|")[1:-1])
    assert cells[8:12] == ["200.0 (200 / 200)", "**0.76**", "133.3 (133 / 133)", "1.13"]
    assert cells[-3:] == ["12 / 0", "3.0 / 9.0 / 1.0 / 0.7 / 0.3", "0.64"]  # 9 of 14 ms
    assert "2,000 / 0" in floor_faults_line([row])


def test_page_faults_and_cpu_are_read_per_process_and_stage() -> None:
    me = psutil.Process()
    before = sampling.snapshot({"pipeline": [me], "model": [], "postgres": []})
    # 16 MiB of fresh pages, touched: faults, and CPU. (A bytearray may come from memory the
    # process already has, after earlier tests freed theirs: no fault at all.)
    with mmap.mmap(-1, 16 * 2**20) as pages:
        for offset in range(0, len(pages), mmap.PAGESIZE):
            pages[offset] = 1
        after = sampling.snapshot({"pipeline": [me], "model": [], "postgres": []})
    assert sampling.faults_by_group(before, after)["pipeline"] > 0
    used = sampling.cpu_by_stage(before, after)
    assert used["loop"] >= 0 and used["threads"] >= 0 and used["model"] == 0


def test_the_fault_free_floor_runs_with_the_services_allocator_settings() -> None:
    """The fault-free floor's process is configured like the services: its image work reuses
    its buffers instead of faulting them in again, as the literal floor's does (a count of
    page faults, not a time)."""
    photo = ROOT / "samples" / "parking_1280x720.jpg"
    fault_free, literal = floor.measure_fault_free(photo, 0.3), floor.measure_literal(photo, 0.3)
    assert fault_free.ms_per_image > 0 and fault_free.cpu_ms_per_image > 0
    assert fault_free.faults_per_image < 50, fault_free
    assert literal.faults_per_image > 500, literal  # glibc's defaults: ~1,700
