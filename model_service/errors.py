"""What the mock detector answers when it will not detect (see service_kit.errors)."""

from http import HTTPStatus
from typing import Self

from service_kit.errors import ProblemError


class SimulatedFailure(ProblemError):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    slug = "simulated-failure"
    summary = "A simulated failure (MODEL_FAILURE_RATE)."

    def __init__(self) -> None:
        super().__init__("Simulated failure (MODEL_FAILURE_RATE)")

    @classmethod
    def example(cls) -> Self:
        return cls()
