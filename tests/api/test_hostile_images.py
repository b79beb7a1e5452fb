"""The hostile corpus (tests/fixtures/hostile_images.py), class by class, through
POST /process_image and POST /pipelines/preview: each file gets its status and problem type,
stores nothing, leaves no temporary file, and costs little (generous bounds: a refused file
must not be decoded; one that is decoded is at most the size of a real photo)."""

import pytest

from tests.fixtures.cost import measured, opencv_temp_files
from tests.fixtures.hostile_images import Hostile, corpus
from tests.fixtures.problems import assert_actionable_problem
from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory

CORPUS = corpus()
# A full decode of the largest file here (640x480) allocates ~1 MB; anything decoded from a
# lying header (7000x7000 would be 147 MB, 30000x30000 2.7 GB) blows far past these.
MAX_PEAK_MB = 32
MAX_CPU_S = 2.0  # a normal upload here costs ~10-30 ms of CPU


async def _send(client, route: str, case: Hostile):
    files = {"image": ("upload.jpg", case.data, "image/jpeg")}
    if route == "process":
        return await client.post("/process_image?pipeline_id=1", files=files)
    return await client.post("/pipelines/preview", data={"pipeline_id": "1"}, files=files)


@pytest.mark.parametrize("route", ["process", "preview"])
async def test_every_hostile_file_is_refused_cheaply(
    route: str, make_client: ClientFactory, db
) -> None:
    temp_before = opencv_temp_files()
    rows_before = await count_rows(db)
    failures, costs = [], {}
    async with make_client() as client:
        await _send(client, route, CORPUS["random bytes"])  # warm-up: first-request costs
        for name, case in CORPUS.items():
            with measured() as cost:
                response = await _send(client, route, case)
            costs[name] = cost
            try:
                body = assert_actionable_problem(response, case.status)
                assert body["type"] == f"/problems/{case.slug}", body
                assert case.words.lower() in body["detail"].lower(), body["detail"]
                assert cost.peak_mb < MAX_PEAK_MB, f"{cost.peak_mb:.1f} MB"
                assert cost.cpu_s < MAX_CPU_S, f"{cost.cpu_s:.2f} s CPU"
            except AssertionError as error:
                failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)
    assert await count_rows(db) == rows_before
    assert opencv_temp_files() <= temp_before
    peak, cpu = max(c.peak_mb for c in costs.values()), max(c.cpu_s for c in costs.values())
    print(f"\n{len(costs)} files: worst peak {peak:.2f} MB, worst CPU {cpu * 1000:.0f} ms")
