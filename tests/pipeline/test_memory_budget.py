"""The compiler's memory estimate: the largest image (or base64 payload) a definition can
produce, with what precedes the first resize or crop counted at MAX_IMAGE_PIXELS."""

from typing import Any

import pytest

from pipeline_service.pipeline.budget import PipelineLimits
from pipeline_service.pipeline.compiler import check_steps
from pipeline_service.pipeline.definition import StepDefinition

LIMITS = PipelineLimits(max_image_pixels=50_000_000, memory_budget_bytes=256 * 2**20)


def problems(steps: list[dict[str, Any]], limits: PipelineLimits = LIMITS) -> list:
    definitions = [StepDefinition(s["type"], s.get("params", {})) for s in steps]
    return check_steps(definitions, limits)[1]


DECODE = {"type": "decode"}
CAR = [DECODE, {"type": "resize"}, {"type": "normalize"}, {"type": "base64"},
       {"type": "detect"}, {"type": "save"}]  # fmt: skip
FLOAT = {"type": "normalize", "params": {"mode": "float32_0_1"}}


def test_the_car_pipeline_fits_the_default_budget() -> None:
    assert problems(CAR) == []


@pytest.mark.parametrize(
    ("steps", "index", "words"),
    [
        # float32 of an image whose size is only bounded by MAX_IMAGE_PIXELS: 600 MB
        ([DECODE, FLOAT, {"type": "resize"}], 1, "MAX_IMAGE_PIXELS"),
        (
            [DECODE, {"type": "resize", "params": {"width": 16384, "height": 16384}}],
            1,
            "16384x16384",
        ),
        (
            [DECODE, {"type": "resize", "params": {"width": 9000, "height": 9000}}, FLOAT],
            2,
            "float32",
        ),
        (
            [
                DECODE,
                {"type": "resize", "params": {"width": 9000, "height": 9000}},
                {"type": "base64", "params": {"encoding": "raw"}},
            ],
            2,
            "base64",
        ),
        (
            [
                DECODE,
                {"type": "rotate"},
                {"type": "grayscale", "params": {"keep_channels": True}},
                FLOAT,
            ],
            3,
            "float32",
        ),
    ],
)
def test_a_definition_over_the_budget_names_the_step(
    steps: list[dict[str, Any]], index: int, words: str
) -> None:
    [problem] = problems(steps)
    assert problem.index == index and problem.step_type == steps[index]["type"]
    assert words in problem.message and "PIPELINE_MEMORY_BUDGET_BYTES" in problem.message


@pytest.mark.parametrize(
    "steps",
    [
        [DECODE, {"type": "crop", "params": {"w": 640, "h": 640}}, FLOAT],
        [DECODE, {"type": "resize", "params": {"width": 4000, "height": 4000}}, FLOAT],
        [DECODE, {"type": "grayscale"}, FLOAT, {"type": "resize"}],  # 1 channel: 200 MB
        [DECODE, {"type": "resize"}, FLOAT, {"type": "base64", "params": {"encoding": "raw"}}],
    ],
)
def test_what_fits_is_accepted(steps: list[dict[str, Any]]) -> None:
    assert problems(steps) == []


def test_the_budget_and_the_pixel_limit_are_settings() -> None:
    roomy = PipelineLimits(max_image_pixels=1_000_000, memory_budget_bytes=12 * 2**20)
    assert problems([DECODE, FLOAT, {"type": "resize"}], roomy) == []  # 1 MP x 3 x 4 bytes
    tight = PipelineLimits(max_image_pixels=1_000_000, memory_budget_bytes=2 * 2**20)
    [problem] = problems([DECODE], tight)  # 3 MB of decoded pixels
    assert problem.index == 0 and "1000000 pixels" in problem.message


def test_the_step_count_is_limited() -> None:
    [problem] = problems([DECODE] + [{"type": "flip"}] * 100)
    assert problem.field == "steps" and "at most 100 steps" in problem.message
