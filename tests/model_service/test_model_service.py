"""The mock detector: the prepared box or nothing, a seedable draw, strict input checks."""

import base64
import random

import httpx
import pytest

from model_service.app import create_app
from model_service.base64_check import decoded_size
from model_service.config import ModelSettings

PIXELS = base64.b64encode(bytes(range(256)) * 12).decode()  # 3072 bytes = 32x32x3


def client(**knobs) -> httpx.AsyncClient:
    app = create_app(ModelSettings(**knobs))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://model")


def payload(**extra) -> dict:
    return {"image": PIXELS, "encoding": "raw", "shape": [32, 32, 3], "dtype": "uint8", **extra}


async def test_always_and_never() -> None:
    async with client(detection_probability=1.0, box=(1, 2, 3, 4, 0.5, 1)) as always:
        assert (await always.post("/predict", json=payload())).json() == {
            "boxes": [[1.0, 2.0, 3.0, 4.0, 0.5, 1]]
        }
    async with client(detection_probability=0.0) as never:
        assert (await never.post("/predict", json=payload())).json() == {"boxes": []}


async def test_seeded_draw_is_repeatable_and_about_half() -> None:
    expected_rng = random.Random(11)
    expected = [expected_rng.random() < 0.5 for _ in range(200)]
    async with client(seed=11) as model:
        got = [
            bool((await model.post("/predict", json=payload())).json()["boxes"]) for _ in range(200)
        ]
    assert got == expected
    assert 70 < sum(got) < 130


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, ["image", "required"]),
        ({"image": 12}, ["image", "string"]),
        (payload(image="not base64!"), ["base64"]),
        (payload(image="QUJD="), ["base64"]),  # bad padding
        (payload(image="é" * 8), ["base64"]),
        (payload(image=""), ["base64"]),
        (payload(shape=[10, 10, 3]), ["3072 bytes", "300"]),
        (payload(dtype="float64"), ["dtype"]),
        (payload(encoding="gif"), ["encoding"]),
    ],
)
async def test_bad_requests_are_422(body: dict, words: list[str]) -> None:
    async with client() as model:
        response = await model.post("/predict", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


async def test_not_json_is_422() -> None:
    async with client() as model:
        response = await model.post(
            "/predict", content=b"{oops", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422


async def test_failure_knob_answers_500() -> None:
    async with client(failure_rate=1.0) as model:
        response = await model.post("/predict", json=payload())
    assert response.status_code == 500
    assert "MODEL_FAILURE_RATE" in response.json()["detail"]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 100, 1001])
def test_decoded_size_matches_real_decoding(size: int) -> None:
    text = base64.b64encode(bytes(size)).decode()
    assert decoded_size(text) == (size if size else None)


@pytest.mark.parametrize("text", ["abc", "ab=c", "a===", "ab\ncd==", "ab-_", "YQ==YQ=="])
def test_decoded_size_rejects_non_strict_base64(text: str) -> None:
    assert decoded_size(text) is None
