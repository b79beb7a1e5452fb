"""A body that trickles in is cut off after REQUEST_BODY_TIMEOUT_S with a 408 (and the
connection closed); nothing is stored. (Headers: MAX_HEADER_BYTES, test_client_mistakes.py.)"""

import asyncio
import uuid
from collections.abc import AsyncIterator

from tests.fixtures.images import jpeg_bytes
from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory


async def test_a_body_slower_than_the_limit_is_408(make_client: ClientFactory, db) -> None:
    boundary, image = uuid.uuid4().hex, jpeg_bytes()

    async def trickle() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            'filename="a.jpg"\r\n\r\n'
        ).encode()
        for start in range(0, len(image), 1000):
            await asyncio.sleep(0.1)
            yield image[start : start + 1000]
        yield f"\r\n--{boundary}--\r\n".encode()

    before = await count_rows(db)
    async with make_client(request_body_timeout_s=0.5) as client:
        response = await client.post(
            "/process_image?pipeline_id=1",
            content=trickle(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        quick = await client.post("/process_image?pipeline_id=1", files={"image": image})
    assert response.status_code == 408, response.text
    assert "REQUEST_BODY_TIMEOUT_S" in response.json()["detail"]
    assert response.headers["connection"] == "close"
    assert quick.status_code == 200
    assert (await count_rows(db))[0] == before[0] + 1
