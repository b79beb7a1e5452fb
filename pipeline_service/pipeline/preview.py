"""Preview: run a definition's CPU steps on one image and describe what each step produced.

For scenario builders who want to see what a change does before saving it. It goes through
the same engine code as a real run (CompiledPipeline.preview) and stops before detect/save.
"""

from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from pipeline_service.pipeline.engine import CompiledPipeline, KeyedStep
from pipeline_service.pipeline.types import ImagePayload, RunServices, Value


@dataclass(frozen=True, slots=True)
class StepOutput:
    index: int
    type: str
    ms: float
    shape: tuple[int, ...]
    dtype: str
    min: float | None
    max: float | None
    encoding: str | None = None  # for a base64 payload
    base64_chars: int | None = None


@dataclass(frozen=True, slots=True)
class NotRun:
    index: int
    type: str


@dataclass(frozen=True, slots=True)
class Preview:
    steps: list[StepOutput]
    not_run: list[NotRun]
    image_bytes: int
    image_width: int | None
    image_height: int | None


@dataclass(frozen=True, slots=True)
class _Seen:
    key: str
    type: str
    shape: tuple[int, ...]
    dtype: str
    min: float | None = None
    max: float | None = None
    encoding: str | None = None
    base64_chars: int | None = None


def _describe(keyed: KeyedStep, value: Value) -> _Seen:
    """Runs in the worker thread, so min/max of a large image keep the event loop free."""
    if isinstance(value, ImagePayload):
        return _Seen(
            keyed.key,
            keyed.step.name,
            value.shape,
            value.dtype,
            encoding=value.encoding,
            base64_chars=len(value.image),
        )
    assert isinstance(value, np.ndarray)
    low, high = (float(value.min()), float(value.max())) if value.size else (None, None)
    return _Seen(keyed.key, keyed.step.name, tuple(value.shape), str(value.dtype), low, high)


async def preview(
    pipeline: CompiledPipeline, data: bytes, services: RunServices, cpu_pool: Executor
) -> Preview:
    seen: list[_Seen] = []
    ctx = await pipeline.preview(
        data, services, cpu_pool, lambda keyed, value: seen.append(_describe(keyed, value))
    )
    steps = [
        StepOutput(
            index,
            s.type,
            ctx.timings_ms[s.key],
            s.shape,
            s.dtype,
            s.min,
            s.max,
            s.encoding,
            s.base64_chars,
        )
        for index, s in enumerate(seen)
    ]
    not_run = [
        NotRun(index, step.name)
        for index, step in enumerate(pipeline.steps)
        if index >= pipeline.preview_steps
    ]
    return Preview(steps, not_run, len(data), ctx.image_width, ctx.image_height)
