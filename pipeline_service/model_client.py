"""HTTP client for the model service: one shared httpx.AsyncClient with keep-alive."""

import asyncio
import math
import random
from typing import Any

import httpx
import orjson

from pipeline_service.circuit_breaker import CircuitBreaker, CircuitOpen
from pipeline_service.errors import (
    ModelBadResponse,
    ModelCircuitOpen,
    ModelServiceError,
    ModelTimeout,
    ModelUnavailable,
)
from pipeline_service.model_transport import ModelTransport
from pipeline_service.pipeline.types import Box, ImagePayload
from service_kit.logs import REQUEST_ID


def parse_boxes(answer: Any) -> list[Box]:
    """Validate `{"boxes": [[x, y, w, h, conf, label], ...]}`; anything else is a bad answer."""
    if not isinstance(answer, dict) or not isinstance(answer.get("boxes"), list):
        raise ValueError('expected an object with a "boxes" list')
    boxes = []
    for raw in answer["boxes"]:
        if not (isinstance(raw, list) and len(raw) == 6):
            raise ValueError("each box must be a list of 6 numbers")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
            raise ValueError("each box must be a list of 6 numbers")
        if not all(math.isfinite(v) for v in raw) or raw[2] < 0 or raw[3] < 0:
            raise ValueError("box sizes must be finite and not negative")
        if not (0 <= raw[4] <= 1) or raw[5] != int(raw[5]):
            raise ValueError("conf must be within 0..1 and label an integer")
        x, y, w, h, conf, label = raw
        boxes.append(Box(float(x), float(y), float(w), float(h), float(conf), int(label)))
    return boxes


def backoff_delays(retries: int, first_s: float, cap_s: float = 2.0) -> list[float]:
    """Pauses before each retry: doubling from `first_s`, capped, each with jitter in
    [half, full] so that many clients do not retry in lockstep."""
    return [min(cap_s, first_s * 2**n) * random.uniform(0.5, 1.0) for n in range(retries)]


def _counts_against_model(error: BaseException) -> bool:
    return isinstance(error, ModelServiceError)


class ModelClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        connect_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_backoff_s: float = 0.1,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.connect_retries = connect_retries
        self.retry_backoff_s = retry_backoff_s
        self.breaker = breaker or CircuitBreaker(failure_threshold=0, reset_after_s=1.0)
        # Retries are ours (see _post), not the transport's: bounded, with jittered backoff,
        # inside the call's deadline, and only for connections that were never made.
        transport = transport or ModelTransport()
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def detect(self, payload: ImagePayload) -> list[Box]:
        body = orjson.dumps(
            {
                "image": payload.image,
                "encoding": payload.encoding,
                "shape": payload.shape,
                "dtype": payload.dtype,
            }
        )
        headers = {"content-type": "application/json"}
        request_id = REQUEST_ID.get()
        if request_id:  # the model service logs its side of the request under the same id
            headers["x-request-id"] = request_id
        try:
            with self.breaker.call(_counts_against_model):
                response = await self._post_within_deadline(body, headers)
                if response.status_code >= 500:
                    raise ModelBadResponse(
                        f"The model service answered HTTP {response.status_code} instead of boxes",
                        "try again later",
                    )
                if response.status_code == 200:
                    return self._boxes(response)
        except CircuitOpen as error:
            raise ModelCircuitOpen(self.breaker.failure_threshold, error.retry_after_s) from error
        # A 4xx: the service is up but refused what we sent; that says nothing about its health.
        raise ModelBadResponse(
            f"The model service answered HTTP {response.status_code} instead of boxes"
        )

    def _boxes(self, response: httpx.Response) -> list[Box]:
        try:
            return parse_boxes(orjson.loads(response.content))
        except (orjson.JSONDecodeError, ValueError) as error:
            raise ModelBadResponse(
                f"The model service answered something that is not a list of boxes: {error}"
            ) from error

    async def _post_within_deadline(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """The whole call, retries and pauses included, gets MODEL_TIMEOUT_S; a timeout is
        never retried (the model may still be working on it)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._post(body, headers)
        except (TimeoutError, httpx.TimeoutException) as error:
            raise ModelTimeout(self.timeout_s) from error
        except httpx.TransportError as error:
            raise ModelUnavailable(self.base_url, type(error).__name__) from error

    async def _post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST /predict; a refused connection (the request was never sent) is retried."""
        pauses = backoff_delays(self.connect_retries, self.retry_backoff_s)
        for pause in [*pauses, None]:
            try:
                return await self._http.post("/predict", content=body, headers=headers)
            except httpx.ConnectError:
                if pause is None:
                    raise
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")
