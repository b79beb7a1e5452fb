"""How much memory a pipeline definition can demand, worked out before it runs.

Each step says the most it hands on given the most it receives (`Step.output_size`). The
image's size is not known when a pipeline is saved, so what comes before the first resize or
crop is counted at MAX_IMAGE_PIXELS. The largest intermediate — an image (pixels x channels x
bytes per sample) or a base64 payload — must fit PIPELINE_MEMORY_BUDGET_BYTES, otherwise the
definition is refused with a 422 naming the step, when it is saved, previewed or loaded.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline_service.errors import StepProblem
from pipeline_service.pipeline.step import Step
from pipeline_service.pipeline.types import SizeBound

MAX_STEPS = 100
DTYPES = {1: "uint8", 4: "float32"}


@dataclass(frozen=True, slots=True)
class PipelineLimits:
    """What any definition must stay within (settings: config.py)."""

    max_image_pixels: int = 50_000_000
    memory_budget_bytes: int = 256 * 2**20
    max_steps: int = MAX_STEPS


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MiB" if nbytes >= 2**20 else f"{nbytes:,} bytes"


def _describe(size: SizeBound) -> str:
    if size.width is not None and size.height is not None:
        image = f"a {size.width}x{size.height} image"
    else:
        image = (
            f"an image of up to {size.pixels} pixels (MAX_IMAGE_PIXELS or a crop: the size of "
            "an upload is not known before a resize fixes it)"
        )
    samples = f"{image} x {size.channels} channel(s) x {DTYPES.get(size.itemsize, 'bytes')}"
    if size.payload_bytes is not None:
        return f"the base64 text of {samples.replace(' x ' + DTYPES[1], '')}"
    return samples


def memory_problems(steps: Sequence[Step], limits: PipelineLimits) -> list[StepProblem]:
    """The first step whose output can exceed the budget, if any (what follows it would only
    repeat the same advice)."""
    size = SizeBound(limits.max_image_pixels, channels=0)  # the upload: encoded bytes
    for index, step in enumerate(steps):
        size = step.output_size(size)
        if size.nbytes > limits.memory_budget_bytes:
            message = (
                f"can hold up to {_mb(size.nbytes)}: {_describe(size)}; the limit is "
                f"{_mb(limits.memory_budget_bytes)} (PIPELINE_MEMORY_BUDGET_BYTES). "
                "Resize or crop to a smaller image before this step"
            )
            return [StepProblem(index, step.name, message)]
    return []
