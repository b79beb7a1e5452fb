"""GET /steps, and what the added step types do to real pixels and boxes."""

import numpy as np
import pytest

from pipeline_service.errors import ImageDoesNotFit
from pipeline_service.pipeline.step import STEP_TYPES, Step
from pipeline_service.pipeline.types import Box
from tests.fixtures.services import ClientFactory

FLOW = {
    "decode": ("encoded image bytes", "image"),
    "crop": ("image", "image"),
    "flip": ("image", "image"),
    "gaussian_blur": ("image", "image"),
    "grayscale": ("image", "image"),
    "normalize": ("image", "image"),
    "resize": ("image", "image"),
    "rotate": ("image", "image"),
    "base64": ("image", "base64 payload"),
    "detect": ("base64 payload", "detections"),
    "filter_detections": ("detections", "detections"),
    "save": ("detections", "stored result"),
}


async def test_catalogue_lists_every_step_type_in_flow_order(make_client: ClientFactory) -> None:
    async with make_client() as client:
        response = await client.get("/steps")
    assert response.status_code == 200
    catalogue = response.json()
    assert [entry["name"] for entry in catalogue] == list(FLOW)
    for entry in catalogue:
        assert (entry["consumes"], entry["produces"]) == FLOW[entry["name"]]
        assert entry["description"] and "\n" not in entry["description"]
        assert entry["params"]["type"] == "object"
        assert entry["params"]["additionalProperties"] is False


async def test_catalogue_params_are_json_schema_with_defaults(make_client: ClientFactory) -> None:
    async with make_client() as client:
        catalogue = {e["name"]: e["params"] for e in (await client.get("/steps")).json()}
    resize = catalogue["resize"]["properties"]
    assert (resize["width"]["default"], resize["width"]["minimum"]) == (640, 1)
    assert resize["width"]["maximum"] == 16384
    assert catalogue["rotate"]["properties"]["degrees"]["enum"] == [90, 180, 270]
    assert catalogue["crop"]["properties"].keys() == {"x", "y", "w", "h"}
    assert catalogue["gaussian_blur"]["properties"]["kernel_size"]["default"] == 5
    flt = catalogue["filter_detections"]["properties"]
    assert flt["min_confidence"]["default"] == 0.0
    assert flt["labels"]["default"] is None
    assert catalogue["detect"]["properties"] == {}


def step(name: str, **params: object) -> Step:
    cls = STEP_TYPES[name]
    return cls(cls.Params.model_validate(params))


# 3 rows x 4 columns, three channels, every pixel different
IMAGE = np.arange(36, dtype=np.uint8).reshape(3, 4, 3) * 7


def test_grayscale_gives_one_channel_or_three_equal_ones() -> None:
    gray = step("grayscale").apply(IMAGE, None)
    assert gray.shape == (3, 4)
    assert gray.dtype == np.uint8
    three = step("grayscale", keep_channels=True).apply(IMAGE, None)
    assert three.shape == (3, 4, 3)
    assert (three[..., 0] == gray).all() and (three[..., 2] == gray).all()
    assert step("grayscale").apply(gray, None) is gray  # already gray: unchanged


def test_crop_keeps_the_region_and_clips_at_the_edge() -> None:
    assert (step("crop", x=1, y=1, w=2, h=1).apply(IMAGE, None) == IMAGE[1:2, 1:3]).all()
    clipped = step("crop", x=2, y=1, w=100, h=100).apply(IMAGE, None)
    assert (clipped == IMAGE[1:, 2:]).all()


def test_crop_outside_the_image_is_the_clients_problem() -> None:
    with pytest.raises(ImageDoesNotFit, match="outside the 4x3 image"):
        step("crop", x=4, y=0).apply(IMAGE, None)


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("horizontal", IMAGE[:, ::-1]), ("vertical", IMAGE[::-1]), ("both", IMAGE[::-1, ::-1])],
)
def test_flip(direction: str, expected: np.ndarray) -> None:
    assert (step("flip", direction=direction).apply(IMAGE, None) == expected).all()


@pytest.mark.parametrize(("degrees", "turns"), [(90, -1), (180, 2), (270, 1)])
def test_rotate_is_clockwise(degrees: int, turns: int) -> None:
    rotated = step("rotate", degrees=degrees).apply(IMAGE, None)
    assert (rotated == np.rot90(IMAGE, turns)).all()


def test_gaussian_blur_smooths_and_keeps_shape() -> None:
    spike = np.zeros((9, 9), dtype=np.uint8)
    spike[4, 4] = 255
    blurred = step("gaussian_blur", kernel_size=3).apply(spike, None)
    assert blurred.shape == spike.shape
    assert 0 < blurred[4, 4] < 255 and blurred[4, 5] > 0 and blurred[0, 0] == 0
    assert (step("gaussian_blur", kernel_size=1).apply(spike, None) == spike).all()


async def test_filter_detections_by_confidence_and_label() -> None:
    boxes = [
        Box(0, 0, 1, 1, 0.9, 1),
        Box(0, 0, 1, 1, 0.3, 1),
        Box(0, 0, 1, 1, 0.95, 2),
    ]
    keep = step("filter_detections", min_confidence=0.5, labels=[1])
    assert await keep.apply(boxes, None) == [boxes[0]]
    everything = step("filter_detections")
    assert await everything.apply(boxes, None) == boxes
