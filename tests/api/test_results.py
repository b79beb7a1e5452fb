"""GET /results and GET /results/{run_id}: what was stored, filtered and paged."""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from tests.fixtures.runs import insert_run, new_pipeline
from tests.fixtures.services import ClientFactory, model_transport

PREPARED_BOX = [412.0, 288.0, 186.0, 121.0, 0.87, 1]
DAY = datetime(2031, 5, 1, tzinfo=UTC)  # runs with a made-up creation time live here


async def page_through(client, **params) -> tuple[list[int], int]:
    """Every run id of a listing, following next_cursor; and the number of pages."""
    ids: list[int] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/results", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [item["run_id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


async def test_a_processed_image_reads_back_as_it_was_answered(
    make_client: ClientFactory, jpeg: bytes
) -> None:
    async with make_client(model=model_transport(detection_probability=1.0)) as client:
        answer = (await client.post("/process_image?pipeline_id=1", files={"image": jpeg})).json()
        response = await client.get(f"/results/{answer['run_id']}")
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["run_id"] == answer["run_id"]
    assert (run["pipeline_id"], run["pipeline_version"]) == (1, 1)
    assert (run["status"], run["car_detected"], run["error"]) == ("succeeded", True, None)
    assert run["detections"] == [PREPARED_BOX]
    assert run["box"] == answer["box"]
    assert run["image"] == {
        "sha256": hashlib.sha256(jpeg).hexdigest(),
        "bytes": len(jpeg),
        "width": 320,
        "height": 240,
    }
    # the stored timings are those of the steps before save
    assert list(run["timings_ms"]) == ["decode", "resize", "normalize", "base64", "detect"]
    assert run["timings_ms"] == {k: v for k, v in answer["timings_ms"].items() if k != "save"}
    created = datetime.fromisoformat(run["created_at"])
    assert created.tzinfo is not None
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=5)


async def test_a_failed_run_reads_back_with_its_error(
    make_client: ClientFactory, jpeg: bytes
) -> None:
    async with make_client(model=model_transport(failure_rate=1.0)) as client:
        answer = await client.post("/process_image?pipeline_id=1", files={"image": jpeg})
        assert answer.status_code == 502
        response = await client.get(f"/results/{answer.json()['run_id']}")
    run = response.json()
    assert (run["status"], run["car_detected"], run["detections"], run["box"]) == (
        "failed",
        None,
        [],
        None,
    )
    assert "HTTP 500" in run["error"]
    assert list(run["timings_ms"]) == ["decode", "resize", "normalize", "base64"]


async def test_several_boxes_come_back_in_order_and_box_is_the_best_car(
    make_client: ClientFactory, db
) -> None:
    pipeline_id = await new_pipeline(db)
    boxes = ((1.0, 2.0, 3.0, 4.0, 0.5, 1), (5.0, 6.0, 7.0, 8.0, 0.99, 2), (9, 9, 9, 9, 0.7, 1))
    run_id = await insert_run(db, pipeline_id, boxes=boxes)
    async with make_client() as client:
        run = (await client.get(f"/results/{run_id}")).json()
    assert run["detections"] == [[*map(float, b[:5]), b[5]] for b in boxes]
    assert run["box"]["conf"] == 0.7  # label 2 is not a car, however confident


@pytest.mark.parametrize("idempotency_key", [None, "boxes"], ids=["autocommit", "with-key"])
async def test_a_run_with_several_boxes_is_stored_whole_and_in_order(
    make_client: ClientFactory, jpeg: bytes, db, idempotency_key: str | None
) -> None:
    """Through the service: without a key the run and its boxes are one statement, with a key
    one transaction; both store every box, in the model's order."""
    boxes = [
        [1.0, 2.0, 3.0, 4.0, 0.5, 1],
        [5.0, 6.0, 7.0, 8.0, 0.99, 2],
        [9.0, 9.5, 9.0, 9.0, 0.7, 1],
    ]
    model = httpx.MockTransport(lambda _: httpx.Response(200, json={"boxes": boxes}))
    headers = {"Idempotency-Key": f"{idempotency_key}-{uuid.uuid4()}"} if idempotency_key else {}
    async with make_client(model=model) as client:
        answer = await client.post(
            "/process_image?pipeline_id=1", files={"image": jpeg}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        run_id = answer.json()["run_id"]
        stored = (await client.get(f"/results/{run_id}")).json()
    rows = await db.fetch(
        "SELECT top_left_x, top_left_y, w, h, conf, label FROM detections "
        "WHERE run_id = $1 ORDER BY position",
        run_id,
    )
    assert answer.json()["detections"] == stored["detections"] == boxes
    assert [list(row) for row in rows] == boxes
    assert stored["box"]["conf"] == 0.7  # the best car: label 2 is not one


async def test_unknown_run_is_a_404_problem(make_client: ClientFactory) -> None:
    async with make_client() as client:
        response = await client.get("/results/9223372036854775807")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "There is no stored run with id 9223372036854775807."


@pytest.mark.parametrize("run_id", ["abc", "0", "-3", "9223372036854775808", "1.5"])
async def test_a_run_id_that_is_no_id_is_a_422_problem(
    make_client: ClientFactory, run_id: str
) -> None:
    async with make_client() as client:
        response = await client.get(f"/results/{run_id}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "run_id"


@pytest.fixture
async def varied_runs(db) -> dict[str, object]:
    """One pipeline's runs across a few days: cars, no cars, failures."""
    pipeline_id = await new_pipeline(db)
    other_pipeline = await new_pipeline(db)
    at = [DAY + timedelta(hours=h) for h in range(6)]
    runs = {
        "car_0": await insert_run(db, pipeline_id, car=True, created_at=at[0]),
        "nocar_1": await insert_run(db, pipeline_id, car=False, created_at=at[1]),
        "failed_2": await insert_run(db, pipeline_id, status="failed", created_at=at[2]),
        "car_3": await insert_run(db, pipeline_id, car=True, created_at=at[3]),
        "nocar_4": await insert_run(db, pipeline_id, car=False, created_at=at[4]),
        "other_5": await insert_run(db, other_pipeline, car=True, created_at=at[5]),
    }
    return {"pipeline_id": pipeline_id, "other": other_pipeline, "at": at, "runs": runs}


def _names(runs: dict[str, int], ids: list[int]) -> list[str]:
    by_id = {v: k for k, v in runs.items()}
    return [by_id[i] for i in ids if i in by_id]


async def test_each_filter(make_client: ClientFactory, varied_runs) -> None:
    runs, at, pipeline_id = varied_runs["runs"], varied_runs["at"], varied_runs["pipeline_id"]
    window = {"since": at[0].isoformat(), "until": (at[5] + timedelta(seconds=1)).isoformat()}
    mine = {"pipeline_id": pipeline_id}
    async with make_client() as client:

        async def names(**params) -> list[str]:
            ids, _ = await page_through(client, **params)
            return _names(runs, ids)

        assert await names(**mine) == ["nocar_4", "car_3", "failed_2", "nocar_1", "car_0"]
        assert await names(pipeline_id=varied_runs["other"]) == ["other_5"]
        assert await names(**mine, car_detected="true") == ["car_3", "car_0"]
        assert await names(**mine, car_detected="false") == ["nocar_4", "nocar_1"]
        assert await names(**mine, status="failed") == ["failed_2"]
        assert await names(**mine, status="succeeded") == [
            "nocar_4",
            "car_3",
            "nocar_1",
            "car_0",
        ]
        # since is inclusive, until exclusive; any offset names the same instant
        assert await names(**{**window, "since": at[3].isoformat()}) == [
            "other_5",
            "nocar_4",
            "car_3",
        ]
        assert await names(**{**window, "until": at[1].isoformat()}) == ["car_0"]
        assert await names(
            since=at[1].astimezone(timezone(timedelta(hours=5))).isoformat(),
            until=at[3].isoformat(),
        ) == ["failed_2", "nocar_1"]
        # all at once
        assert await names(
            **mine, car_detected="true", status="succeeded", since=at[1].isoformat()
        ) == ["car_3"]
        assert await names(**mine, status="failed", car_detected="true") == []


async def test_a_pipeline_that_does_not_exist_lists_nothing_and_a_deleted_one_its_runs(
    make_client: ClientFactory, varied_runs, db
) -> None:
    runs, pipeline_id = varied_runs["runs"], varied_runs["pipeline_id"]
    unknown = await db.fetchval("SELECT max(id) + 1000 FROM pipelines")
    # a soft delete keeps the pipeline's row, so its runs are still listed
    await db.execute("UPDATE pipelines SET is_active = false WHERE id = $1", pipeline_id)
    async with make_client() as client:
        nothing = await client.get("/results", params={"pipeline_id": unknown, "limit": 500})
        deleted_ids, _ = await page_through(client, pipeline_id=pipeline_id)
    assert nothing.status_code == 200, nothing.text
    assert nothing.json()["items"] == [] and nothing.json()["next_cursor"] is None
    assert _names(runs, deleted_ids) == ["nocar_4", "car_3", "failed_2", "nocar_1", "car_0"]


async def test_items_carry_the_whole_run(make_client: ClientFactory, varied_runs) -> None:
    async with make_client() as client:
        listed = (
            await client.get("/results", params={"pipeline_id": varied_runs["pipeline_id"]})
        ).json()["items"]
        for item in listed:
            assert item == (await client.get(f"/results/{item['run_id']}")).json()


async def test_pages_cover_a_listing_once_newest_first(make_client: ClientFactory, db) -> None:
    pipeline_id = await new_pipeline(db)
    ids = set()
    for _ in range(4):  # rows of one transaction share created_at: the id breaks the tie
        async with db.transaction():
            for _ in range(5):
                ids.add(await insert_run(db, pipeline_id))
    async with make_client() as client:
        for limit, pages in ((3, 7), (5, 4), (20, 1), (500, 1)):
            listed, count = await page_through(client, pipeline_id=pipeline_id, limit=limit)
            assert listed == sorted(ids, reverse=True)
            assert count == pages


async def test_default_page_is_fifty(make_client: ClientFactory, db) -> None:
    pipeline_id = await new_pipeline(db)
    async with db.transaction():
        for _ in range(51):
            await insert_run(db, pipeline_id)
    async with make_client() as client:
        body = (await client.get("/results", params={"pipeline_id": pipeline_id})).json()
    assert len(body["items"]) == 50
    assert body["next_cursor"] is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"pipeline_id": "0"}, "pipeline_id"),
        ({"pipeline_id": "2147483648"}, "pipeline_id"),
        ({"car_detected": "maybe"}, "car_detected"),
        ({"status": "pending"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2031-05-01T00:00:00"}, "since"),  # no offset: which 00:00?
        ({"until": "2031-05-01"}, "until"),
        ({"since": "2031-05-02T00:00:00Z", "until": "2031-05-01T00:00:00Z"}, "until"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "eyJ2IjoxfQ"}, "cursor"),  # {"v":1}
        ({"cursor": "x" * 20_000}, "cursor"),
    ],
)
async def test_bad_parameters_are_422_problems(
    make_client: ClientFactory, params: dict[str, str], field: str
) -> None:
    async with make_client() as client:
        response = await client.get("/results", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["detail"].startswith(f"{field}: ")


async def test_a_cursor_is_refused_with_other_filters(make_client: ClientFactory, db) -> None:
    pipeline_id = await new_pipeline(db)
    async with db.transaction():
        for _ in range(3):
            await insert_run(db, pipeline_id, car=True)
    async with make_client() as client:
        first = await client.get("/results", params={"pipeline_id": pipeline_id, "limit": 1})
        cursor = first.json()["next_cursor"]
        other = await client.get(
            "/results", params={"pipeline_id": pipeline_id, "cursor": cursor, "car_detected": 1}
        )
        same = await client.get(
            "/results", params={"pipeline_id": pipeline_id, "cursor": cursor, "limit": 5}
        )
    assert other.status_code == 422
    assert "other filters" in other.json()["detail"]
    assert same.status_code == 200  # the page size may change from page to page
    assert len(same.json()["items"]) == 2


async def test_a_tampered_cursor_is_refused(make_client: ClientFactory, db) -> None:
    import base64

    import orjson

    pipeline_id = await new_pipeline(db)
    for _ in range(2):
        await insert_run(db, pipeline_id)
    async with make_client() as client:
        first = await client.get("/results", params={"pipeline_id": pipeline_id, "limit": 1})
        token = first.json()["next_cursor"]
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        for change in (
            {"s": "10:5:"},  # xmax before xmin
            {"s": "5:10:12"},  # in progress after xmax
            {"s": "0:10:"},
            {"s": "1:2:3:4"},
            {"i": "7"},
            {"i": True},
            {"t": "2031-05-01T00:00:00"},
            {"t": "soon"},
            {"v": 2},
        ):
            forged = base64.urlsafe_b64encode(orjson.dumps({**body, **change})).decode()
            response = await client.get(
                "/results", params={"pipeline_id": pipeline_id, "cursor": forged}
            )
            assert response.status_code == 422, (change, response.text)
            assert response.json()["errors"][0]["field"] == "cursor"
