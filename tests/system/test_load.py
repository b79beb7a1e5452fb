"""A few hundred concurrent requests — good images, retries with a key, bad inputs — with model
failures switched on; then the rows must match the answers exactly."""

import asyncio
import hashlib
import os
import random
import uuid
from dataclasses import dataclass

import httpx

from tests.fixtures.images import jpeg_declaring, unique_jpeg
from tests.fixtures.services import ClientFactory, model_transport


@dataclass
class Sent:
    kind: str
    image: bytes
    pipeline_id: str
    key: str | None = None
    response: httpx.Response | None = None

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.image).hexdigest()


def corpus() -> list[Sent]:
    sent = [Sent("good", unique_jpeg(i), "1") for i in range(180)]
    for i in range(15):  # a client retrying each of these once, at the same time
        image, key = unique_jpeg(1000 + i), str(uuid.uuid4())
        sent += [Sent("keyed", image, "1", key), Sent("keyed", image, "1", key)]
    truncated = unique_jpeg(2000)
    for i in range(15):
        sent += [
            Sent("bad", b"", "1"),
            Sent("bad", os.urandom(2048 + i), "1"),
            Sent("bad", truncated[: len(truncated) // 2 + i], "1"),
            Sent("bad", unique_jpeg(3000 + i), "abc"),
            Sent("bad", unique_jpeg(4000 + i), "2147483000"),  # no such pipeline
            Sent("bad", jpeg_declaring(30000, 30000 + i), "1"),
        ]
    random.Random(5).shuffle(sent)
    return sent


async def send(client: httpx.AsyncClient, item: Sent) -> None:
    headers = {"Idempotency-Key": item.key} if item.key else {}
    item.response = await client.post(
        "/process_image",
        params={"pipeline_id": item.pipeline_id},
        files={"image": ("x.jpg", item.image, "image/jpeg")},
        headers=headers,
    )


async def test_rows_match_answers_after_concurrent_mixed_load(
    make_client: ClientFactory, db
) -> None:
    sent = corpus()
    assert len(sent) == 300
    first_new_id = await db.fetchval("SELECT coalesce(max(id), 0) + 1 FROM processing_runs")
    model = model_transport(latency_ms=20, failure_rate=0.15, bad_answer_rate=0.05, seed=3)
    async with make_client(
        model=model, model_breaker_failures=4, model_breaker_reset_s=0.1, db_pool_size=5
    ) as client:
        await asyncio.gather(*(send(client, item) for item in sent))

    answers = [(item, item.response) for item in sent]
    assert all(r is not None for _, r in answers)
    statuses = [r.status_code for _, r in answers]
    assert 500 not in statuses  # no bug path
    ok = [(i, r) for i, r in answers if r.status_code == 200]
    failed = [(i, r) for i, r in answers if r.status_code >= 500]
    refused = [(i, r) for i, r in answers if 400 <= r.status_code < 500]
    assert ok and failed and refused, statuses  # the mix really happened
    assert all(i.kind == "bad" for i, _ in refused)
    assert all(i.kind != "bad" for i, _ in ok + failed)
    assert all("run_id" in r.json() for _, r in failed)  # the database was up: all recorded
    assert {r.status_code for _, r in failed} <= {502, 503}

    rows = await db.fetch(
        "SELECT r.id, r.status, encode(r.image_sha256, 'hex') AS image_sha256, "
        "  r.car_detected, r.error, "
        "  (SELECT count(*) FROM detections d WHERE d.run_id = r.id) AS boxes "
        "FROM processing_runs r WHERE r.id >= $1",
        first_new_id,
    )
    by_id = {row["id"]: row for row in rows}
    succeeded_ids = {r.json()["run_id"] for _, r in ok}
    failed_ids = [r.json()["run_id"] for _, r in failed]
    # succeeded runs == distinct 200 answers (keyed retries share one); failed == 5xx answers
    assert {i for i, row in by_id.items() if row["status"] == "succeeded"} == succeeded_ids
    assert sorted(i for i, row in by_id.items() if row["status"] == "failed") == sorted(failed_ids)
    assert len(rows) == len(succeeded_ids) + len(failed_ids)  # no other rows, no duplicates

    for item, response in ok:
        body = response.json()
        row = by_id[body["run_id"]]
        assert row["image_sha256"] == item.sha
        assert row["car_detected"] == body["car_detected"]
        assert row["boxes"] == len(body["detections"]) == (1 if body["car_detected"] else 0)
    for item, response in failed:
        row = by_id[response.json()["run_id"]]
        assert row["image_sha256"] == item.sha
        assert row["error"] == response.json()["detail"]
        assert row["boxes"] == 0 and row["car_detected"] is None

    # two requests with one key: never two succeeded runs
    by_key: dict[str, set[int]] = {}
    for item, response in ok:
        if item.key:
            by_key.setdefault(item.key, set()).add(response.json()["run_id"])
    assert all(len(ids) == 1 for ids in by_key.values())
    bound = await db.fetch(
        "SELECT key, run_id FROM idempotency_keys WHERE key = ANY($1::text[])", list(by_key)
    )
    assert {row["key"]: {row["run_id"]} for row in bound} == by_key
