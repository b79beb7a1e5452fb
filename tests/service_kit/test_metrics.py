"""GET /metrics: what is counted in one process, and that several workers add up."""

import asyncio
import glob
import re
import shutil
from pathlib import Path

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from pipeline_service.app import create_app
from pipeline_service.config import Settings
from tests.fixtures.processes import PIPELINE_APP, uvicorn_server
from tests.fixtures.services import ClientFactory, model_transport

STEPS = ["decode", "resize", "normalize", "base64", "detect", "save"]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """Metric values after minus before."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def now(self) -> list[float]:
        return [
            value(name, **labels) - before
            for (name, labels), before in zip(self.samples, self.before, strict=True)
        ]


async def test_requests_are_counted_by_route_template_method_and_status(
    make_client: ClientFactory,
) -> None:
    delta = Delta(
        # not /healthz: the readiness checks ask the (in-process) model service's /healthz
        ("http_requests_total", {"route": "/steps", "method": "GET", "status": "200"}),
        ("http_requests_total", {"route": "/results/{run_id}", "method": "GET", "status": "404"}),
        ("http_requests_total", {"route": "unmatched", "method": "GET", "status": "404"}),
        ("http_requests_total", {"route": "/process_image", "method": "POST", "status": "413"}),
        ("http_request_duration_seconds_count", {"route": "/steps", "method": "GET"}),
    )
    async with make_client(max_upload_bytes=100) as client:
        for _ in range(3):
            await client.get("/steps")
        await client.get("/results/987654321")
        await client.get("/results/987654322")
        await client.get("/no/such/page")
        # refused by the upload limit before any route ran: still counted under its route
        refused = await client.post("/process_image?pipeline_id=1", content=b"x" * 500)
        assert refused.status_code == 413
    assert delta.now() == [3, 2, 1, 1, 3]


async def test_runs_detections_steps_and_model_calls_are_counted(
    make_client: ClientFactory, jpeg: bytes
) -> None:
    delta = Delta(
        ("pipeline_runs_total", {"pipeline_id": "1", "status": "succeeded"}),
        ("pipeline_runs_total", {"pipeline_id": "1", "status": "failed"}),
        ("pipeline_runs_total", {"pipeline_id": "1", "status": "rejected"}),
        ("pipeline_detections_total", {"pipeline_id": "1"}),
        ("model_request_duration_seconds_count", {}),
        ("model_request_errors_total", {"kind": "bad_response"}),
        *(("pipeline_step_duration_seconds_count", {"step": step}) for step in STEPS),
    )
    async with make_client(model=model_transport(detection_probability=1.0)) as client:
        for _ in range(2):
            ok = await client.post("/process_image?pipeline_id=1", files={"image": jpeg})
            assert ok.status_code == 200
        not_an_image = await client.post(
            "/process_image?pipeline_id=1", files={"image": b"plain text"}
        )
        assert not_an_image.status_code == 415
    async with make_client(model=model_transport(failure_rate=1.0)) as client:
        failed = await client.post("/process_image?pipeline_id=1", files={"image": jpeg})
        assert failed.status_code == 502
    succeeded, failed_runs, rejected, boxes, calls, errors, *steps = delta.now()
    assert (succeeded, failed_runs, rejected, boxes, calls, errors) == (2, 1, 1, 2, 3, 1)
    # a step is timed when it completes: not decode on the text, not detect on the failure
    assert steps == [3, 3, 3, 3, 2, 2]


async def test_the_pool_gauge_follows_connections_in_use(database_url: str) -> None:
    """Only requests take connections from the pool: the background work (change listener,
    readiness, idempotency purge) has connections of its own, so from startup on the gauge
    counts exactly the connections a test takes."""
    app = create_app(Settings(database_url=database_url), model_transport=model_transport())
    async with LifespanManager(app):
        engine = app.state.runtime.db
        assert engine.sync_engine.pool.checkedout() == 0
        async with engine.connect() as first, engine.connect() as second:
            await first.exec_driver_sql("SELECT 1")
            await second.exec_driver_sql("SELECT 1")
            assert value("db_pool_connections_in_use") == 2
        assert value("db_pool_connections_in_use") == 0


async def test_metrics_endpoint_speaks_prometheus_text(make_client: ClientFactory) -> None:
    async with make_client() as client:
        await client.get("/healthz")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "http_requests",
        "http_request_duration_seconds",
        "pipeline_runs",
        "pipeline_detections",
        "pipeline_step_duration_seconds",
        "model_request_duration_seconds",
        "model_request_errors",
        "db_pool_connections_in_use",
    } <= names


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_requests_total" and sample.labels == {
                "route": "/healthz",
                "method": "GET",
                "status": "200",
            }:
                return sample.value
    return 0.0


def _pids_serving_healthz(log: Path) -> set[int]:
    pids = set()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = orjson.loads(line)
            if entry.get("logger") == "access" and entry.get("path") == "/healthz":
                pids.add(entry["pid"])
    return pids


@pytest.mark.subprocess
@pytest.mark.parametrize("metrics_dir", ["automatic", "configured"])
async def test_two_workers_count_every_request(
    database_url: str, tmp_path: Path, metrics_dir: str
) -> None:
    env = {"DATABASE_URL": database_url, "MODEL_SERVICE_URL": "http://127.0.0.1:9"}
    env["LOG_LEVEL"] = "DEBUG"  # /healthz lines are DEBUG: they tell which worker answered
    if metrics_dir == "configured":
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    sent = 0
    with uvicorn_server(PIPELINE_APP, env, tmp_path, workers=2, probe="/metrics") as server:
        try:
            # A fresh connection per request, many at once, until both workers have served
            # (on a busy machine the second worker may take many seconds to start).
            async with httpx.AsyncClient(
                base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)
            ) as client:
                give_up = asyncio.get_running_loop().time() + 120
                while asyncio.get_running_loop().time() < give_up:
                    answers = await asyncio.gather(*(client.get("/healthz") for _ in range(20)))
                    assert all(a.status_code == 200 for a in answers)
                    sent += len(answers)
                    if sent >= 40 and len(_pids_serving_healthz(server.log)) == 2:
                        break
                    await asyncio.sleep(0.2)
                assert len(_pids_serving_healthz(server.log)) == 2, "one worker served everything"
                scrapes = [(await client.get("/metrics")).text for _ in range(6)]
        finally:
            if metrics_dir == "automatic":
                for path in glob.glob(f"/tmp/prometheus-pipeline_service-{server.process.pid}-*"):
                    shutil.rmtree(path, ignore_errors=True)
    # whichever worker answered the scrape, it counted every request
    assert [_healthz_count(text) for text in scrapes] == [sent] * len(scrapes)
    assert re.search(r"^db_pool_connections_in_use ", "\n".join(scrapes), re.M)
