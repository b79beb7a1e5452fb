"""POST /pipelines/preview: the image steps of a definition on one image, nothing stored."""

import json
from typing import Any

import pytest

from tests.fixtures.images import jpeg_bytes
from tests.fixtures.pipelines import CAR_STEPS, pipeline_tables
from tests.fixtures.services import ClientFactory

# Nothing listens here: a preview that called the model would fail with a 503.
NO_MODEL: dict[str, Any] = {"model": None, "model_service_url": "http://127.0.0.1:9"}


def form(steps: list[dict[str, Any]], **extra: Any) -> dict[str, str]:
    return {"definition": json.dumps({"steps": steps, **extra})}


async def everything_stored(db) -> tuple[Any, ...]:
    runs = await db.fetchval("SELECT count(*) FROM processing_runs")
    return runs, await pipeline_tables(db)


async def test_preview_describes_each_image_step_and_stops_before_detect(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    steps = [
        {"type": "decode"},
        {"type": "crop", "params": {"x": 20, "y": 10, "w": 100, "h": 50}},
        {"type": "rotate", "params": {"degrees": 90}},
        {"type": "grayscale"},
        {"type": "normalize", "params": {"mode": "float32_0_1"}},
        {"type": "base64", "params": {"encoding": "png"}},
        {"type": "detect"},
        {"type": "save"},
    ]
    before = await everything_stored(db)
    async with make_client(**NO_MODEL) as client:
        response = await client.post(
            "/pipelines/preview", data=form(steps, name="draft"), files={"image": jpeg}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    described = [(s["index"], s["type"], s["shape"], s["dtype"]) for s in body["steps"]]
    assert described == [
        (0, "decode", [240, 320, 3], "uint8"),
        (1, "crop", [50, 100, 3], "uint8"),
        (2, "rotate", [100, 50, 3], "uint8"),
        (3, "grayscale", [100, 50], "uint8"),
        (4, "normalize", [100, 50], "float32"),
        (5, "base64", [100, 50], "uint8"),  # png holds 8 bits: float 0..1 scaled to 0..255
    ]
    decode, crop, _, gray, normalized, encoded = body["steps"]
    assert 0 <= decode["min"] < decode["max"] <= 255
    assert crop["min"] >= decode["min"] and crop["max"] <= decode["max"]
    assert (normalized["min"], normalized["max"]) == pytest.approx((0.0, 1.0), abs=1e-6)
    assert gray["min"] < gray["max"]
    assert (encoded["min"], encoded["max"], encoded["encoding"]) == (None, None, "png")
    assert encoded["base64_chars"] > 0
    assert all(s["ms"] >= 0 for s in body["steps"])
    assert body["not_run"] == [{"index": 6, "type": "detect"}, {"index": 7, "type": "save"}]
    assert body["image"] == {"bytes": len(jpeg), "width": 320, "height": 240}
    assert await everything_stored(db) == before


async def test_preview_of_a_stored_pipeline(make_client: ClientFactory, jpeg: bytes, db) -> None:
    before = await everything_stored(db)
    async with make_client(**NO_MODEL) as client:
        response = await client.post(
            "/pipelines/preview", data={"pipeline_id": "1"}, files={"image": jpeg}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["type"] for s in body["steps"]] == ["decode", "resize", "normalize", "base64"]
    assert body["steps"][1]["shape"] == [640, 640, 3]
    # The seeded pipeline sends a JPEG of the 640x640 pixels: far less than their raw base64.
    assert 0 < body["steps"][3]["base64_chars"] < 4 * (640 * 640 * 3 // 3)
    assert body["steps"][3]["base64_chars"] % 4 == 0
    assert [n["type"] for n in body["not_run"]] == ["detect", "save"]
    assert await everything_stored(db) == before


async def test_an_invalid_definition_is_a_422_listing_every_problem(
    make_client: ClientFactory, jpeg: bytes
) -> None:
    steps = [
        {"type": "resize"},
        {"type": "gaussian_blur", "params": {"kernel_size": 8}},
        {"type": "detect"},
    ]
    async with make_client(**NO_MODEL) as client:
        response = await client.post("/pipelines/preview", data=form(steps), files={"image": jpeg})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"] == "/problems/invalid-pipeline"
    assert [(p["index"], p["field"]) for p in body["errors"]] == [
        (0, None),
        (1, "kernel_size"),
        (2, None),
    ]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"definition": "{not json"}, "definition"),
        ({"definition": json.dumps({"steps": [{"params": {}}]})}, "definition.steps.0.type"),
        ({"definition": json.dumps([{"type": "decode"}])}, "definition"),
        ({}, "definition"),
        ({"definition": json.dumps({"steps": []}), "pipeline_id": "1"}, "definition"),
        ({"pipeline_id": "0"}, "pipeline_id"),
    ],
)
async def test_a_malformed_preview_request_is_a_422(
    make_client: ClientFactory, jpeg: bytes, data: dict[str, str], field: str
) -> None:
    async with make_client(**NO_MODEL) as client:
        response = await client.post("/pipelines/preview", data=data, files={"image": jpeg})
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/invalid-request"
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_preview_refuses_what_process_image_refuses(
    make_client: ClientFactory, jpeg: bytes
) -> None:
    crop_outside = [{"type": "decode"}, {"type": "crop", "params": {"x": 400}}]
    async with make_client(max_image_pixels=1000, **NO_MODEL) as small:
        too_large = await small.post(
            "/pipelines/preview", data=form(CAR_STEPS), files={"image": jpeg}
        )
    async with make_client(**NO_MODEL) as client:
        not_image = await client.post(
            "/pipelines/preview", data=form(CAR_STEPS), files={"image": b"hello"}
        )
        outside = await client.post(
            "/pipelines/preview", data=form(crop_outside), files={"image": jpeg}
        )
        unknown = await client.post(
            "/pipelines/preview", data={"pipeline_id": "2000000000"}, files={"image": jpeg}
        )
        no_image = await client.post("/pipelines/preview", data=form(CAR_STEPS))
    assert too_large.status_code == 413, too_large.text
    assert not_image.status_code == 415, not_image.text
    assert outside.status_code == 422 and outside.json()["type"] == "/problems/image-does-not-fit"
    assert unknown.status_code == 404, unknown.text
    assert no_image.status_code == 422 and "image" in no_image.json()["detail"]


async def test_a_definition_without_image_steps_runs_nothing(make_client: ClientFactory) -> None:
    async with make_client(**NO_MODEL) as client:
        response = await client.post(
            "/pipelines/preview",
            data=form([{"type": "decode", "params": {"color": "grayscale"}}]),
            files={"image": jpeg_bytes(64, 48)},
        )
    assert response.status_code == 200, response.text
    assert [(s["type"], s["shape"]) for s in response.json()["steps"]] == [("decode", [48, 64])]
    assert response.json()["not_run"] == []


async def test_swagger_shows_the_preview_form(make_client: ClientFactory) -> None:
    async with make_client() as client:
        spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/pipelines/preview"]["post"]["requestBody"]
    [(media_type, content)] = body["content"].items()
    assert media_type == "multipart/form-data"
    ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = spec["components"]["schemas"][ref]["properties"]
    assert fields.keys() == {"image", "definition", "pipeline_id"}


# --- a preview obeys every limit a saved pipeline obeys ----------------------------------------

FLOAT_BEFORE_RESIZE = [
    {"type": "decode"},
    {"type": "normalize", "params": {"mode": "float32_0_1"}},
    {"type": "resize"},
]


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        ({"steps": FLOAT_BEFORE_RESIZE}, "PIPELINE_MEMORY_BUDGET_BYTES"),
        ({"steps": [{"type": "decode"}] + [{"type": "flip"}] * 100}, "at most 100 steps"),
        ({"name": "x" * 201, "steps": CAR_STEPS}, "at most 200 characters"),
        ({"description": "d" * 2001, "steps": CAR_STEPS}, "at most 2000 characters"),
    ],
    ids=["memory budget", "step count", "name length", "description length"],
)
async def test_preview_is_refused_where_saving_would_be(
    make_client: ClientFactory, jpeg: bytes, db, definition: dict[str, Any], words: str
) -> None:
    before = await everything_stored(db)
    async with make_client(**NO_MODEL, pipeline_admin_token="t") as client:
        previewed = await client.post(
            "/pipelines/preview",
            data={"definition": json.dumps(definition)},
            files={"image": jpeg},
        )
        saved = await client.post(
            "/pipelines",
            json={"name": "budget-test", **definition},
            headers={"Authorization": "Bearer t"},
        )
    for response in (previewed, saved):
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["type"] == "/problems/invalid-pipeline"
        assert words in body["detail"]
    assert await everything_stored(db) == before


async def test_memory_budget_names_the_step_and_is_a_setting(
    make_client: ClientFactory, jpeg: bytes
) -> None:
    async with make_client(**NO_MODEL, pipeline_memory_budget_bytes=2**30) as roomy:
        fits = await roomy.post(
            "/pipelines/preview", data=form(FLOAT_BEFORE_RESIZE), files={"image": jpeg}
        )
    assert fits.status_code == 200, fits.text
    async with make_client(**NO_MODEL) as client:
        refused = await client.post(
            "/pipelines/preview", data=form(FLOAT_BEFORE_RESIZE), files={"image": jpeg}
        )
    [problem] = refused.json()["errors"]
    assert (problem["index"], problem["step_type"]) == (1, "normalize")
    assert "572 MiB" in problem["message"]  # 50 MP x 3 channels x 4 bytes
