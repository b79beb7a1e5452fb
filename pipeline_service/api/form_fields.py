"""Multipart forms: a field given twice (two `image` parts, two `pipeline_id`s) is ambiguous,
and refused with a 422 naming it instead of the last one winning."""

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from pipeline_service.api.text import printable


async def single_form_fields(request: Request) -> None:
    """A dependency of the multipart routes; the form is parsed (and cached) by then."""
    seen: set[str] = set()
    for name, _ in (await request.form()).multi_items():
        if name in seen:
            raise RequestValidationError(
                [
                    {
                        "loc": (printable(name),),
                        "msg": "given more than once; send it once",
                        "type": "repeated_field",
                    }
                ]
            )
        seen.add(name)
