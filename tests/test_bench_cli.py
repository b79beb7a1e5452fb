"""The bench starts on a fresh install (every module it imports is a declared dependency) and
its compute floor is a real measurement. Speed itself is never asserted here."""

import base64
import subprocess
import sys

from bench import floor
from tests.processes import ROOT


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
