"""What can go wrong, in the service's own words. The HTTP layer maps these to statuses."""

from dataclasses import asdict, dataclass


class ServiceError(Exception):
    """Base class; `detail` is a sentence a person can act on."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.run_id: int | None = None  # set when a failed run was recorded
        self.retry_after_s: float | None = None  # answered as a Retry-After header when set


class PipelineNotFound(ServiceError):
    def __init__(self, pipeline_id: int, detail: str | None = None) -> None:
        super().__init__(detail or f"There is no active pipeline with id {pipeline_id}.")
        self.pipeline_id = pipeline_id


class PipelineChanged(ServiceError):
    """A conditional change (If-Match) named a version the pipeline is no longer at."""

    def __init__(self, pipeline_id: int, current_version: int) -> None:
        super().__init__(
            f"Pipeline {pipeline_id} is at version {current_version}, not the one If-Match "
            "names: it was changed meanwhile. GET it again, apply your change to that, and "
            f'send it with If-Match: "{current_version}".'
        )
        self.pipeline_id = pipeline_id
        self.current_version = current_version


class RunNotFound(ServiceError):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"There is no stored run with id {run_id}.")
        self.run_id_asked = run_id


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

    def __init__(self, problems: list[StepProblem], pipeline_id: int | None = None) -> None:
        name = f"Pipeline {pipeline_id}" if pipeline_id is not None else "The pipeline"
        super().__init__(f"{name} is not valid: " + "; ".join(map(str, problems)) + ".")
        self.problems = problems
        self.pipeline_id = pipeline_id


class ClientInputError(ServiceError):
    """The client sent something we cannot process: a 4xx, and no run is stored."""


class UnsupportedImage(ClientInputError):
    """The upload is not an image we can decode."""


class ImageTooLarge(ClientInputError):
    """The image declares more pixels than allowed."""


class IdempotencyConflict(ClientInputError):
    """An Idempotency-Key already stands for a different request."""


class ImageDoesNotFit(ClientInputError):
    """The image is too small for a step's parameters (e.g. a crop region outside it)."""


class ModelServiceError(ServiceError):
    """The model service could not give an answer; the run is recorded as failed."""


class ModelUnavailable(ModelServiceError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        # Its connections were already retried with backoff; a client may try again soon.
        self.retry_after_s = 1.0


class ModelCircuitOpen(ModelUnavailable):
    """The model service failed repeatedly; calls fail fast until a trial call succeeds."""

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


# --- overload and clients that leave ------------------------------------------------------


class Overloaded(ServiceError):
    """This process already has as many image requests in flight as it admits."""

    def __init__(self, detail: str, retry_after_s: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ClientGone(ServiceError):
    """The client closed its connection: nobody is left to answer, so the work stops."""


class ModelTimeout(ModelServiceError):
    pass


class ModelBadResponse(ModelServiceError):
    pass


class StepFailed(ServiceError):
    """A step raised something unexpected (a bug, not the client's fault)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"A pipeline step failed unexpectedly: {type(cause).__name__}.")


class DatabaseUnavailable(ServiceError):
    """PostgreSQL cannot be reached right now."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.retry_after_s = 1.0  # the pool reconnects by itself once it is back
