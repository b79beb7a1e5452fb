"""Saving a pipeline checks it first: every problem at once, pointing at the step index and
field, with a 422 and nothing written."""

import asyncio
from typing import Any

import pytest

from service_kit.errors import MalformedBody
from tests.fixtures.pipelines import AUTH, CAR_STEPS, create, definition, pipeline_tables
from tests.fixtures.services import ClientFactory

DECODE = {"type": "decode"}
BASE64 = {"type": "base64"}


def with_step(index: int, step: dict[str, Any]) -> list[dict[str, Any]]:
    steps = [dict(s) for s in CAR_STEPS]
    steps[index] = step
    return steps


# (steps, expected problems as (index, step_type, field, words in the message))
CASES: dict[str, tuple[list[dict[str, Any]], list[tuple[Any, ...]]]] = {
    "unknown step type": (
        with_step(2, {"type": "sharpen"}),
        [(2, "sharpen", None, "unknown step type; known: base64, crop")],
    ),
    "resize to 0 pixels": (
        with_step(1, {"type": "resize", "params": {"width": 0, "height": 64}}),
        [(1, "resize", "width", "greater than or equal to 1")],
    ),
    "resize to 100000 pixels": (
        with_step(1, {"type": "resize", "params": {"width": 64, "height": 100000}}),
        [(1, "resize", "height", "less than or equal to 16384")],
    ),
    "even blur kernel": (
        with_step(2, {"type": "gaussian_blur", "params": {"kernel_size": 4}}),
        [(2, "gaussian_blur", "kernel_size", "must be odd")],
    ),
    "a param the step does not have": (
        with_step(1, {"type": "resize", "params": {"widht": 64}}),
        [(1, "resize", "widht", "Extra inputs are not permitted")],
    ),
    "a param of the wrong type": (
        with_step(1, {"type": "resize", "params": {"width": "wide"}}),
        [(1, "resize", "width", "valid integer")],
    ),
    "rotate by 45 degrees": (
        with_step(2, {"type": "rotate", "params": {"degrees": 45}}),
        [(2, "rotate", "degrees", "90, 180 or 270")],
    ),
    "negative crop origin": (
        with_step(2, {"type": "crop", "params": {"x": -1}}),
        [(2, "crop", "x", "greater than or equal to 0")],
    ),
    "confidence above 1": (
        [*CAR_STEPS[:5], {"type": "filter_detections", "params": {"min_confidence": 1.5}}],
        [(5, "filter_detections", "min_confidence", "less than or equal to 1")],
    ),
    "resize before decode": (
        [{"type": "resize"}, *CAR_STEPS],
        [
            (0, "resize", None, "needs image as input but the pipeline starts with encoded"),
            (1, "decode", None, "it can only be the first step"),
        ],
    ),
    "detect without base64 before it": (
        [DECODE, {"type": "resize"}, {"type": "detect"}, {"type": "save"}],
        [(2, "detect", None, "needs base64 payload as input but the step before it gives image")],
    ),
    "save without detect": (
        [DECODE, BASE64, {"type": "save"}],
        [(2, "save", None, "needs detections as input; put detect before it")],
    ),
    "a step after save": (
        [*CAR_STEPS, {"type": "grayscale"}],
        [(6, "grayscale", None, "the step before it gives stored result")],
    ),
    "filter_detections before detect": (
        [DECODE, BASE64, {"type": "filter_detections"}],
        [(2, "filter_detections", None, "put detect before it")],
    ),
    "empty step list": ([], [(None, None, None, "at least one step")]),
}


def matches(problem: dict[str, Any], expected: tuple[Any, ...]) -> bool:
    index, step_type, field, words = expected
    message_ok = all(part in problem["message"] for part in words.split("; "))
    return (problem["index"], problem["step_type"], problem["field"]) == (
        index,
        step_type,
        field,
    ) and message_ok


@pytest.mark.parametrize("case", list(CASES))
async def test_each_invalid_definition_is_refused_on_create_and_nothing_written(
    make_client: ClientFactory, db, case: str
) -> None:
    steps, expected = CASES[case]
    before = await pipeline_tables(db)
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        response = await client.post("/pipelines", json=definition(steps), headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/invalid-pipeline"
    assert len(body["errors"]) == len(expected), body["errors"]
    for problem, wanted in zip(body["errors"], expected, strict=True):
        assert matches(problem, wanted), (problem, wanted)
    assert body["detail"].startswith("The pipeline is not valid: ")
    assert await pipeline_tables(db) == before


@pytest.mark.parametrize("case", ["resize to 0 pixels", "save without detect", "empty step list"])
async def test_invalid_replacement_leaves_the_pipeline_as_it_was(
    make_client: ClientFactory, db, case: str
) -> None:
    steps, expected = CASES[case]
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        pipeline = await create(client)
        before = await pipeline_tables(db)
        response = await client.put(
            f"/pipelines/{pipeline['id']}", json=definition(steps), headers=AUTH
        )
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["detail"].startswith(f"Pipeline {pipeline['id']} is not valid: ")
        assert all(matches(p, e) for p, e in zip(body["errors"], expected, strict=True))
        assert await pipeline_tables(db) == before
        again = (await client.get(f"/pipelines/{pipeline['id']}")).json()
    assert again == pipeline


async def test_every_problem_is_reported_at_once(make_client: ClientFactory, db) -> None:
    existing_name = "car-detection"
    steps = [
        {"type": "resize", "params": {"width": 0}},
        {"type": "decode"},
        {"type": "gaussian_blur", "params": {"kernel_size": 2, "sigma": -1}},
        {"type": "teleport"},
        {"type": "detect"},
    ]
    before = await pipeline_tables(db)
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        response = await client.post(
            "/pipelines",
            json={"name": existing_name, "description": "x" * 2001, "steps": steps},
            headers=AUTH,
        )
    assert response.status_code == 422, response.text
    where = [(p["index"], p["step_type"], p["field"]) for p in response.json()["errors"]]
    assert where == [
        (None, None, "name"),
        (None, None, "description"),
        (0, "resize", "width"),
        (0, "resize", None),  # needs an image, the upload is encoded bytes
        (1, "decode", None),  # can only be first
        (2, "gaussian_blur", "kernel_size"),
        (2, "gaussian_blur", "sigma"),
        (3, "teleport", None),
        # detect after an unknown step: what reaches it is unknown, so no order complaint
    ]
    assert "already used by pipeline 1" in response.json()["errors"][0]["message"]
    assert await pipeline_tables(db) == before


async def test_duplicate_name_is_refused_on_create_and_on_rename(
    make_client: ClientFactory, db
) -> None:
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        first = await create(client)
        second = await create(client)
        before = await pipeline_tables(db)
        clash = await client.post("/pipelines", json=definition(name=first["name"]), headers=AUTH)
        rename = await client.put(
            f"/pipelines/{second['id']}", json=definition(name=f"  {first['name']} "), headers=AUTH
        )
        keep_own_name = await client.put(
            f"/pipelines/{first['id']}",
            json=definition(name=first["name"], description="new words"),
            headers=AUTH,
        )
    for response in (clash, rename):
        assert response.status_code == 422, response.text
        [problem] = response.json()["errors"]
        assert problem["field"] == "name"
        assert f"already used by pipeline {first['id']}" in problem["message"]
    assert keep_own_name.status_code == 200, keep_own_name.text
    assert keep_own_name.json()["description"] == "new words"
    assert before != await pipeline_tables(db)  # only the last request wrote


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "no name", "steps": []}, "name"),
        ({"name": "no steps"}, "steps"),
        ({"name": "x", "steps": [{"params": {}}]}, "steps.0.type"),
        ({"name": "x", "steps": [{"type": "decode", "params": [1]}]}, "steps.0.params"),
        ({"name": "x", "steps": [{"type": "decode", "parms": {}}]}, "steps.0.parms"),
        ({"name": "x", "steps": "decode"}, "steps"),
    ],
)
async def test_malformed_body_is_a_422_naming_the_field(
    make_client: ClientFactory, db, body: dict[str, Any], field: str
) -> None:
    before = await pipeline_tables(db)
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        response = await client.post("/pipelines", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/invalid-request"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await pipeline_tables(db) == before


async def test_body_that_is_not_json_is_a_422(make_client: ClientFactory, db) -> None:
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        response = await client.post(
            "/pipelines",
            content=b"{not json",
            headers={**AUTH, "content-type": "application/json"},
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_body_that_is_not_text_is_the_documented_400(make_client: ClientFactory, db) -> None:
    before = await pipeline_tables(db)
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        response = await client.post(
            "/pipelines", content=b"\xff", headers={**AUTH, "content-type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert response.json() == MalformedBody.example().body()
    assert await pipeline_tables(db) == before


async def test_two_creates_racing_for_one_name_give_one_pipeline(
    make_client: ClientFactory, db
) -> None:
    body = definition()
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        answers = await asyncio.gather(
            *(client.post("/pipelines", json=body, headers=AUTH) for _ in range(4))
        )
    assert sorted(r.status_code for r in answers) == [201, 422, 422, 422]
    for response in answers:
        if response.status_code == 422:
            assert response.json()["errors"][0]["field"] == "name"
    count = await db.fetchval("SELECT count(*) FROM pipelines WHERE name = $1", body["name"])
    assert count == 1
