"""Compiled pipelines kept in memory, dropped when the database announces a change.

The hot path reads no definition from the database. While the change listener is down the
cache is bypassed (every request loads), so a lost notification never serves a stale pipeline.
"""

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

from pipeline_service.errors import InvalidPipeline, PipelineNotFound, ServiceError
from pipeline_service.pipeline.budget import PipelineLimits
from pipeline_service.pipeline.compiler import compile_pipeline
from pipeline_service.pipeline.definition import PipelineDefinition
from pipeline_service.pipeline.engine import CompiledPipeline

Loader = Callable[[int], Awaitable[PipelineDefinition | None]]
# A refusal is cached as a factory: each request raises a fresh exception of its own.
Entry = CompiledPipeline | Callable[[], ServiceError]


class PipelineCache:
    def __init__(self, load: Loader, limits: PipelineLimits | None = None) -> None:
        self._load = load
        self.limits = limits or PipelineLimits()
        self._entries: dict[int, Entry] = {}
        self._loading: dict[int, asyncio.Future[Entry]] = {}
        self._generation = 0  # bumped by every invalidation; a load that raced one is not kept
        self.listening = False

    async def get(self, pipeline_id: int) -> CompiledPipeline:
        entry = self._entries.get(pipeline_id) if self.listening else None
        if entry is None:
            entry = await self._load_once(pipeline_id)
        if isinstance(entry, CompiledPipeline):
            return entry
        raise entry()

    def invalidate(self, pipeline_id: int | None) -> None:
        self._generation += 1
        if pipeline_id is None:
            self._entries.clear()
        else:
            self._entries.pop(pipeline_id, None)

    def set_listening(self, listening: bool) -> None:
        self.listening = listening

    async def _load_once(self, pipeline_id: int) -> Entry:
        """Concurrent misses for one pipeline share a single database read."""
        pending = self._loading.get(pipeline_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._loading[pipeline_id] = future
        generation = self._generation
        try:
            entry = await self._build(pipeline_id)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            del self._loading[pipeline_id]
        if generation == self._generation and self.listening:
            self._entries[pipeline_id] = entry
        future.set_result(entry)
        return entry

    async def _build(self, pipeline_id: int) -> Entry:
        definition = await self._load(pipeline_id)
        if definition is None:
            return partial(PipelineNotFound, pipeline_id)
        try:
            return compile_pipeline(definition, self.limits)
        except InvalidPipeline as error:
            return partial(InvalidPipeline, error.problems, pipeline_id)
