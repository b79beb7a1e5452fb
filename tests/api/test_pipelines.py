"""Pipeline management end to end: create, read, replace, delete, versions, and the runs
that name the version they used."""

from typing import Any

import httpx

from tests.fixtures.pipelines import AUTH, CAR_STEPS, create, definition, unique_name
from tests.fixtures.services import ClientFactory, model_transport

TOKEN = {"pipeline_admin_token": "test-admin-token"}
CAR_STEPS_STORED = [
    {"type": "decode", "params": {"color": "color", "reduce": "auto"}},
    {"type": "resize", "params": {"width": 64, "height": 64, "interpolation": "linear"}},
    {"type": "normalize", "params": {"mode": "minmax_uint8"}},
    {"type": "base64", "params": {"encoding": "jpeg", "jpeg_quality": 90}},
    {"type": "detect", "params": {}},
    {"type": "save", "params": {}},
]


async def process(client: httpx.AsyncClient, pipeline_id: int, jpeg: bytes) -> httpx.Response:
    return await client.post(
        "/process_image", params={"pipeline_id": pipeline_id}, files={"image": jpeg}
    )


async def test_create_answers_201_with_the_stored_definition(
    make_client: ClientFactory, db
) -> None:
    body = definition()
    async with make_client(**TOKEN) as client:
        response = await client.post("/pipelines", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        created = response.json()
        assert response.headers["location"] == f"/pipelines/{created['id']}"
        fetched = (await client.get(f"/pipelines/{created['id']}")).json()
        listed = (await client.get("/pipelines")).json()
        versions = (await client.get(f"/pipelines/{created['id']}/versions")).json()
    assert created["name"] == body["name"]
    assert created["description"] == body["description"]
    assert (created["version"], created["is_active"]) == (1, True)
    assert created["steps"] == CAR_STEPS_STORED  # params completed with the defaults
    assert fetched == created
    summary = {k: v for k, v in created.items() if k != "steps"}
    assert summary in listed
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["steps"] == CAR_STEPS_STORED
    assert versions[0]["name"] == body["name"]
    stored = await db.fetch(
        "SELECT type, params FROM pipeline_steps WHERE pipeline_id = $1 ORDER BY position",
        created["id"],
    )
    assert [r["type"] for r in stored] == [s["type"] for s in CAR_STEPS]


async def test_name_is_trimmed(make_client: ClientFactory) -> None:
    name = unique_name()
    async with make_client(**TOKEN) as client:
        created = await create(client, name=f"  {name}\t")
    assert created["name"] == name


async def test_replace_bumps_the_version_and_runs_name_the_version_they_used(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    async with make_client(model=model_transport(detection_probability=1.0), **TOKEN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        first = (await process(client, pipeline_id, jpeg)).json()

        gray_steps = [CAR_STEPS[0], {"type": "grayscale"}, *CAR_STEPS[1:]]
        new = definition(gray_steps, name=created["name"], description="now gray")
        response = await client.put(f"/pipelines/{pipeline_id}", json=new, headers=AUTH)
        assert response.status_code == 200, response.text
        replaced = response.json()
        second = (await process(client, pipeline_id, jpeg)).json()
        versions = (await client.get(f"/pipelines/{pipeline_id}/versions")).json()

    assert replaced["version"] == 2
    assert replaced["description"] == "now gray"
    assert [s["type"] for s in replaced["steps"]] == [s["type"] for s in gray_steps]
    assert replaced["created_at"] == created["created_at"]
    assert replaced["updated_at"] > created["updated_at"]

    assert (first["pipeline_version"], second["pipeline_version"]) == (1, 2)
    assert "grayscale" not in first["timings_ms"] and "grayscale" in second["timings_ms"]
    runs = await db.fetch(
        "SELECT id, pipeline_version FROM processing_runs WHERE pipeline_id = $1 ORDER BY id",
        pipeline_id,
    )
    assert [(r["id"], r["pipeline_version"]) for r in runs] == [
        (first["run_id"], 1),
        (second["run_id"], 2),
    ]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["steps"] == CAR_STEPS_STORED
    assert versions[0]["description"] == "made by a test"
    assert versions[1]["steps"] == replaced["steps"]
    assert versions[1]["description"] == "now gray"


async def test_replacing_with_the_same_definition_keeps_the_version(
    make_client: ClientFactory, db
) -> None:
    async with make_client(**TOKEN) as client:
        created = await create(client)
        same = {"name": created["name"], "description": created["description"]}
        # the GET answer sent back as it is (id, version... are ignored), defaults omitted
        response = await client.put(
            f"/pipelines/{created['id']}", json={**created, "steps": CAR_STEPS}, headers=AUTH
        )
        again = await client.put(
            f"/pipelines/{created['id']}", json={**same, "steps": CAR_STEPS}, headers=AUTH
        )
        versions = (await client.get(f"/pipelines/{created['id']}/versions")).json()
    assert response.status_code == again.status_code == 200
    assert response.json() == again.json() == created
    assert [v["version"] for v in versions] == [1]


async def test_renaming_alone_is_a_new_version(make_client: ClientFactory) -> None:
    async with make_client(**TOKEN) as client:
        created = await create(client)
        renamed = definition(name=unique_name("renamed"), description=created["description"])
        response = await client.put(f"/pipelines/{created['id']}", json=renamed, headers=AUTH)
        versions = (await client.get(f"/pipelines/{created['id']}/versions")).json()
    assert response.json()["version"] == 2
    assert [(v["version"], v["name"]) for v in versions] == [
        (1, created["name"]),
        (2, renamed["name"]),
    ]


async def test_delete_stops_processing_but_keeps_results_and_history(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    async with make_client(**TOKEN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        run = (await process(client, pipeline_id, jpeg)).json()

        deleted = await client.delete(f"/pipelines/{pipeline_id}", headers=AUTH)
        after = await process(client, pipeline_id, jpeg)
        get = await client.get(f"/pipelines/{pipeline_id}")
        again = await client.delete(f"/pipelines/{pipeline_id}", headers=AUTH)
        put = await client.put(f"/pipelines/{pipeline_id}", json=definition(), headers=AUTH)
        versions = await client.get(f"/pipelines/{pipeline_id}/versions")
        active = (await client.get("/pipelines")).json()
        everything = (await client.get("/pipelines", params={"include_deleted": True})).json()

    assert deleted.status_code == 204 and deleted.content == b""
    assert after.status_code == 404
    assert after.json()["detail"] == f"There is no active pipeline with id {pipeline_id}."
    assert get.status_code == again.status_code == put.status_code == 404
    assert versions.status_code == 200 and [v["version"] for v in versions.json()] == [1]
    assert pipeline_id not in [p["id"] for p in active]
    [gone] = [p for p in everything if p["id"] == pipeline_id]
    assert (gone["is_active"], gone["version"]) == (False, 1)
    kept = await db.fetchrow("SELECT * FROM processing_runs WHERE id = $1", run["run_id"])
    assert (kept["pipeline_id"], kept["pipeline_version"]) == (pipeline_id, 1)


async def test_a_deleted_pipelines_name_can_be_used_again(make_client: ClientFactory) -> None:
    async with make_client(**TOKEN) as client:
        old = await create(client)
        assert (await client.delete(f"/pipelines/{old['id']}", headers=AUTH)).status_code == 204
        new = await create(client, name=old["name"])
        listed = (await client.get("/pipelines", params={"include_deleted": True})).json()
    assert new["id"] != old["id"] and new["version"] == 1
    assert sorted(p["id"] for p in listed if p["name"] == old["name"]) == [old["id"], new["id"]]


async def test_unknown_ids_are_404_problems(make_client: ClientFactory) -> None:
    missing = 2_000_000_000
    async with make_client(**TOKEN) as client:
        answers = [
            await client.get(f"/pipelines/{missing}"),
            await client.get(f"/pipelines/{missing}/versions"),
            await client.put(f"/pipelines/{missing}", json=definition(), headers=AUTH),
            await client.delete(f"/pipelines/{missing}", headers=AUTH),
        ]
        bad_id = await client.get("/pipelines/0")
    for response in answers:
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert answers[1].json()["detail"] == f"There is no pipeline with id {missing}."
    assert bad_id.status_code == 422


async def test_a_pipeline_of_the_new_steps_runs_end_to_end(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    steps: list[dict[str, Any]] = [
        {"type": "decode"},
        {"type": "crop", "params": {"x": 10, "y": 20, "w": 200, "h": 100}},
        {"type": "grayscale", "params": {"keep_channels": True}},
        {"type": "rotate", "params": {"degrees": 270}},
        {"type": "flip", "params": {"direction": "both"}},
        {"type": "gaussian_blur", "params": {"kernel_size": 3}},
        {"type": "resize", "params": {"width": 32, "height": 32}},
        {"type": "normalize"},
        {"type": "base64", "params": {"encoding": "jpeg"}},
        {"type": "detect"},
        {"type": "filter_detections", "params": {"min_confidence": 0.5, "labels": [1]}},
        {"type": "save"},
    ]
    strict = {"type": "filter_detections", "params": {"min_confidence": 0.9}}
    async with make_client(model=model_transport(detection_probability=1.0), **TOKEN) as client:
        kept = (await process(client, (await create(client, steps=steps))["id"], jpeg)).json()
        strict_steps = [*steps[:10], strict, steps[11]]
        dropped_id = (await create(client, steps=strict_steps))["id"]
        dropped = (await process(client, dropped_id, jpeg)).json()
    assert list(kept["timings_ms"]) == [s["type"] for s in steps]
    assert kept["car_detected"] is True and len(kept["detections"]) == 1
    assert (dropped["car_detected"], dropped["detections"]) == (False, [])  # 0.87 < 0.9
    stored = await db.fetchval(
        "SELECT count(*) FROM detections WHERE run_id = $1", dropped["run_id"]
    )
    assert stored == 0


async def test_crop_outside_the_image_is_a_422_and_stores_nothing(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    steps = [{"type": "decode"}, {"type": "crop", "params": {"x": 5000}}, *CAR_STEPS[1:]]
    async with make_client(**TOKEN) as client:
        pipeline_id = (await create(client, steps=steps))["id"]
        runs = await db.fetchval("SELECT count(*) FROM processing_runs")
        response = await process(client, pipeline_id, jpeg)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/image-does-not-fit"
    assert "outside the 320x240 image" in response.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM processing_runs") == runs


async def test_a_pipeline_may_stop_before_detect(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    steps = [{"type": "decode"}, {"type": "resize", "params": {"width": 32, "height": 32}}]
    async with make_client(**TOKEN) as client:
        pipeline_id = (await create(client, steps=steps))["id"]
        runs = await db.fetchval("SELECT count(*) FROM processing_runs")
        response = await process(client, pipeline_id, jpeg)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["run_id"], body["car_detected"], body["detections"]) == (None, None, [])
    assert list(body["timings_ms"]) == ["decode", "resize"]
    assert await db.fetchval("SELECT count(*) FROM processing_runs") == runs
