"""GET /readyz: can this process do its work? PostgreSQL and the model service must answer.

(GET /healthz, the liveness check that looks at nothing, is in `service_kit.ops_routes`.)
"""

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pipeline_service.api.dependencies import RuntimeDep
from pipeline_service.api.schemas import problem_responses
from pipeline_service.errors import OK, NotReady
from service_kit.openapi import schema_examples

router = APIRouter(tags=["operations"])


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=schema_examples(
            {"status": "ready", "checks": {"database": "ok", "model_service": "ok"}}
        )
    )

    status: str = Field(description='"ready"')
    checks: dict[str, str] = Field(description='Each dependency: "ok", or what is wrong.')


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and the model service answer",
    description="200 when both answer within READINESS_TIMEOUT_S, otherwise 503 naming the "
    "dependency that is down. Use it to decide whether to send traffic here.",
    response_model=Readiness,
    responses=problem_responses(NotReady),
)
async def readyz(runtime: RuntimeDep) -> Readiness:
    checks = await runtime.readiness.check()  # on connections and a thread of its own
    if any(reason != OK for reason in checks.values()):
        raise NotReady(checks)
    return Readiness(status="ready", checks=checks)
