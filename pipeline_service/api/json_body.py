"""JSON bodies parsed so that an out-of-range number is still a field the answer can name.

Python's JSON parser refuses integers of more than 4,300 digits outright (a 400 "error parsing
the body" from FastAPI, no field); here any integer of more than 64 digits becomes an
`OutOfRange` marker instead, which validation then refuses as a 422 naming where it was.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

MAX_INTEGER_DIGITS = 64


class OutOfRange(float):
    """An integer too long to be a value of any field here (a float, so typed fields refuse
    it as they refuse any wrong number)."""

    digits: int

    def __new__(cls, text: str) -> "OutOfRange":
        number = super().__new__(cls, "inf")
        number.digits = len(text.lstrip("-"))
        return number


def parse_integer(text: str) -> int | float:
    return OutOfRange(text) if len(text) > MAX_INTEGER_DIGITS else int(text)


class _Request(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_int=parse_integer)
        return self._json


class JSONBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_with_bounds(request: Request) -> Response:
            return await handler(_Request(request.scope, request.receive))

        return parse_with_bounds
