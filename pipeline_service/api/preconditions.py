"""Conditional changes of a pipeline (RFC 9110, section 13): its version is its entity tag.

Answers that carry a pipeline send `ETag: "<version>"`; PUT and DELETE honour `If-Match`, so
two people editing the same pipeline cannot silently overwrite each other's change, and GET
honours `If-None-Match` (304 when the client's copy is current).
"""

import re
from typing import Annotated, Any

from fastapi import Header, Response

from service_kit.errors import FieldProblem, InvalidRequest
from service_kit.openapi import header

# One or more entity tags, comma-separated, or "*". A tag may contain a comma, so the list is
# matched as a whole rather than split.
_TAG = r'(?:W/)?"[^"]*"'
TAG_LIST = re.compile(rf"\s*{_TAG}\s*(?:,\s*{_TAG}\s*)*")
TAG = re.compile(r'(W/)?"([^"]*)"')
EXPECTED_FORM = 'one or more quoted versions as the ETag header gives them, e.g. "3", or *'


def _tag_header(name: str, description: str) -> Any:
    return Header(
        alias=name,
        max_length=1024,
        description=description,
        openapi_examples={"version 3": {"value": '"3"'}},
    )


IfMatch = Annotated[
    str | None,
    _tag_header(
        "If-Match",
        'Change it only if it is still at this version: the ETag of your GET ("3"). '
        "Otherwise 412 and nothing is written. `*` or no header: whatever its version.",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    _tag_header(
        "If-None-Match",
        'The ETag of the copy you have ("3"): if the pipeline is still at that version, the '
        "answer is 304 with no body.",
    ),
]


def etag_header(description: str | None = None) -> dict[str, Any]:
    """A `responses=` entry that documents the ETag header (and its description, if given)."""
    entry: dict[str, Any] = {
        "headers": {
            "ETag": header('The pipeline\'s version, quoted ("3"): send it back as If-Match.')
        }
    }
    return entry if description is None else {**entry, "description": description}


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
    return frozenset(
        version
        for weak, tag in _entity_tags(if_match, "If-Match")
        if not weak and (version := _version(tag)) is not None
    )


def client_copy_is_current(if_none_match: str | None, version: int) -> bool:
    """If-None-Match on a GET: True when the client already has `version` (answer 304).
    If-None-Match compares weakly: W/"3" matches version 3 too."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(_version(tag) == version for _, tag in _entity_tags(if_none_match, "If-None-Match"))


def _entity_tags(value: str, name: str) -> list[tuple[bool, str]]:
    """(weak, tag) of each entity tag in the header; a 422 naming it if it is no tag list."""
    if not TAG_LIST.fullmatch(value):
        raise InvalidRequest([FieldProblem(name, f"expected {EXPECTED_FORM}")])
    return [(bool(weak), tag) for weak, tag in TAG.findall(value)]


def _version(tag: str) -> int | None:
    return int(tag) if tag.isascii() and tag.isdigit() else None
