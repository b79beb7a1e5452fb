"""Healthchecks and scrapes do not flood the log: a successful probe's line is DEBUG, a failed
one is not, and the metrics count every probe either way."""

import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.fixtures.services import ClientFactory

PROBES = ("/healthz", "/readyz", "/metrics")


@pytest.fixture(autouse=True)
def root_level_restored() -> Iterator[None]:
    """An app sets the root logger's level (LOG_LEVEL) when created: give later tests theirs."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def access_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [line for line in lines if line["logger"] == "access"]


async def test_successful_probes_are_not_logged_at_info(
    make_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with make_client(fresh=True) as client:  # its own app: LOG_LEVEL=INFO set now
        capsys.readouterr()
        for path in PROBES:
            assert (await client.get(path)).status_code == 200
        assert (await client.get("/steps")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert [line["path"] for line in access_lines(capsys)] == ["/steps"]
    assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in metrics


async def test_at_debug_probes_are_logged(
    make_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with make_client(fresh=True, log_level="DEBUG") as client:
        capsys.readouterr()
        for path in PROBES:
            await client.get(path)
    lines = access_lines(capsys)  # /readyz asked the model service's /healthz: its line too
    assert {line["path"] for line in lines} == set(PROBES)
    assert {line["level"] for line in lines} == {"DEBUG"}


async def test_a_failing_probe_is_logged(
    make_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not ready (the model service cannot be reached): the 503 is a WARNING line."""
    down = httpx.MockTransport(lambda request: httpx.Response(500))
    async with make_client(model=down, readiness_timeout_s=1.0) as client:
        capsys.readouterr()
        assert (await client.get("/readyz")).status_code == 503
    lines = access_lines(capsys)
    assert [(line["path"], line["status"], line["level"]) for line in lines] == [
        ("/readyz", 503, "WARNING")
    ]


async def test_a_path_below_a_probe_is_not_a_probe(
    make_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with make_client(fresh=True) as client:
        capsys.readouterr()
        assert (await client.get("/healthz/extra")).status_code == 404
    assert [line["path"] for line in access_lines(capsys)] == ["/healthz/extra"]
