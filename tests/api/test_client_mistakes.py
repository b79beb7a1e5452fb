"""Never a 5xx for a client's mistake: text with NUL characters or unpaired surrogates
anywhere, timestamps that overflow once converted, out-of-range numbers, ambiguous requests.
Each is a 422 that names the field, and nothing is stored."""

import base64
import json
from typing import Any

import orjson
import pytest

from pipeline_service.api.cursor import filters_tag
from pipeline_service.db.results import RunFilters
from tests.fixtures.pipelines import AUTH, CAR_STEPS, TOKEN
from tests.fixtures.preview import everything_stored
from tests.fixtures.problems import assert_actionable_problem
from tests.fixtures.services import ClientFactory

NUL, SURROGATE = "\x00", "\\ud800"  # the surrogate as a JSON escape: Python would encode it


def json_text(body: dict[str, Any], raw: dict[str, str] | None = None) -> bytes:
    """`body` as JSON, with `raw` placeholders replaced by escapes JSON allows but UTF-8 text
    cannot hold (an unpaired surrogate)."""
    text = json.dumps(body)
    for placeholder, escape in (raw or {}).items():
        text = text.replace(placeholder, escape)
    return text.encode()


def pipeline(**changes: Any) -> dict[str, Any]:
    return {"name": "mistakes", "description": "", "steps": CAR_STEPS, **changes}


BODIES = {
    # field named in the answer: body
    "name": json_text(pipeline(name=f"bad{NUL}name")),
    "description": json_text(pipeline(description=f"a{NUL}b")),
    "steps.0.type": json_text(pipeline(steps=[{"type": f"decode{NUL}"}, *CAR_STEPS[1:]])),
    "steps.1.params": json_text(
        pipeline(steps=[CAR_STEPS[0], {"type": "resize", "params": {"width": f"6{NUL}4"}}])
    ),
    "steps.4.params": json_text(
        pipeline(steps=[*CAR_STEPS[:4], {"type": "detect", "params": {f"k{NUL}": 1}}])
    ),
}
SURROGATE_BODIES = {
    "name": json_text(pipeline(name="@@"), {"@@": SURROGATE}),
    "description": json_text(pipeline(description="@@x"), {"@@": SURROGATE}),
    "steps.0.type": json_text(pipeline(steps=[{"type": "@@"}, *CAR_STEPS[1:]]), {"@@": SURROGATE}),
    "steps.4.params": json_text(
        pipeline(steps=[*CAR_STEPS[:4], {"type": "detect", "params": {"@@": 1}}]),
        {"@@": SURROGATE},
    ),
    "steps.3.params": json_text(
        pipeline(steps=[*CAR_STEPS[:3], {"type": "base64", "params": {"encoding": "@@"}}]),
        {"@@": "\\udfff"},
    ),
}
NUMBERS = {
    "steps.1.params": json_text(
        pipeline(steps=[CAR_STEPS[0], {"type": "gaussian_blur", "params": {"sigma": "@@"}}]),
        {'"@@"': "NaN"},
    ),
    "steps.1.params ": json_text(
        pipeline(steps=[CAR_STEPS[0], {"type": "resize", "params": {"width": "@@"}}]),
        {'"@@"': "1e400"},
    ),
    "steps.1.params  ": json_text(
        pipeline(steps=[CAR_STEPS[0], {"type": "resize", "params": {"width": "@@"}}]),
        {'"@@"': "9" * 5000},
    ),
    "steps.4.params": json_text(
        pipeline(steps=[*CAR_STEPS[:4], {"type": "filter_detections", "params": {"labels": [
            "@@"]}}]),
        {'"@@"': "Infinity"},
    ),
    "steps.1.params   ": json_text(
        pipeline(steps=[CAR_STEPS[0], {"type": "crop", "params": {"x": "@@"}}]),
        {'"@@"': "-Infinity"},
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "body"),
    [*BODIES.items(), *SURROGATE_BODIES.items(), *NUMBERS.items()],
    ids=[f"{kind}:{field.strip()}" for kind, fields in
         (("nul", BODIES), ("surrogate", SURROGATE_BODIES), ("number", NUMBERS))
         for field in fields],
)  # fmt: skip
async def test_bad_text_or_number_in_a_pipeline_is_a_422_naming_the_field(
    field: str, body: bytes, make_client: ClientFactory, db
) -> None:
    before = await everything_stored(db)
    headers = {**AUTH, "content-type": "application/json"}
    async with make_client(pipeline_admin_token=TOKEN) as client:
        created = await client.post("/pipelines", content=body, headers=headers)
        replaced = await client.put("/pipelines/1", content=body, headers=headers)
        previewed = await client.post(
            "/pipelines/preview",
            data={"definition": body.decode()},
            files={"image": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")},
        )
    for response in (created, replaced, previewed):
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"] in ("/problems/invalid-request", "/problems/invalid-pipeline")
        assert field.strip() in response.text, response.text
    assert await everything_stored(db) == before


def _cursor(when: str) -> str:
    body = {"v": 1, "s": "5:9:", "t": when, "i": 3, "f": filters_tag(RunFilters())}
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()


QUERIES = {
    "since": "since=9999-12-31T23:59:59-23:59",
    "until": "until=0001-01-01T00:00:00%2B23:59",
    "cursor": f"cursor={_cursor('9999-12-31T23:59:59-23:59')}",
    "cursor ": f"cursor={_cursor('0001-01-01T00:00:00+05:00')}",
    "status": "status=%00",
    "cursor  ": "cursor=abc%00def",
    "limit": "limit=99999999999999999999999",
    "pipeline_id": "pipeline_id=1&pipeline_id=2",
    "limit ": "limit=5&limit=5",
}


@pytest.mark.parametrize("field", list(QUERIES))
async def test_bad_query_is_a_422_naming_the_parameter(
    field: str, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        response = await client.get(f"/results?{QUERIES[field]}")
    assert response.status_code == 422, response.text
    assert field.strip() in response.json()["detail"]


HEADERS = {
    "If-Match": ("PUT", {"If-Match": '"99999999999999999999999"'}),
    "If-Match ": ("DELETE", {"If-Match": '"99999999999999999999999", "-1"'}),
    "If-None-Match": ("GET", {"If-None-Match": '"99999999999999999999999"'}),
    "Idempotency-Key": ("POST", {"Idempotency-Key": "a\x00b"}),
}


@pytest.mark.parametrize("field", list(HEADERS))
async def test_bad_header_value_is_never_a_5xx(field: str, make_client: ClientFactory, db) -> None:
    method, headers = HEADERS[field]
    before = await everything_stored(db)
    async with make_client(pipeline_admin_token=TOKEN) as client:
        if method == "POST":
            response = await client.post(
                "/process_image?pipeline_id=1", files={"image": b"x"}, headers=headers
            )
        else:
            body = {"json": {"name": "x", "steps": CAR_STEPS}} if method == "PUT" else {}
            response = await client.request(
                method, "/pipelines/1", headers={**AUTH, **headers}, **body
            )
    assert response.status_code < 500, response.text
    if response.status_code == 422:
        assert field.strip().lower() in response.json()["detail"].lower()
    assert await everything_stored(db) == before


# case: (url, form fields, files, the field named, a word the answer says)
AMBIGUOUS = {
    "two image parts": (
        "/process_image?pipeline_id=1",
        {},
        [("image", ("a.jpg", b"1")), ("image", ("b.jpg", b"2"))],
        "image",
        "more than once",
    ),
    "pipeline_id in the query and the form": (
        "/process_image?pipeline_id=1",
        {"pipeline_id": "1"},
        [("image", ("a.jpg", b"1"))],
        "pipeline_id",
        "twice",
    ),
    "pipeline_id in the query and the form, different": (
        "/process_image?pipeline_id=1",
        {"pipeline_id": "2"},
        [("image", ("a.jpg", b"1"))],
        "pipeline_id",
        "twice",
    ),
    "pipeline_id twice in the form": (
        "/process_image",
        {"pipeline_id": ["1", "1"]},
        [("image", ("a.jpg", b"1"))],
        "pipeline_id",
        "more than once",
    ),
    "two image parts in a preview": (
        "/pipelines/preview",
        {"pipeline_id": "1"},
        [("image", ("a.jpg", b"1")), ("image", ("b.jpg", b"2"))],
        "image",
        "more than once",
    ),
    "two definitions in a preview": (
        "/pipelines/preview",
        {"definition": ['{"steps": []}', '{"steps": []}']},
        [("image", ("a.jpg", b"1"))],
        "definition",
        "more than once",
    ),
    "pipeline_id twice in the query": (
        "/process_image?pipeline_id=1&pipeline_id=1",
        {},
        [("image", ("a.jpg", b"1"))],
        "pipeline_id",
        "more than once",
    ),
}


@pytest.mark.parametrize("case", list(AMBIGUOUS))
async def test_ambiguous_request_is_a_422_naming_the_field(
    case: str, make_client: ClientFactory, db
) -> None:
    url, data, files, field, word = AMBIGUOUS[case]
    before = await everything_stored(db)
    async with make_client() as client:
        response = await client.post(url, data=data, files=files)
    body = assert_actionable_problem(response, 422, field, *([word] if word else []))
    assert body["errors"][0]["field"] == field
    assert await everything_stored(db) == before


async def test_headers_over_the_limit_are_431(make_client: ClientFactory) -> None:
    async with make_client(max_header_bytes=4096) as client:
        fine = await client.get("/healthz", headers={"X-Pad": "p" * 3000})
        refused = await client.get("/healthz", headers={"X-Pad": "p" * 5000})
    assert fine.status_code == 200
    assert refused.status_code == 431
    assert refused.json()["type"] == "/problems/headers-too-large"
    assert "MAX_HEADER_BYTES" in refused.json()["detail"]
