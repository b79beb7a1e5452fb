"""Check a stored definition and turn it into runnable steps, reporting every problem at once."""

from collections.abc import Sequence

from pydantic import ValidationError

from pipeline_service.errors import InvalidPipeline, StepProblem
from pipeline_service.pipeline import steps as _registered_steps  # noqa: F401  (registers)
from pipeline_service.pipeline.budget import PipelineLimits, memory_problems
from pipeline_service.pipeline.definition import PipelineDefinition, StepDefinition
from pipeline_service.pipeline.engine import CompiledPipeline
from pipeline_service.pipeline.step import STEP_TYPES, Step
from pipeline_service.pipeline.types import Kind

PIPELINE_INPUT = Kind.ENCODED
DEFAULT_LIMITS = PipelineLimits()  # the settings' defaults; a running service passes its own


def _params_problems(index: int, step: StepDefinition, error: ValidationError) -> list[StepProblem]:
    return [
        StepProblem(
            index,
            step.type,
            issue["msg"],
            field=".".join(str(part) for part in issue["loc"]) or None,
        )
        for issue in error.errors(include_url=False)
    ]


def _bridge(available: Kind, needed: Kind) -> list[str] | None:
    """The shortest run of step types that turns `available` into `needed` (None: none does)."""
    converters = [cls for cls in STEP_TYPES.values() if cls.consumes != cls.produces]
    paths: dict[Kind, list[str]] = {available: []}
    frontier = [available]
    while frontier and needed not in paths:
        kind = frontier.pop(0)
        for cls in sorted(converters, key=lambda c: c.name):
            if cls.consumes == kind and cls.produces not in paths:
                paths[cls.produces] = [*paths[kind], cls.name]
                frontier.append(cls.produces)
    return paths.get(needed)


def _order_message(index: int, step_class: type[Step], available: Kind) -> str:
    """Why the step cannot run where it is, and which steps would fix it."""
    given = (
        f"the pipeline starts with {available} (the upload)"
        if index == 0
        else f"the step before it gives {available}"
    )
    needed = step_class.consumes
    message = f"needs {needed} as input but {given}"
    if needed == PIPELINE_INPUT:
        return f"{message}; it can only be the first step"
    bridge = _bridge(available, needed)
    if bridge is None:
        return f"{message}, and no step turns {available} back into {needed}"
    return f"{message}; put {', '.join(bridge)} before it"


def check_steps(
    steps: Sequence[StepDefinition], limits: PipelineLimits = DEFAULT_LIMITS
) -> tuple[list[Step], list[StepProblem]]:
    """Build the steps; collect unknown types, bad params, steps whose input is missing, and
    a definition over the step count or the memory budget."""
    built: list[Step] = []
    problems: list[StepProblem] = []
    if not steps:
        return built, [StepProblem(None, None, "a pipeline needs at least one step")]
    if len(steps) > limits.max_steps:
        message = f"a pipeline has at most {limits.max_steps} steps, this one {len(steps)}"
        return built, [StepProblem(None, None, message, field="steps")]
    available: Kind | None = PIPELINE_INPUT
    for index, step in enumerate(steps):
        step_class = STEP_TYPES.get(step.type)
        if step_class is None:
            known = ", ".join(sorted(STEP_TYPES))
            problems.append(StepProblem(index, step.type, f"unknown step type; known: {known}"))
            available = None  # what flows on is unknown; don't pile order errors on top
            continue
        try:
            built.append(step_class(step_class.Params.model_validate(step.params or {})))
        except ValidationError as error:
            problems.extend(_params_problems(index, step, error))
        if available is not None and step_class.consumes != available:
            problems.append(
                StepProblem(index, step.type, _order_message(index, step_class, available))
            )
        available = step_class.produces
    if not problems:
        problems = memory_problems(built, limits)
    return built, problems


def compile_pipeline(
    definition: PipelineDefinition, limits: PipelineLimits = DEFAULT_LIMITS
) -> CompiledPipeline:
    built, problems = check_steps(definition.steps, limits)
    if problems:
        raise InvalidPipeline(problems, pipeline_id=definition.ref.id)
    for index, step in enumerate(built):
        step.link(built[index + 1 :])
    return CompiledPipeline(definition.ref, built)
