"""What can go wrong, in the service's own words: each class declares its HTTP status, its
problem type slug and its extension members (see `service_kit.errors.ProblemError`), so the
handlers and the API docs read them from here. Adding an error is one class here (with its
`example`) and its test."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any, ClassVar, Self

from service_kit.errors import RETRY_AFTER, ProblemError


class ServiceError(ProblemError):
    """Base class of the pipeline service's errors. `run_id` is set when a failed run was
    recorded, and then sent with the answer."""

    members: ClassVar[tuple[str, ...]] = ("run_id",)
    run_id: int | None = None


class PipelineNotFound(ServiceError):
    status = HTTPStatus.NOT_FOUND
    slug = "pipeline-not-found"
    summary = "There is no active pipeline with that id (or none at all, for its versions)."

    def __init__(self, pipeline_id: int, *, deleted_too: bool = False) -> None:
        what = "pipeline" if deleted_too else "active pipeline"
        super().__init__(f"There is no {what} with id {pipeline_id}")
        self.pipeline_id = pipeline_id

    @classmethod
    def example(cls) -> Self:
        return cls(7)


class PipelineChanged(ServiceError):
    """A conditional change (If-Match) named a version the pipeline is no longer at."""

    status = HTTPStatus.PRECONDITION_FAILED
    slug = "pipeline-changed"
    summary = "If-Match names a version the pipeline is no longer at; nothing was written."
    members = (*ServiceError.members, "current_version")

    def __init__(self, pipeline_id: int, current_version: int) -> None:
        super().__init__(
            f"Pipeline {pipeline_id} is at version {current_version}, not the one If-Match "
            "names: it was changed meanwhile",
            "GET it again, apply your change to that, and send it with "
            f'If-Match: "{current_version}"',
        )
        self.pipeline_id = pipeline_id
        self.current_version = current_version

    @classmethod
    def example(cls) -> Self:
        return cls(2, 3)


class RunNotFound(ServiceError):
    status = HTTPStatus.NOT_FOUND
    slug = "run-not-found"
    summary = "There is no stored run with that id."

    def __init__(self, run_id: int) -> None:
        super().__init__(f"There is no stored run with id {run_id}")
        self.run_id_asked = run_id

    @classmethod
    def example(cls) -> Self:
        return cls(42)


@dataclass(frozen=True, slots=True)
class StepProblem:
    """One thing wrong with one step (index None: with the pipeline as a whole)."""

    index: int | None
    step_type: str | None
    message: str
    field: str | None = None

    def __str__(self) -> str:
        where = "pipeline" if self.index is None else f"step {self.index} ({self.step_type})"
        field = f", field '{self.field}'" if self.field else ""
        return f"{where}{field}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class InvalidPipeline(ServiceError):
    """A pipeline definition that cannot run: unknown step, bad params, impossible order."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    slug = "invalid-pipeline"
    summary = (
        "The definition cannot run (unknown step, bad params, impossible order, name taken); "
        "`errors` lists every problem with its step."
    )
    members = (*ServiceError.members, "errors")

    def __init__(self, problems: list[StepProblem], pipeline_id: int | None = None) -> None:
        name = f"Pipeline {pipeline_id}" if pipeline_id is not None else "The pipeline"
        super().__init__(f"{name} is not valid: " + "; ".join(map(str, problems)))
        self.problems = problems
        self.pipeline_id = pipeline_id

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [problem.as_dict() for problem in self.problems]

    @classmethod
    def example(cls) -> Self:
        return cls(
            [
                StepProblem(0, "resize", "Input should be greater than or equal to 1", "width"),
                StepProblem(
                    0,
                    "resize",
                    "needs image as input but the pipeline starts with encoded image bytes "
                    "(the upload); put decode before it",
                ),
            ]
        )


class ClientInputError(ServiceError):
    """The client sent something we cannot process: a 4xx, and no run is stored."""


class UnsupportedImage(ClientInputError):
    """The upload is not an image we can decode."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    slug = "unsupported-image"
    summary = (
        "The file is not a JPEG, PNG, WebP or BMP image, its header cannot be read, it "
        "declares more pixels than its size warrants (MAX_PIXELS_PER_BYTE), has too many "
        "scans (MAX_JPEG_SCANS), or cannot be decoded completely (truncated, corrupt)."
    )

    @classmethod
    def example(cls) -> Self:
        return cls(
            "The uploaded file (5120 bytes) could not be decoded: it is a TIFF image (judged "
            "from its first bytes)",
            "accepted formats: JPEG, PNG, WebP or BMP",
        )


class ImageTooLarge(ClientInputError):
    """The image declares more pixels than allowed."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    slug = "image-too-large"
    summary = "The image has more pixels than MAX_IMAGE_PIXELS."

    @classmethod
    def example(cls) -> Self:
        return cls(
            "The image is 30000x30000 = 900000000 pixels; the limit is 50000000 pixels "
            "(MAX_IMAGE_PIXELS)"
        )


class UploadTooLarge(ClientInputError):
    """The request body is larger than allowed (refused before it is read)."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    slug = "upload-too-large"
    summary = "The body is larger than MAX_UPLOAD_BYTES."

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"The upload is larger than {max_bytes} bytes (MAX_UPLOAD_BYTES)")

    @classmethod
    def example(cls) -> Self:
        return cls(20_971_520)


class HeadersTooLarge(ClientInputError):
    """The request's headers are larger than allowed (refused before routing)."""

    status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    slug = "headers-too-large"
    summary = "The request's headers are larger than MAX_HEADER_BYTES."

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(
            f"The request's headers take {size} bytes; at most {max_bytes} are accepted "
            "(MAX_HEADER_BYTES)",
            "send fewer or shorter headers",
        )

    @classmethod
    def example(cls) -> Self:
        return cls(9120, 8192)


class HeadersTooSlow(ClientInputError):
    """The request's headers did not arrive in time (answered by the HTTP protocol itself,
    pipeline_service/http_protocol.py); the connection is closed."""

    status = HTTPStatus.REQUEST_TIMEOUT
    slug = "request-timeout"
    summary = "The headers did not arrive within HEADER_TIMEOUT_S (connection closed)."

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"The request's headers did not arrive within {timeout_s:g} s (HEADER_TIMEOUT_S)",
            "send them at once",
        )

    @classmethod
    def example(cls) -> Self:
        return cls(10)


class BodyTooSlow(ClientInputError):
    """The request body did not arrive in time; the connection is closed after the answer."""

    status = HTTPStatus.REQUEST_TIMEOUT
    slug = "request-timeout"
    summary = "The body did not arrive within REQUEST_BODY_TIMEOUT_S (connection closed)."

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"The request body did not arrive within {timeout_s:g} s (REQUEST_BODY_TIMEOUT_S)",
            "send it faster, or a smaller one",
        )

    def header_values(self) -> dict[str, str]:
        return {"Connection": "close"}  # what is left of the body is not worth reading

    @classmethod
    def example(cls) -> Self:
        return cls(60)


class IdempotencyConflict(ClientInputError):
    """An Idempotency-Key already stands for a different request."""

    status = HTTPStatus.CONFLICT
    slug = "idempotency-key-reused"
    summary = "The Idempotency-Key was already used for another request."

    def __init__(self, key: str, used_with: str, earlier_run_id: int) -> None:
        super().__init__(
            f"The Idempotency-Key {key!r} was already used with {used_with} (run {earlier_run_id})",
            "send a new key for a new request, or the same image and pipeline to get the "
            "stored result",
        )
        self.earlier_run_id = earlier_run_id

    @classmethod
    def example(cls) -> Self:
        return cls("a1b2", "a different image", 42)


class ImageDoesNotFit(ClientInputError):
    """The image is too small for a step's parameters (e.g. a crop region outside it)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    slug = "image-does-not-fit"
    summary = "The image is too small for a step's params (e.g. a crop region outside it)."

    @classmethod
    def example(cls) -> Self:
        return cls(
            "The crop region starts at x=2000, y=0, outside the 1920x1080 image reaching this step",
            "send a larger image or change the crop step",
        )


class ModelServiceError(ServiceError):
    """The model service could not give an answer; the run is recorded as failed."""


class ModelUnavailable(ModelServiceError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "model-unavailable"
    summary = "The model service cannot be reached (the failed run is stored; see Retry-After)."
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": RETRY_AFTER}

    def __init__(self, base_url: str, cause: str) -> None:
        super().__init__(
            f"The model service at {base_url} cannot be reached ({cause})", "try again later"
        )
        # Its connections were already retried with backoff; every 503 says when to retry.
        self.retry_after_s = 1.0

    @classmethod
    def example(cls) -> Self:
        error = cls("http://127.0.0.1:8001", "ConnectError")
        error.run_id = 44
        return error


class ModelCircuitOpen(ModelUnavailable):
    """The model service failed repeatedly; calls fail fast until a trial call succeeds."""

    slug = "model-circuit-open"
    summary = "The model service failed repeatedly: calls to it are paused (see Retry-After)."
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": RETRY_AFTER}

    def __init__(self, failures: int, retry_after_s: float) -> None:
        ProblemError.__init__(  # not ModelUnavailable's: another sentence
            self,
            f"The model service failed {failures} times in a row, so calls to it are paused",
            f"try again in {retry_after_s:g} s",
        )
        self.retry_after_s = retry_after_s

    @classmethod
    def example(cls) -> Self:
        return cls(5, 5.0)


class Overloaded(ServiceError):
    """This process already has as many image requests in flight as it admits."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "overloaded"
    summary = (
        "This process works on ADMIT_IMAGE_REQUESTS images already; refused at once, before "
        "the upload was read (see Retry-After)."
    )
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": RETRY_AFTER}

    def __init__(self, in_flight: int, limit: int, retry_after_s: float = 1.0) -> None:
        super().__init__(
            f"This process is already working on {in_flight} images, its limit "
            f"(ADMIT_IMAGE_REQUESTS = {limit})",
            f"try again in {retry_after_s:g} s",
        )
        self.retry_after_s = retry_after_s

    @classmethod
    def example(cls) -> Self:
        return cls(32, 32)


class ClientGone(Exception):
    """The client closed its connection: nobody is left to answer, so the run stops. Never
    answered (there is no one to answer); logged as 499, nginx's "client closed request"."""


class ModelTimeout(ModelServiceError):
    status = HTTPStatus.GATEWAY_TIMEOUT
    slug = "model-timeout"
    summary = "The model service did not answer in time (the failed run is stored)."

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"The model service did not answer within {timeout_s:g} s (MODEL_TIMEOUT_S)",
            "try again later",
        )

    @classmethod
    def example(cls) -> Self:
        error = cls(5)
        error.run_id = 45
        return error


class ModelBadResponse(ModelServiceError):
    status = HTTPStatus.BAD_GATEWAY
    slug = "model-bad-response"
    summary = "The model service answered an error or no boxes (the failed run is stored)."

    @classmethod
    def example(cls) -> Self:
        error = cls("The model service answered HTTP 500 instead of boxes", "try again later")
        error.run_id = 43
        return error


class StepFailed(ServiceError):
    """A step raised something unexpected (a bug, not the client's fault)."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    slug = "step-failed"
    summary = "A step failed unexpectedly (a bug; the failed run is stored)."

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"A pipeline step failed unexpectedly: {type(cause).__name__}")

    @classmethod
    def example(cls) -> Self:
        error = cls(ValueError())
        error.run_id = 46
        return error


class DatabaseUnavailable(ServiceError):
    """PostgreSQL cannot be reached right now."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "database-unavailable"
    summary = "PostgreSQL cannot be reached (see Retry-After)."
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": RETRY_AFTER}

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "try again shortly")
        self.retry_after_s = 1.0  # the pool reconnects by itself once it is back

    @classmethod
    def example(cls) -> Self:
        return cls("The database cannot be reached (ConnectionRefusedError)")


OK = "ok"  # what a readiness check says of a dependency that answers


class NotReady(ServiceError):
    """A dependency does not answer (GET /readyz); `checks` says which."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "not-ready"
    summary = "A dependency does not answer; `checks` says which (see Retry-After)."
    members = (*ServiceError.members, "checks")
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": RETRY_AFTER}

    def __init__(self, checks: dict[str, str]) -> None:
        down = "; ".join(f"{name} is down ({why})" for name, why in checks.items() if why != OK)
        super().__init__(f"Not ready: {down}".rstrip("."))
        self.checks = checks
        self.retry_after_s = 5.0  # a probe period: readiness is checked again by then

    @classmethod
    def example(cls) -> Self:
        return cls(
            {
                "database": "ok",
                "model_service": "http://127.0.0.1:8001 cannot be reached (ConnectError)",
            }
        )


ADMIN_TOKEN_CHALLENGE = 'Bearer realm="pipelines"'


class AdminTokenMissing(ServiceError):
    status = HTTPStatus.UNAUTHORIZED
    slug = "unauthorized"
    summary = "Changing pipelines needs the admin token, and none was sent."
    headers: ClassVar[Mapping[str, str]] = {
        "WWW-Authenticate": f"{ADMIN_TOKEN_CHALLENGE}: the token is sent as a bearer token."
    }

    def __init__(self) -> None:
        super().__init__(
            "Changing pipelines needs the admin token",
            "send 'Authorization: Bearer <token>' with the value of PIPELINE_ADMIN_TOKEN",
        )

    def header_values(self) -> dict[str, str]:
        return {"WWW-Authenticate": ADMIN_TOKEN_CHALLENGE}

    @classmethod
    def example(cls) -> Self:
        return cls()


class AdminTokenWrong(ServiceError):
    status = HTTPStatus.FORBIDDEN
    slug = "forbidden"
    summary = "The bearer token is not PIPELINE_ADMIN_TOKEN."

    def __init__(self) -> None:
        super().__init__("The bearer token is not the pipeline admin token")

    @classmethod
    def example(cls) -> Self:
        return cls()


class AdminDisabled(ServiceError):
    status = HTTPStatus.FORBIDDEN
    slug = "forbidden"
    summary = "Changing pipelines is disabled: PIPELINE_ADMIN_TOKEN is not configured."

    def __init__(self) -> None:
        super().__init__(
            "Changing pipelines is disabled because no admin token is configured",
            "set PIPELINE_ADMIN_TOKEN in the pipeline service's environment (or .env), restart "
            "it, and send the token as 'Authorization: Bearer <token>'",
        )

    @classmethod
    def example(cls) -> Self:
        return cls()


# Groups, for the routes that document them (see api/).
REFUSED_IMAGES = (UnsupportedImage, ImageTooLarge, ImageDoesNotFit)
# Refused before the route runs: slow or oversized requests, and load shedding.
REQUEST_LIMITS = (HeadersTooSlow, BodyTooSlow, HeadersTooLarge, Overloaded)
MODEL_FAILURES = (ModelBadResponse, ModelUnavailable, ModelCircuitOpen, ModelTimeout)
ADMIN_REFUSALS = (AdminTokenMissing, AdminTokenWrong, AdminDisabled)
