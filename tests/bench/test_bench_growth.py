"""python -m bench --growth at a tiny size: it fills, measures every filter, the walk, GET by
id, the insert path and a retention pass, and prints its tables. Speed is never asserted."""

import argparse
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import growth
from bench.__main__ import admission_out_of_the_way
from tests.fixtures.processes import ROOT, free_port

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Beside /tmp's other directories: the embedded PostgreSQL runs as a user of its own,
    who must be able to reach it (pytest's tmp_path is private to root)."""
    parent = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    parent.chmod(0o755)
    try:
        yield parent / "pg"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_the_growth_bench_runs_at_a_tiny_size(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    parser = argparse.ArgumentParser()
    growth.add_arguments(parser)
    args = parser.parse_args(
        [
            "--growth",
            "--growth-sizes=0,0.003",
            "--growth-days=3",
            "--growth-requests=2",
            "--growth-baseline-runs=3000",
        ]
    )
    args.port, args.workers, args.model_workers, args.seconds = free_port(), 1, 1, 1.0
    with admission_out_of_the_way(growth.CONCURRENCY):
        growth.run(args, ROOT / "samples", data_dir=data_dir)
    out = capsys.readouterr().out
    assert "schema of migration 0004 (3,000 runs" in out
    # 3,000 synthetic runs, plus those the insert measurement at 0 stored
    assert "### 0 runs" in out and re.search(r"### 3,\d{3} runs", out)
    for name in growth.filters(growth.date.today(), 2):
        assert f"| {name} |" in out
    assert "20-page walk" in out and "GET /results/{id}" in out
    assert "retention pass: dropped [datetime.date(" in out
    assert "| with the retention pass |" in out
