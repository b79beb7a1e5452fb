"""Errors answered as application/problem+json (RFC 9457), each declared by its class.

A class says its HTTP status (stdlib `HTTPStatus`: no web framework here, so the pipeline
engine can raise them), its problem type slug, which of its attributes are extension members
of the body, the headers it is answered with, and what it means for a client (`summary`, for
the API docs). An instance says what went wrong (`reason`) and, apart, what the client can do
about it (`advice`). Adding an error is one class: the handlers (`service_kit.problems`) and
the API docs (`service_kit.openapi.problem_responses`) read everything else from it.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from http import HTTPStatus
from math import ceil
from typing import Any, ClassVar, Self

PROBLEM_BASE = "/problems/"  # type URIs are relative references, as RFC 9457 allows
RETRY_AFTER = "Seconds to wait before trying again."


def default_slug(status: int) -> str:
    """The slug of an answer no class describes: its status phrase ("method-not-allowed")."""
    return HTTPStatus(status).phrase.lower().replace(" ", "-")


def problem_body(status: int, detail: str, slug: str | None = None, **extra: Any) -> dict:
    return {
        "type": PROBLEM_BASE + (slug or default_slug(status)),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }


class ProblemError(Exception):
    status: ClassVar[HTTPStatus] = HTTPStatus.INTERNAL_SERVER_ERROR
    slug: ClassVar[str] = "internal-error"
    summary: ClassVar[str] = "Something unexpected went wrong on the server."
    # Attributes sent as extension members of the body (when not None).
    members: ClassVar[tuple[str, ...]] = ()
    # Headers it is answered with (see `header_values`): name -> what it means, for the docs.
    headers: ClassVar[Mapping[str, str]] = {}

    retry_after_s: float | None = None  # answered as Retry-After when set

    def __init__(self, reason: str, advice: str | None = None) -> None:
        """`reason`: what went wrong, a sentence without its full stop. `advice`: what the
        client can do about it, if anything (appended after a semicolon)."""
        self.reason = reason
        self.advice = advice
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return f"{self.reason}; {self.advice}." if self.advice else f"{self.reason}."

    def body(self) -> dict[str, Any]:
        extra = {name: getattr(self, name) for name in self.members}
        return problem_body(
            self.status, self.detail, self.slug, **{k: v for k, v in extra.items() if v is not None}
        )

    def header_values(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, ceil(self.retry_after_s)))}

    @classmethod
    def example(cls) -> Self:
        """A typical instance, as the API docs show it. Classes that are only a common base
        (never raised as such) do not define one."""
        raise NotImplementedError(f"{cls.__name__} has no example")


def concrete_errors(base: type[ProblemError] = ProblemError) -> list[type[ProblemError]]:
    """Every class under `base` (itself included) that defines its own example: those are the
    errors clients can meet."""
    found, pending = [], [base]
    while pending:
        cls = pending.pop()
        if "example" in vars(cls) and cls is not ProblemError:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda cls: (cls.status, cls.slug, cls.__name__))


class InternalError(ProblemError):
    """Anything no other class describes (a bug): logged, never shown to the client."""

    def __init__(self) -> None:
        super().__init__("Something went wrong on our side", "it has been logged")

    @classmethod
    def example(cls) -> Self:
        return cls()


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with one field of a request (a parameter, a header, a body field)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidRequest(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    slug = "invalid-request"
    summary = "A parameter, header or the body is not valid; `errors` lists every problem."
    members = ("errors",)

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [asdict(problem) for problem in self.problems]

    @classmethod
    def example(cls) -> Self:
        return cls([FieldProblem("limit", "Input should be less than or equal to 500")])


class MalformedBody(ProblemError):
    """A body FastAPI cannot even parse: raised by FastAPI/Starlette themselves as an
    HTTPException(400), whose answer has this status and slug. (A JSON body that is text but
    not JSON is a 422 invalid-request.)"""

    status = HTTPStatus.BAD_REQUEST
    slug = "bad-request"
    summary = "The body cannot be read at all (a JSON body that is not UTF-8 text)."

    @classmethod
    def example(cls) -> Self:
        return cls("There was an error parsing the body")


class MalformedMultipart(MalformedBody):
    summary = "The multipart body is malformed (no boundary, broken parts)."

    @classmethod
    def example(cls) -> Self:
        return cls("Invalid multipart data")
