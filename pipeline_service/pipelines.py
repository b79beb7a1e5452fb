"""The pipelines as the API serves them: public reads, and changes.

A change is one unit of work in one transaction: lock the pipeline's row, then check, in the
order the API documents, that it exists (404), that it is at the version If-Match names
(412), that the draft can run and its name is free (422, every problem at once), then write.
Nothing is written unless every check passed. This process's cache hears of the change at
once; the other processes through PostgreSQL NOTIFY.
"""

from collections.abc import Callable

from pipeline_service.db.pipeline_store import (
    LockedPipeline,
    NameTaken,
    PipelineStore,
    PipelineTransaction,
    StoredPipeline,
    StoredVersion,
)
from pipeline_service.errors import InvalidPipeline, PipelineChanged, PipelineNotFound, StepProblem
from pipeline_service.pipeline.budget import PipelineLimits
from pipeline_service.pipeline.validation import PipelineDraft, check_draft


def _name_taken(name: str, owner: int | None = None) -> StepProblem:
    by = f" by pipeline {owner}" if owner is not None else ""
    return StepProblem(
        None, None, f"the name {name!r} is already used{by}; choose another", field="name"
    )


class PipelineService:
    def __init__(
        self,
        store: PipelineStore,
        on_change: Callable[[int], None],
        limits: PipelineLimits | None = None,
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._limits = limits or PipelineLimits()

    async def list_pipelines(self, include_deleted: bool = False) -> list[StoredPipeline]:
        return await self._store.list_pipelines(include_deleted)

    async def get(self, pipeline_id: int) -> StoredPipeline:
        pipeline = await self._store.get(pipeline_id)
        if pipeline is None:
            raise PipelineNotFound(pipeline_id)
        return pipeline

    async def versions(self, pipeline_id: int) -> list[StoredVersion]:
        versions = await self._store.versions(pipeline_id)
        if versions is None:
            raise PipelineNotFound(pipeline_id, deleted_too=True)
        return versions

    async def create(self, draft: PipelineDraft) -> StoredPipeline:
        async with self._store.transaction() as tx:
            draft = await _checked(tx, draft, self._limits)
            try:
                pipeline = await tx.create(draft)
            except NameTaken as error:  # created by another request since the check
                raise InvalidPipeline([_name_taken(draft.name)]) from error
        self._on_change(pipeline.id)
        return pipeline

    async def replace(
        self,
        pipeline_id: int,
        draft: PipelineDraft,
        expected_versions: frozenset[int] | None = None,
    ) -> StoredPipeline:
        """`expected_versions` (If-Match): change it only if it is at one of these versions."""
        async with self._store.transaction() as tx:
            current = await _locked(tx, pipeline_id, expected_versions)
            draft = await _checked(tx, draft, self._limits, pipeline_id)
            try:
                pipeline = await tx.replace(current, draft)
            except NameTaken as error:
                raise InvalidPipeline([_name_taken(draft.name)], pipeline_id) from error
        self._on_change(pipeline_id)
        return pipeline

    async def delete(
        self, pipeline_id: int, expected_versions: frozenset[int] | None = None
    ) -> None:
        async with self._store.transaction() as tx:
            await tx.deactivate(await _locked(tx, pipeline_id, expected_versions))
        self._on_change(pipeline_id)


async def _locked(
    tx: PipelineTransaction, pipeline_id: int, expected_versions: frozenset[int] | None
) -> LockedPipeline:
    """The pipeline's locked row: 404 if there is none, 412 if it is not at a version the
    client expects (None: any will do)."""
    current = await tx.lock(pipeline_id)
    if current is None:
        raise PipelineNotFound(pipeline_id)
    if expected_versions is not None and current.version not in expected_versions:
        raise PipelineChanged(pipeline_id, current.version)
    return current


async def _checked(
    tx: PipelineTransaction,
    draft: PipelineDraft,
    limits: PipelineLimits,
    pipeline_id: int | None = None,
) -> PipelineDraft:
    """The draft completed with its defaults; 422 with every problem, the name's included."""
    draft, problems = check_draft(draft, limits)
    if draft.name:
        owner = await tx.name_owner(draft.name, except_id=pipeline_id)
        if owner is not None:
            problems.insert(0, _name_taken(draft.name, owner))
    if problems:
        raise InvalidPipeline(problems, pipeline_id)
    return draft
