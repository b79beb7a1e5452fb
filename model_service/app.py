"""POST /predict: imitates a detector. With probability `detection_probability` the answer is
the prepared car box, otherwise no box. The draw can be seeded for repeatable tests."""

import asyncio
import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from model_service.base64_check import decoded_size
from model_service.config import ModelSettings
from model_service.errors import SimulatedFailure
from service_kit import ops_routes
from service_kit.docs import serve_docs
from service_kit.errors import FieldProblem, InvalidRequest
from service_kit.gc_freeze import startup_objects_frozen
from service_kit.logs import configure_logging
from service_kit.metrics import forget_this_process
from service_kit.openapi import finish_openapi, problem_responses, schema_examples
from service_kit.problems import Problem, install_problem_handlers
from service_kit.requests import ObserveRequests
from service_kit.security_headers import SecurityHeaders

DTYPE_SIZES = {"uint8": 1, "float32": 4}
NOT_BASE64 = "not valid base64 (standard alphabet, padded to a multiple of 4)"


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=schema_examples(
            {
                "image": "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U",
                "encoding": "jpeg",
            }
        )
    )

    image: Annotated[str, Field(description="The image as base64.")]
    encoding: Literal["raw", "png", "jpeg"] = Field(
        "raw", description="raw pixel bytes (then shape and dtype are checked), png or jpeg."
    )
    shape: list[Annotated[int, Field(ge=1)]] | None = Field(None, min_length=2, max_length=3)
    dtype: Literal["uint8", "float32"] = "uint8"


class PredictResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=schema_examples({"boxes": [[412.0, 288.0, 186.0, 121.0, 0.87, 1]]})
    )

    boxes: list[list[float]] = Field(
        description="Empty, or [[top_left_x, top_left_y, w, h, conf, label]] (label 1 = car)."
    )


class Ready(BaseModel):
    model_config = ConfigDict(json_schema_extra=schema_examples({"status": "ready"}))

    status: str = Field(description='Always "ready": the mock has no dependencies.')


def _check_image(request: PredictRequest) -> None:
    size = decoded_size(request.image)
    if size is None:
        problem = NOT_BASE64
    elif request.encoding == "raw" and request.shape is not None:
        expected = math.prod(request.shape) * DTYPE_SIZES[request.dtype]
        if size == expected:
            return
        problem = (
            f"decodes to {size} bytes but shape {request.shape} of {request.dtype} needs {expected}"
        )
    else:
        return
    raise InvalidRequest([FieldProblem("image", problem)])


def create_app(settings: ModelSettings | None = None) -> FastAPI:
    settings = settings or ModelSettings()
    rng = random.Random(settings.seed)
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            with startup_objects_frozen(settings.gc_freeze):
                yield
        finally:
            forget_this_process()

    app = FastAPI(
        title="Model service (mock car detector)",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by serve_docs, without a CDN
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.add_middleware(ObserveRequests, replica_name=settings.replica_name)
    app.add_middleware(SecurityHeaders)
    app.include_router(ops_routes.router)
    serve_docs(app)

    @app.get(
        "/readyz",
        summary="Readiness: the mock detector can answer",
        tags=["operations"],
        response_model=Ready,
    )
    async def readyz() -> Ready:
        return Ready(status="ready")

    @app.post(
        "/predict",
        summary="Detect cars in one base64 image",
        tags=["detection"],
        response_model=PredictResponse,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
        responses=problem_responses(Problem, InvalidRequest, SimulatedFailure),
    )
    async def predict(request: Request) -> Response:
        # Parsed with pydantic's own JSON parser straight from bytes: the body is ~1.6 MB.
        try:
            body = PredictRequest.model_validate_json(await request.body())
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_url=False)) from None
        _check_image(body)
        if settings.latency_ms:
            await asyncio.sleep(settings.latency_ms / 1000)
        if settings.failure_rate and rng.random() < settings.failure_rate:
            raise SimulatedFailure()
        if settings.bad_answer_rate and rng.random() < settings.bad_answer_rate:
            bad = b'{"boxes": "simulated bad answer (MODEL_BAD_ANSWER_RATE)"}'
            return Response(bad, media_type="application/json")
        boxes: list[Any] = (
            [list(settings.box)] if rng.random() < settings.detection_probability else []
        )
        return Response(orjson.dumps({"boxes": boxes}), media_type="application/json")

    finish_openapi(app)
    return app
