"""The model client's network transport (pipeline_service/model_transport.py, aiohttp
underneath) reports failures as the httpx errors the retries depend on."""

import httpx
import pytest

from pipeline_service.model_transport import ModelTransport
from tests.fixtures.model_stubs import hanging_up_server
from tests.fixtures.processes import free_port


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (f"http://127.0.0.1:{free_port()}", httpx.ConnectError),  # nothing listens
        ("http://no-such-host.invalid", httpx.ConnectError),
    ],
    ids=["refused", "unknown host"],
)
async def test_transport_reports_connections_never_made_as_connect_errors(
    url: str, error: type[Exception]
) -> None:
    # httpx-aiohttp's own mapping says ConnectTimeout here; the retries depend on ConnectError.
    async with httpx.AsyncClient(transport=ModelTransport()) as client:
        with pytest.raises(error) as raised:
            await client.post(url + "/predict", content=b"{}")
    assert not isinstance(raised.value, httpx.TimeoutException)


async def test_transport_reports_a_read_that_outlasts_its_timeout_as_read_timeout() -> None:
    async with (
        hanging_up_server(after_bytes=10**9) as url,
        httpx.AsyncClient(transport=ModelTransport(), timeout=0.2) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url + "/predict", content=b"{}")
