"""The car-detection pipeline end to end: both model outcomes, and the rows it leaves."""

import hashlib

from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory, model_transport

PREPARED_BOX = [412.0, 288.0, 186.0, 121.0, 0.87, 1]
CAR_STEPS = ["decode", "resize", "normalize", "base64", "detect", "save"]


async def test_car_found_is_answered_and_stored(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    async with make_client(model=model_transport(detection_probability=1.0)) as client:
        response = await client.post(
            "/process_image",
            params={"pipeline_id": 1},
            files={"image": ("car.jpg", jpeg, "image/jpeg")},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pipeline_id"] == 1
    assert body["pipeline_version"] == 1
    assert body["car_detected"] is True
    assert body["detections"] == [PREPARED_BOX]
    assert body["box"] == dict(
        zip(["top_left_x", "top_left_y", "w", "h", "conf", "label"], PREPARED_BOX, strict=True)
    )
    assert list(body["timings_ms"]) == CAR_STEPS
    assert all(ms >= 0 for ms in body["timings_ms"].values())
    assert body["image"] == {
        "sha256": hashlib.sha256(jpeg).hexdigest(),
        "bytes": len(jpeg),
        "width": 320,
        "height": 240,
    }

    run = await db.fetchrow("SELECT * FROM processing_runs WHERE id = $1", body["run_id"])
    assert run["status"] == "succeeded"
    assert run["car_detected"] is True
    assert (run["pipeline_id"], run["pipeline_version"]) == (1, 1)
    assert run["image_sha256"].hex() == body["image"]["sha256"]
    assert (run["image_bytes"], run["image_width"], run["image_height"]) == (len(jpeg), 320, 240)
    assert run["error"] is None
    boxes = await db.fetch(
        "SELECT top_left_x, top_left_y, w, h, conf, label FROM detections WHERE run_id = $1",
        body["run_id"],
    )
    assert [list(b.values()) for b in boxes] == [PREPARED_BOX]


async def test_no_car_is_answered_and_stored(make_client: ClientFactory, jpeg: bytes, db) -> None:
    async with make_client(model=model_transport(detection_probability=0.0)) as client:
        response = await client.post(
            "/process_image",
            data={"pipeline_id": "1"},
            files={"image": ("x.jpg", jpeg, "image/jpeg")},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["car_detected"], body["box"], body["detections"]) == (False, None, [])
    run = await db.fetchrow("SELECT * FROM processing_runs WHERE id = $1", body["run_id"])
    assert (run["status"], run["car_detected"]) == ("succeeded", False)
    assert (
        await db.fetchval("SELECT count(*) FROM detections WHERE run_id = $1", body["run_id"]) == 0
    )


async def test_seeded_draw_gives_both_outcomes_as_the_seed_says(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    import random

    expected_rng = random.Random(7)
    expected = [expected_rng.random() < 0.5 for _ in range(12)]
    assert True in expected and False in expected
    before = await count_rows(db)
    async with make_client(model=model_transport(seed=7)) as client:
        answers = [
            (await client.post("/process_image?pipeline_id=1", files={"image": jpeg})).json()
            for _ in expected
        ]
    assert [a["car_detected"] for a in answers] == expected
    runs, detections = await count_rows(db)
    assert (runs - before[0], detections - before[1]) == (len(expected), sum(expected))
    stored = await db.fetch(
        "SELECT car_detected FROM processing_runs WHERE id = ANY($1::bigint[]) ORDER BY id",
        [a["run_id"] for a in answers],
    )
    assert [r["car_detected"] for r in stored] == expected
