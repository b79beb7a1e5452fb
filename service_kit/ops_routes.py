"""GET /healthz and GET /metrics, the same on both services."""

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from service_kit.metrics import exposition
from service_kit.openapi import schema_examples

router = APIRouter(tags=["operations"])

METRICS_EXAMPLE = """\
# HELP http_requests_total HTTP requests answered, by route template, method and status.
# TYPE http_requests_total counter
http_requests_total{method="POST",route="/process_image",status="200"} 1523.0
# HELP http_request_duration_seconds Seconds from receiving a request to its answer's last byte.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.025",method="POST",route="/process_image"} 1490.0
"""


class Alive(BaseModel):
    model_config = ConfigDict(json_schema_extra=schema_examples({"status": "ok"}))

    status: str = Field(description='Always "ok": the process answers.')


@router.get(
    "/healthz",
    summary="Liveness: the process is up",
    description="Checks no dependency: answers 200 as long as the process serves HTTP.",
    response_model=Alive,
)
async def healthz() -> Alive:
    return Alive(status="ok")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="The Prometheus text exposition format, summed over every worker process.",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format.",
            "content": {
                CONTENT_TYPE_LATEST: {
                    "schema": {"type": "string"},
                    "example": METRICS_EXAMPLE,
                }
            },
        }
    },
)
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)
