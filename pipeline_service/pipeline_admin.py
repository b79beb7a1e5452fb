"""Changing pipelines: validate everything at once, then write in one transaction.

Between the HTTP layer and the store: checks a draft (pipeline/validation.py plus the name's
uniqueness, which needs the database), and tells this process's cache at once; other
processes hear of the change through PostgreSQL NOTIFY.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline_service.db.pipeline_store import (
    NameTaken,
    PipelineStore,
    StoredPipeline,
    StoredVersion,
    VersionMismatch,
    require_version,
)
from pipeline_service.errors import InvalidPipeline, PipelineChanged, PipelineNotFound, StepProblem
from pipeline_service.pipeline.validation import PipelineDraft, check_draft


def _name_taken(name: str, owner: int | None = None) -> StepProblem:
    by = f" by pipeline {owner}" if owner is not None else ""
    return StepProblem(
        None, None, f"the name {name!r} is already used{by}; choose another", field="name"
    )


@contextmanager
def _version_mismatch_as_changed(pipeline_id: int) -> Iterator[None]:
    try:
        yield
    except VersionMismatch as error:
        raise PipelineChanged(pipeline_id, error.current) from error


class PipelineAdmin:
    def __init__(self, store: PipelineStore, on_change: Callable[[int], None]) -> None:
        self._store = store
        self._on_change = on_change

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
        draft = await self._checked(draft)
        try:
            pipeline = await self._store.create(draft)
        except NameTaken as error:
            raise InvalidPipeline([_name_taken(draft.name)]) from error
        self._on_change(pipeline.id)
        return pipeline

    async def replace(
        self,
        pipeline_id: int,
        draft: PipelineDraft,
        expected_versions: frozenset[int] | None = None,
    ) -> StoredPipeline:
        """`expected_versions` (If-Match): change it only if it is at one of these versions.
        404, then 412, then 422: nothing to fix if it is gone, or if the fix is for a
        definition that is no longer there."""
        current = await self.get(pipeline_id)
        with _version_mismatch_as_changed(pipeline_id):
            require_version(current.version, expected_versions)
            draft = await self._checked(draft, pipeline_id)
            try:
                pipeline = await self._store.replace(pipeline_id, draft, expected_versions)
            except NameTaken as error:
                raise InvalidPipeline([_name_taken(draft.name)], pipeline_id) from error
        if pipeline is None:  # deleted meanwhile
            raise PipelineNotFound(pipeline_id)
        self._on_change(pipeline_id)
        return pipeline

    async def delete(
        self, pipeline_id: int, expected_versions: frozenset[int] | None = None
    ) -> None:
        with _version_mismatch_as_changed(pipeline_id):
            deleted = await self._store.deactivate(pipeline_id, expected_versions)
        if not deleted:
            raise PipelineNotFound(pipeline_id)
        self._on_change(pipeline_id)

    async def _checked(self, draft: PipelineDraft, pipeline_id: int | None = None) -> PipelineDraft:
        draft, problems = check_draft(draft)
        if draft.name:
            owner = await self._store.name_owner(draft.name, except_id=pipeline_id)
            if owner is not None:
                problems.insert(0, _name_taken(draft.name, owner))
        if problems:
            raise InvalidPipeline(problems, pipeline_id)
        return draft
