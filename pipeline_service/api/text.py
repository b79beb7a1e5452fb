"""Text a client sends must be text PostgreSQL and JSON can hold: no NUL characters, no
unpaired surrogates (JSON's "\\ud800" escape decodes to one), and numbers must be finite.
Checked where a request is validated, so the answer is a 422 naming the field, never a 500
from the database or the JSON encoder."""

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from pipeline_service.api.json_body import OutOfRange

SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` is not acceptable text, or None."""
    if "\x00" in value:
        return "contains a NUL character (U+0000), which text cannot hold here"
    found = SURROGATE.search(value)
    if found:
        return (
            f"contains an unpaired surrogate (U+{ord(found.group()):04X}), which is not "
            "valid Unicode text"
        )
    return None


def _checked(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise PydanticCustomError("invalid_text", problem)
    return value


Text = Annotated[str, AfterValidator(_checked)]


def printable(value: str) -> str:
    """`value` safe to put in a JSON answer (unpaired surrogates escaped)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _where(path: tuple[Any, ...]) -> str:
    return ".".join(printable(str(part)) for part in path) or "the value"


def data_problem(value: Any, path: tuple[Any, ...] = ()) -> str | None:
    """The first string (key or value) or number in a JSON document that is not acceptable,
    said with where it is; None if there is none."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{_where(path)} {problem}" if problem else None
    if isinstance(value, OutOfRange):
        return f"{_where(path)} is an integer of {value.digits} digits, out of any range here"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{_where(path)} is {value}; send a finite number"
    items: Any = ()
    if isinstance(value, dict):
        for key in value:
            problem = text_problem(str(key))
            if problem:
                return f"the key {printable(str(key))!r} {problem}"
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, item in items:
        problem = data_problem(item, (*path, key))
        if problem:
            return problem
    return None


def _checked_data(value: Any) -> Any:
    problem = data_problem(value)
    if problem:
        raise PydanticCustomError("invalid_text", problem)
    return value


CleanData = AfterValidator(_checked_data)
