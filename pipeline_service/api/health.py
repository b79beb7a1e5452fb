"""GET /readyz: can this process do its work? PostgreSQL and the model service must answer.

(GET /healthz, the liveness check that looks at nothing, is in `service_kit.ops_routes`.)
"""

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from pipeline_service.api.schemas import Problem
from pipeline_service.errors import OK, NotReady
from pipeline_service.runtime import Runtime
from service_kit.openapi import json_example, problem_example, problem_response

router = APIRouter(tags=["operations"])


class Readiness(BaseModel):
    status: str = Field(description='"ready"')
    checks: dict[str, str] = Field(description='Each dependency: "ok", or what is wrong.')


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and the model service answer",
    description="200 when both answer within READINESS_TIMEOUT_S, otherwise 503 naming the "
    "dependency that is down. Use it to decide whether to send traffic here.",
    response_model=Readiness,
    responses={
        200: json_example({"status": "ready", "checks": {"database": "ok", "model_service": "ok"}}),
        503: problem_response(
            Problem,
            "A dependency does not answer; `checks` says which.",
            problem_example(
                503,
                "Not ready: model_service is down (http://127.0.0.1:8001 cannot be reached "
                "(ConnectError)).",
                "not-ready",
                checks={
                    "database": "ok",
                    "model_service": "http://127.0.0.1:8001 cannot be reached (ConnectError)",
                },
            ),
        ),
    },
)
async def readyz(request: Request) -> Readiness:
    runtime: Runtime = request.app.state.runtime
    checks = await runtime.readiness.check()  # on connections and a thread of its own
    if any(reason != OK for reason in checks.values()):
        raise NotReady(checks)
    return Readiness(status="ready", checks=checks)
