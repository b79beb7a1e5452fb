"""The opaque `cursor` of GET /results: where the last page ended, the snapshot the listing
is pinned to, and a tag of its filters (a cursor is only valid with the filters it came from).
"""

import base64
import binascii
import hashlib
from dataclasses import astuple, dataclass
from datetime import UTC, datetime

import orjson

from pipeline_service.db.results import XID8_MAX, Position, RunFilters, is_valid_snapshot

MAX_CURSOR_CHARS = 16_384
VERSION = 1


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Cursor:
    snapshot: str
    after: Position


def _canonical(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()  # the same instant, whatever its offset
    return None if value is None else str(value)


def filters_tag(filters: RunFilters) -> str:
    canonical = orjson.dumps([_canonical(v) for v in astuple(filters)])
    return hashlib.sha256(canonical).hexdigest()[:16]


def encode_cursor(cursor: Cursor, filters: RunFilters) -> str:
    body = orjson.dumps(
        {
            "v": VERSION,
            "s": cursor.snapshot,
            "t": cursor.after.created_at.isoformat(),
            "i": cursor.after.id,
            "f": filters_tag(filters),
        }
    )
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, filters: RunFilters) -> Cursor:
    """The cursor, or InvalidCursor with a reason a person can act on."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = orjson.loads(raw)
        if not isinstance(body, dict) or body.get("v") != VERSION:
            raise ValueError("unknown layout")
        snapshot, created_at, run_id, tag = body["s"], body["t"], body["i"], body["f"]
        if not (isinstance(snapshot, str) and is_valid_snapshot(snapshot)):
            raise ValueError("bad snapshot")
        if not (type(run_id) is int and 0 < run_id <= XID8_MAX and isinstance(tag, str)):
            raise ValueError("bad position")
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None:
            raise ValueError("naive time")
        when.astimezone(UTC)  # an offset that pushes it out of years 1..9999
    except (
        binascii.Error,
        ValueError,
        KeyError,
        TypeError,
        OverflowError,
        orjson.JSONDecodeError,
    ) as error:
        raise InvalidCursor(
            "not a cursor this service handed out; drop it to start again from the newest run"
        ) from error
    if tag != filters_tag(filters):
        raise InvalidCursor(
            "this cursor belongs to a listing with other filters; send the same pipeline_id, "
            "car_detected, status, since and until as for the first page, or drop the cursor"
        )
    return Cursor(snapshot, Position(when, run_id))
