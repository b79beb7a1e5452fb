"""One image through one pipeline, as POST /process_image asks: with an Idempotency-Key, a
request that was already answered gets the run stored for it instead of running again,
whether that run was stored before it came (found by its key) or while it ran (the save step
found the key taken: see pipeline_service.idempotency)."""

from concurrent.futures import Executor
from dataclasses import dataclass

from pipeline_service.db.results import StoredRun
from pipeline_service.idempotency import IdempotentRequests
from pipeline_service.pipeline.cache import PipelineCache
from pipeline_service.pipeline.engine import StillWanted
from pipeline_service.pipeline.types import IdempotencyClaim, RunContext, RunServices


@dataclass(frozen=True, slots=True)
class Processed:
    run: RunContext | StoredRun  # StoredRun: the answer of an earlier request with its key
    replayed: bool

    @property
    def run_id(self) -> int | None:
        return self.run.id if isinstance(self.run, StoredRun) else self.run.run_id


class ImageProcessing:
    def __init__(
        self,
        pipelines: PipelineCache,
        services: RunServices,
        cpu_pool: Executor,
        idempotency: IdempotentRequests,
    ) -> None:
        self._pipelines = pipelines
        self._services = services
        self._cpu_pool = cpu_pool
        self._idempotency = idempotency

    async def process(
        self,
        pipeline_id: int,
        data: bytes,
        idempotency_key: str | None = None,
        still_wanted: StillWanted | None = None,
    ) -> Processed:
        """`still_wanted`: whether the client still waits for the answer (checked before the
        decode and before the model call; see CompiledPipeline.run)."""
        claim: IdempotencyClaim | None = None
        image_sha256: str | None = None
        if idempotency_key is not None:
            claim, image_sha256 = await self._idempotency.claim_for(
                idempotency_key, pipeline_id, data, self._cpu_pool
            )
            earlier = await self._idempotency.earlier_run(claim)
            if earlier is not None:
                return Processed(earlier, replayed=True)
        pipeline = await self._pipelines.get(pipeline_id)
        ctx = await pipeline.run(
            data,
            self._services,
            self._cpu_pool,
            idempotency=claim,
            image_sha256=image_sha256,
            still_wanted=still_wanted,
        )
        if ctx.replayed and ctx.run_id is not None:
            # a request with the same key was stored first while this one ran
            stored = await self._idempotency.stored_run(ctx.run_id)
            if stored is not None:
                return Processed(stored, replayed=True)
        return Processed(ctx, replayed=False)
