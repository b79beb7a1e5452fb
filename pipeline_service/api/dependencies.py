"""What handlers get from the running process, typed: `runtime: RuntimeDep`."""

from typing import Annotated

from fastapi import Depends, Request

from pipeline_service.pipelines import PipelineService
from pipeline_service.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime  # set by the app's lifespan
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_pipeline_service(runtime: RuntimeDep) -> PipelineService:
    return runtime.pipeline_service


PipelinesDep = Annotated[PipelineService, Depends(get_pipeline_service)]
