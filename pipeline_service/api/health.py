"""GET /readyz: can this process do its work? PostgreSQL and the model service must answer.

(GET /healthz, the liveness check that looks at nothing, is in `service_kit.ops_routes`.)
"""

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pipeline_service.api.dependencies import RuntimeDep
from pipeline_service.api.schemas import problem_responses
from pipeline_service.db.health import ping as ping_database
from pipeline_service.errors import OK, NotReady, ServiceError
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


async def _check(probe: Awaitable[Any], timeout_s: float) -> str:
    """ "ok", or a short reason (never a traceback, never a connection string)."""
    try:
        async with asyncio.timeout(timeout_s):
            reason = await probe
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except ServiceError as error:
        return error.reason  # its advice is for clients of the service, not for operators
    except Exception as error:
        return f"check failed ({type(error).__name__})"
    return reason or OK


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and the model service answer",
    description="200 when both answer within READINESS_TIMEOUT_S, otherwise 503 naming the "
    "dependency that is down. Use it to decide whether to send traffic here.",
    response_model=Readiness,
    responses=problem_responses(NotReady),
)
async def readyz(runtime: RuntimeDep) -> Readiness:
    timeout_s = runtime.settings.readiness_timeout_s
    database, model = await asyncio.gather(
        _check(ping_database(runtime.db), timeout_s),
        _check(runtime.model.ping(timeout_s), timeout_s),
    )
    checks = {"database": database, "model_service": model}
    if any(reason != OK for reason in checks.values()):
        raise NotReady(checks)
    return Readiness(status="ready", checks=checks)
