"""The values that flow between steps, and the per-run context steps may read and write."""

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pipeline_service.pipeline.formats.header import DecodeLimits

if TYPE_CHECKING:
    from pipeline_service.pipeline.definition import PipelineRef

CAR_LABEL = 1


class Kind(StrEnum):
    """What a step consumes and produces; the engine checks that neighbours fit."""

    ENCODED = "encoded image bytes"
    IMAGE = "image"
    PAYLOAD = "base64 payload"
    DETECTIONS = "detections"
    STORED = "stored result"


@dataclass(frozen=True, slots=True)
class SizeBound:
    """The most a step can hand on, for the compiler's memory estimate (pipeline/budget.py):
    an image of at most `pixels` (width x height, once a resize fixed them) x channels x
    bytes per sample, or a base64 payload of `payload_bytes` characters."""

    pixels: int
    channels: int = 3
    itemsize: int = 1
    width: int | None = None
    height: int | None = None
    payload_bytes: int | None = None

    @property
    def nbytes(self) -> int:
        if self.payload_bytes is not None:
            return self.payload_bytes
        return self.pixels * self.channels * self.itemsize


NOTHING = SizeBound(0, 0)


@dataclass(frozen=True, slots=True)
class Box:
    top_left_x: float
    top_left_y: float
    w: float
    h: float
    conf: float
    label: int

    def as_tuple(self) -> tuple[float, float, float, float, float, int]:
        return (self.top_left_x, self.top_left_y, self.w, self.h, self.conf, self.label)


def best_car(boxes: Iterable[Box]) -> Box | None:
    """The most confident car box, or None."""
    return max((box for box in boxes if box.label == CAR_LABEL), key=lambda b: b.conf, default=None)


@dataclass(frozen=True, slots=True)
class ImagePayload:
    """An image as the model service receives it."""

    image: str  # base64 text
    encoding: str  # raw | png | jpeg
    shape: tuple[int, ...]
    dtype: str


class ModelClientProtocol(Protocol):
    async def detect(self, payload: ImagePayload) -> list[Box]: ...


class RunRecorder(Protocol):
    async def record_success(self, ctx: "RunContext") -> int: ...
    async def record_failure(self, ctx: "RunContext", error: str) -> int: ...


class RunObserver(Protocol):
    """Told how each run ended: "succeeded", "failed" or "rejected" (the client's input)."""

    def run_finished(self, ctx: "RunContext", status: str) -> None: ...


class Unobserved:
    def run_finished(self, ctx: "RunContext", status: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class RunServices:
    """What steps may use beyond their input: the model, the database, the limits."""

    model: ModelClientProtocol
    recorder: RunRecorder
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)
    observer: RunObserver = field(default_factory=Unobserved)


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """Bind the run this request stores to `key`, unless the key already stands for a run:
    then the save step answers that run instead (`RunContext.replayed`)."""

    key: str
    pipeline_id: int
    request_sha256: str
    ttl_s: int


@dataclass(slots=True)
class RunContext:
    pipeline: "PipelineRef"
    data: bytes
    services: RunServices
    image_sha256: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    detections: list[Box] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    run_id: int | None = None
    idempotency: IdempotencyClaim | None = None
    replayed: bool = False  # run_id is an earlier run with the same Idempotency-Key

    def fingerprint(self) -> None:
        if self.image_sha256 is None:
            self.image_sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def car_detected(self) -> bool | None:
        if self.detections is None:
            return None
        return any(box.label == CAR_LABEL for box in self.detections)

    def best_car(self) -> Box | None:
        return best_car(self.detections or ())

    def record_timing(self, key: str, started: float) -> None:
        self.timings_ms[key] = round((time.perf_counter() - started) * 1000, 3)


Value = Any
