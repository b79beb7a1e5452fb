"""Conditional changes of a pipeline (RFC 9110, section 13): its version is its entity tag.

Answers that carry a pipeline send `ETag: "<version>"`; PUT and DELETE honour `If-Match`, so
two people editing the same pipeline cannot silently overwrite each other's change.
"""

import re
from typing import Annotated

from fastapi import Header, Response
from fastapi.exceptions import RequestValidationError

# One or more entity tags, comma-separated, or "*". A tag may contain a comma, so the list is
# matched as a whole rather than split.
_TAG = r'(?:W/)?"[^"]*"'
TAG_LIST = re.compile(rf"\s*{_TAG}\s*(?:,\s*{_TAG}\s*)*")
TAG = re.compile(r'(W/)?"([^"]*)"')
EXPECTED_FORM = 'one or more quoted versions as the ETag header gives them, e.g. "3", or *'

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1024,
        description='Change it only if it is still at this version: the ETag of your GET ("3"). '
        "Otherwise 412 and nothing is written. `*` or no header: whatever its version.",
        openapi_examples={"version 3": {"value": '"3"'}},
    ),
]

ETAG_HEADER = {
    "ETag": {
        "description": 'The pipeline\'s version, quoted ("3"): send it back as If-Match.',
        "schema": {"type": "string"},
    }
}


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def expected_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an If-Match header allows; None: any (no header, or `*`).

    If-Match compares strongly, so a weak tag (W/"3") or one that is not a version never
    matches; a value that is not a list of quoted tags at all is a 422.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    if not TAG_LIST.fullmatch(if_match):
        raise RequestValidationError(
            [
                {
                    "loc": ("header", "If-Match"),
                    "msg": f"expected {EXPECTED_FORM}",
                    "type": "value_error",
                }
            ]
        )
    return frozenset(
        int(value)
        for weak, value in TAG.findall(if_match)
        if not weak and value.isascii() and value.isdigit()
    )
