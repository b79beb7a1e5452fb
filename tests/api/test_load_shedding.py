"""Admission control in one process: past ADMIT_IMAGE_REQUESTS image requests in flight,
the next is answered 503 `overloaded` with Retry-After at once, before its body is read, and
health checks are never counted or refused. (With real processes under 256 concurrent
uploads: tests/system/test_overload.py.)"""

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator

from pipeline_service.api.admission import SHED
from pipeline_service.app import create_app
from pipeline_service.config import Settings
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory, app_client, model_transport


class CountingUpload:
    """A multipart upload streamed in chunks; counts how many the server pulled."""

    def __init__(self, image: bytes, chunks: int = 16) -> None:
        self.boundary = uuid.uuid4().hex
        self.image, self.chunks, self.pulled = image, chunks, 0

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": f"multipart/form-data; boundary={self.boundary}"}

    async def stream(self) -> AsyncIterator[bytes]:
        self.pulled += 1
        yield (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="image"; '
            'filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        size = -(-len(self.image) // self.chunks)
        for start in range(0, len(self.image), size):
            self.pulled += 1
            yield self.image[start : start + size]
        yield f"\r\n--{self.boundary}--\r\n".encode()


async def test_past_the_limit_image_requests_are_shed_before_their_body_is_read(
    make_client: ClientFactory, db
) -> None:
    jpeg = jpeg_bytes()
    slow_model = model_transport(latency_ms=400)
    async with make_client(model=slow_model, admit_image_requests=2) as client:
        before = await count_rows(db)
        admitted = [
            asyncio.create_task(client.post("/process_image?pipeline_id=1", files={"image": jpeg}))
            for _ in range(2)
        ]
        await asyncio.sleep(0.2)  # both are waiting for the model now
        upload = CountingUpload(jpeg)
        shed = await client.post(
            "/process_image?pipeline_id=1", content=upload.stream(), headers=upload.headers
        )
        preview_shed = await client.post(
            "/pipelines/preview", data={"pipeline_id": "1"}, files={"image": jpeg}
        )
        health = await client.get("/healthz")
        results = await client.get("/results?limit=1")
        answers = await asyncio.gather(*admitted)
        after = await client.post("/process_image?pipeline_id=1", files={"image": jpeg})

    assert [a.status_code for a in answers] == [200, 200]
    for response in (shed, preview_shed):
        assert response.status_code == 503, response.text
        assert response.json()["type"] == "/problems/overloaded"
        assert "ADMIT_IMAGE_REQUESTS" in response.json()["detail"]
        assert response.headers["Retry-After"] == "1"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-request-id"] and response.headers["x-served-by"]
    assert SHED.labels("/process_image")._value.get() >= 1  # counted, not logged
    assert upload.pulled == 0  # refused from the headers alone
    assert health.status_code == 200 and results.status_code == 200
    assert after.status_code == 200  # the slots were given back
    assert (await count_rows(db))[0] == before[0] + 3


async def test_image_threads_run_below_the_event_loops_priority(database_url: str) -> None:
    """IMAGE_THREAD_NICE: when the cores are busy, the loop (probes, refusals) goes first."""
    settings = Settings(
        database_url=database_url, gc_freeze=False, image_thread_nice=7, cpu_threads=1
    )
    app = create_app(settings, model_transport=model_transport())
    async with app_client(app):
        pool = app.state.runtime.cpu_pool
        image_thread = await asyncio.get_running_loop().run_in_executor(pool, _this_threads_nice)
    assert image_thread == 7
    assert _this_threads_nice() == 0  # the event loop's thread is left alone


def _this_threads_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # Linux: per thread
