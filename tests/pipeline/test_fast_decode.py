"""`decode.reduce: fast`: a 1/2-scale JPEG decode where the 640x640 result is at least as close
to an area-resampled reference (full decode + INTER_AREA) as the literal path (full decode +
INTER_LINEAR), decided from the header alone. The closeness itself is checked on the shared
photos, PSNR computed here."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline_service.pipeline.compiler import compile_pipeline
from pipeline_service.pipeline.decode_scale import decode_flag
from pipeline_service.pipeline.definition import PipelineDefinition, PipelineRef, StepDefinition
from pipeline_service.pipeline.steps.image import Decode
from pipeline_service.pipeline.types import RunContext, RunServices
from tests.fixtures.processes import ROOT

JPEG = b"\xff\xd8\xff\xe0"
SHARED_IMAGES = [ROOT.parent / "shared" / "images", ROOT.parents[1] / "shared" / "images"]
FULL = {"color": cv2.IMREAD_COLOR, "grayscale": cv2.IMREAD_GRAYSCALE}


@pytest.mark.parametrize(
    ("size", "scale"),
    [
        ((1920, 1080), 2),  # the 1080p frame: 1/2 although 1080 < 2 x 640
        ((1080, 1920), 2),  # turned
        ((2520, 1080), 2),  # 21:9
        ((2048, 1152), 2),
        ((3840, 2160), 2),  # what auto chooses anyway
        ((1928, 1080), 1),  # just over 3x on the long side: the full decode is closer
        ((1920, 1072), 1),  # short side under 1.68x
        ((2560, 1080), 1),  # 4x on the long side: the literal resize averages pixel pairs
        ((1440, 1080), 1),  # 4:3: the long side under 3x
        ((1921, 1080), 1),  # an odd side
        ((1280, 720), 1),
    ],
)
def test_fast_decides_the_scale_from_the_header_size(size: tuple[int, int], scale: int) -> None:
    assert decode_flag("color", JPEG, size, (640, 640), "fast")[1] == scale


def test_fast_adds_to_auto_and_auto_stays_as_it_was() -> None:
    assert decode_flag("color", JPEG, (1920, 1080), (640, 640), "auto")[1] == 1
    assert decode_flag("color", JPEG, (1920, 1080), (640, 640), "off")[1] == 1
    assert decode_flag("grayscale", JPEG, (1920, 1080), (640, 640), "fast") == (
        cv2.IMREAD_REDUCED_GRAYSCALE_2,
        2,
    )
    assert decode_flag("color", b"\x89PNG\r\n\x1a\n", (1920, 1080), (640, 640), "fast")[1] == 1
    # A non-square target: the rule must hold whichever way EXIF turns the image.
    assert decode_flag("color", JPEG, (1920, 1080), (640, 360), "fast")[1] == 1


def compiled(*steps: StepDefinition) -> list:
    return list(compile_pipeline(PipelineDefinition(PipelineRef(1, 1, "t"), steps)).steps)


@pytest.mark.parametrize(
    ("interpolation", "rule"), [("linear", "fast"), ("area", "auto"), ("cubic", "auto")]
)
def test_fast_applies_only_before_the_linear_resize_it_was_measured_with(
    interpolation: str, rule: str
) -> None:
    decode, _ = compiled(
        StepDefinition("decode", {"reduce": "fast"}),
        StepDefinition("resize", {"interpolation": interpolation}),
    )
    assert isinstance(decode, Decode)
    assert (decode.target, decode.reduce) == ((640, 640), rule)


def shared_photo(name: str) -> bytes:
    for directory in SHARED_IMAGES:
        if (directory / name).is_file():
            return Path(directory / name).read_bytes()
    pytest.skip(f"the shared photos are not beside the checkout ({name})")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


@pytest.mark.parametrize("color", ["color", "grayscale"])
@pytest.mark.parametrize(
    ("name", "decoded_height"),
    [
        ("parking_1280x720.jpg", 720),
        ("parking_1920x1080.jpg", 540),
        ("parking_3840x2160.jpg", 1080),
    ],
)
def test_the_fast_path_is_at_least_as_close_to_the_area_reference_as_the_literal_one(
    name: str, decoded_height: int, color: str
) -> None:
    data = shared_photo(name)
    full = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), FULL[color])
    reference = cv2.resize(full, (640, 640), interpolation=cv2.INTER_AREA)
    literal = cv2.resize(full, (640, 640), interpolation=cv2.INTER_LINEAR)

    decode, resize = compiled(
        StepDefinition("decode", {"reduce": "fast", "color": color}),
        StepDefinition("resize", {"width": 640, "height": 640}),
    )
    ctx = RunContext(PipelineRef(1, 1, "t"), data, RunServices(None, None))  # type: ignore[arg-type]
    decoded = decode.apply(data, ctx)
    chosen = resize.apply(decoded, ctx)

    assert decoded.shape[0] == decoded_height  # 1080p and 4K at 1/2, 720p in full
    assert chosen.shape == literal.shape
    assert psnr(chosen, reference) >= psnr(literal, reference)
    assert (ctx.image_width, ctx.image_height) == (full.shape[1], full.shape[0])
