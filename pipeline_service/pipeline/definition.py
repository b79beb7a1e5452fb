"""A pipeline as stored: ordered step types with their params (plain data, not yet checked)."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PipelineRef:
    id: int
    version: int
    name: str


@dataclass(frozen=True, slots=True)
class StepDefinition:
    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PipelineDefinition:
    ref: PipelineRef
    steps: tuple[StepDefinition, ...]
