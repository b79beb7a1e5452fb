"""The step contract and the registry. A new step type is one subclass plus `@register`."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from pipeline_service.pipeline.types import NOTHING, Kind, RunContext, SizeBound, Value


class StepParams(BaseModel):
    """Base for every step's parameters: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    consumes: ClassVar[Kind]
    produces: ClassVar[Kind]
    Params: ClassVar[type[StepParams]] = StepParams
    # CPU-bound steps run in the thread pool; consecutive ones share one hop off the event loop.
    cpu_bound: ClassVar[bool]
    # Not started once the client has gone away (nobody is left to answer).
    abandon_when_client_gone: ClassVar[bool] = True

    def __init__(self, params: StepParams) -> None:
        self.params = params

    def output_size(self, given: SizeBound) -> SizeBound:
        """The most this step hands on when it is given at most `given` (the compiler's
        memory estimate). An image -> image step that keeps size and type need not say;
        steps that produce no image hand on nothing worth counting."""
        return given if self.produces == Kind.IMAGE else NOTHING

    def link(self, following: Sequence["Step"]) -> None:  # noqa: B027  (optional hook)
        """Called once when the pipeline is compiled, with the steps after this one; a step
        that can do less work knowing what comes next (decode before a resize) looks here."""


class CpuStep(Step):
    cpu_bound = True

    @abstractmethod
    def apply(self, value: Value, ctx: RunContext) -> Value: ...


class IoStep(Step):
    cpu_bound = False

    @abstractmethod
    async def apply(self, value: Value, ctx: RunContext) -> Value: ...


STEP_TYPES: dict[str, type[Step]] = {}
S = TypeVar("S", bound=type[Step])


def register(step_class: S) -> S:
    if step_class.name in STEP_TYPES:
        raise ValueError(f"step type {step_class.name!r} registered twice")
    STEP_TYPES[step_class.name] = step_class
    return step_class


def _flow_order(cls: type[Step]) -> tuple[int, int, str]:
    kinds = list(Kind)
    return kinds.index(cls.consumes), kinds.index(cls.produces), cls.name


def step_catalogue() -> list[dict[str, Any]]:
    """Every step type with its contract and JSON Schema of its params (defaults included),
    in the order data flows through them (decode first, save last)."""
    return [
        {
            "name": cls.name,
            "description": cls.description,
            "consumes": str(cls.consumes),
            "produces": str(cls.produces),
            "params": cls.Params.model_json_schema(),
        }
        for cls in sorted(STEP_TYPES.values(), key=_flow_order)
    ]
