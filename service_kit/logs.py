"""Structured JSON logs on stdout, each line carrying the request id of the request it
belongs to (a context variable set by `ObserveRequests`)."""

import logging
import sys
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

ACCESS_LOGGER = "access"  # one line per request


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class StdoutHandler(logging.StreamHandler[TextIO]):
    """Looks sys.stdout up at each line, so a replaced stdout (tests, reload) is followed."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def json_formatter() -> logging.Formatter:
    return OrjsonFormatter(
        "{levelname}{name}{process}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
        timestamp=True,  # ISO 8601, UTC
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's copy with ANSI colours
    )


def configure_logging(level: str | int = "INFO") -> None:
    """JSON lines on stdout for the root logger and uvicorn's; idempotent.

    uvicorn's own access log is switched off: `ObserveRequests` writes one richer line per
    request instead (run uvicorn with --no-access-log as well to skip its formatting work)."""
    root = logging.getLogger()
    if not any(isinstance(h, StdoutHandler) for h in root.handlers):
        handler = StdoutHandler()
        handler.setFormatter(json_formatter())
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request it sends at INFO: one more line per request, no news in it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
