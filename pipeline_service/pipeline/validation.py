"""Check a pipeline someone wants to save, without the database: name, description, steps.

Every problem is reported at once. A valid draft comes back with its params completed with
the defaults, so a stored version says exactly what runs even if a default changes later.
"""

from dataclasses import dataclass, replace

from pipeline_service.errors import StepProblem
from pipeline_service.pipeline.budget import PipelineLimits
from pipeline_service.pipeline.compiler import check_steps
from pipeline_service.pipeline.definition import StepDefinition

MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000


@dataclass(frozen=True, slots=True)
class PipelineDraft:
    name: str
    description: str
    steps: tuple[StepDefinition, ...]

    def snapshot(self) -> dict[str, object]:
        """The same shape as the database's pipeline_snapshot() and pipeline_versions."""
        return {
            "name": self.name,
            "description": self.description,
            "steps": [{"type": step.type, "params": step.params} for step in self.steps],
        }


def _name_problems(name: str, description: str, name_required: bool) -> list[StepProblem]:
    problems = []
    if not name and name_required:
        problems.append(StepProblem(None, None, "the name must not be empty", field="name"))
    elif len(name) > MAX_NAME_CHARS:
        problems.append(
            StepProblem(None, None, f"at most {MAX_NAME_CHARS} characters", field="name")
        )
    if len(description) > MAX_DESCRIPTION_CHARS:
        problems.append(
            StepProblem(
                None, None, f"at most {MAX_DESCRIPTION_CHARS} characters", field="description"
            )
        )
    return problems


def check_draft(
    draft: PipelineDraft, limits: PipelineLimits, name_required: bool = True
) -> tuple[PipelineDraft, list[StepProblem]]:
    """The draft with its name trimmed and params completed, and everything wrong with it.
    A preview checks a draft too, where the name may be left out (`name_required`)."""
    draft = replace(draft, name=draft.name.strip())
    problems = _name_problems(draft.name, draft.description, name_required)
    built, step_problems = check_steps(draft.steps, limits)
    problems.extend(step_problems)
    if problems:
        return draft, problems
    steps = tuple(StepDefinition(step.name, step.params.model_dump(mode="json")) for step in built)
    return replace(draft, steps=steps), problems
