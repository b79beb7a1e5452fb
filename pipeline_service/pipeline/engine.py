"""Run one image through a compiled pipeline.

Consecutive CPU steps are grouped into one stage and run in the thread pool in a single hop
(OpenCV releases the GIL, so the event loop stays free); I/O steps run on the event loop.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from itertools import groupby

from pipeline_service.errors import ClientGone, ClientInputError, ServiceError, StepFailed
from pipeline_service.pipeline.definition import PipelineRef
from pipeline_service.pipeline.step import CpuStep, IoStep, Step
from pipeline_service.pipeline.types import (
    IdempotencyClaim,
    Kind,
    RunContext,
    RunServices,
    Value,
)


@dataclass(frozen=True, slots=True)
class KeyedStep:
    key: str  # the name in timings_ms: the step type, "#2", "#3"... for repeats
    step: Step


# Called in the worker thread after each CPU step of a preview, with that step's output.
Observer = Callable[[KeyedStep, Value], None]
# Whether the client still waits for the answer (the HTTP layer's request.is_disconnected).
StillWanted = Callable[[], Awaitable[bool]]


def _timing_keys(steps: Sequence[Step]) -> list[KeyedStep]:
    seen: dict[str, int] = {}
    keyed = []
    for step in steps:
        seen[step.name] = seen.get(step.name, 0) + 1
        count = seen[step.name]
        keyed.append(KeyedStep(step.name if count == 1 else f"{step.name}#{count}", step))
    return keyed


class CompiledPipeline:
    def __init__(self, ref: PipelineRef, steps: Sequence[Step]) -> None:
        self.ref = ref
        self.steps = tuple(steps)
        self.saves = any(step.produces == Kind.STORED for step in steps)
        keyed = _timing_keys(steps)
        self._stages = [
            (cpu_bound, list(group))
            for cpu_bound, group in groupby(keyed, key=lambda k: k.step.cpu_bound)
        ]

    async def run(
        self,
        data: bytes,
        services: RunServices,
        cpu_pool: Executor,
        idempotency: IdempotencyClaim | None = None,
        image_sha256: str | None = None,
        still_wanted: StillWanted | None = None,
    ) -> RunContext:
        """Run every step. A failure that is not the client's fault is recorded as a failed run
        (when the pipeline saves) and re-raised with its `run_id`. A client that has left is
        noticed before each stage (before the decode, before the model call) and the run
        stops there with ClientGone, storing nothing; `save` still runs once reached, so a
        retry with the same Idempotency-Key finds what was paid for."""
        ctx = RunContext(
            pipeline=self.ref,
            data=data,
            services=services,
            image_sha256=image_sha256,
            idempotency=idempotency,
        )
        loop = asyncio.get_running_loop()
        value: Value = data
        try:
            for cpu_bound, stage in self._stages:
                if await _client_gone(stage, still_wanted):
                    raise ClientGone("The client closed the connection; the run stopped.")
                if cpu_bound:
                    value = await loop.run_in_executor(cpu_pool, _run_cpu_stage, stage, value, ctx)
                else:
                    for keyed in stage:
                        value = await _run_io_step(keyed, value, ctx)
        except ClientInputError:
            services.observer.run_finished(ctx, "rejected")
            raise  # the client's mistake: answered with a 4xx, nothing stored
        except ClientGone:
            services.observer.run_finished(ctx, "abandoned")
            raise  # nobody to answer: nothing stored
        except Exception as error:
            services.observer.run_finished(ctx, "failed")
            failure = error if isinstance(error, ServiceError) else StepFailed(error)
            if self.saves and ctx.run_id is None:
                ctx.fingerprint()
                failure.run_id = await services.recorder.record_failure(ctx, failure.detail)
            if failure is error:
                raise
            raise failure from error
        services.observer.run_finished(ctx, "succeeded")
        return ctx

    @property
    def preview_steps(self) -> int:
        """How many steps a preview runs: the leading CPU steps, up to the first I/O step."""
        cpu_bound, stage = self._stages[0] if self._stages else (False, [])
        return len(stage) if cpu_bound else 0

    async def preview(
        self, data: bytes, services: RunServices, cpu_pool: Executor, observe: Observer
    ) -> RunContext:
        """Run only the leading CPU steps (everything before detect/save), showing each output
        to `observe`: nothing leaves the process and nothing is stored."""
        ctx = RunContext(pipeline=self.ref, data=data, services=services)
        if not self.preview_steps:
            return ctx
        stage = self._stages[0][1]
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(cpu_pool, _run_cpu_stage, stage, data, ctx, observe)
        except ServiceError:
            raise
        except Exception as error:
            raise StepFailed(error) from error
        return ctx


async def _client_gone(stage: list[KeyedStep], still_wanted: StillWanted | None) -> bool:
    if still_wanted is None or not stage[0].step.abandon_when_client_gone:
        return False
    return not await still_wanted()


def _run_cpu_stage(
    stage: list[KeyedStep], value: Value, ctx: RunContext, observe: Observer | None = None
) -> Value:
    ctx.fingerprint()
    for keyed in stage:
        step = keyed.step
        assert isinstance(step, CpuStep)
        started = time.perf_counter()
        value = step.apply(value, ctx)
        ctx.record_timing(keyed.key, started)
        _note_detections(step, value, ctx)
        if observe is not None:
            observe(keyed, value)
    return value


async def _run_io_step(keyed: KeyedStep, value: Value, ctx: RunContext) -> Value:
    step = keyed.step
    assert isinstance(step, IoStep)
    started = time.perf_counter()
    value = await step.apply(value, ctx)
    ctx.record_timing(keyed.key, started)
    _note_detections(step, value, ctx)
    return value


def _note_detections(step: Step, value: Value, ctx: RunContext) -> None:
    if step.produces == Kind.DETECTIONS:
        ctx.detections = value
