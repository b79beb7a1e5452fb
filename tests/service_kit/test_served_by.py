"""Every answer names the replica that served it (X-Served-By): REPLICA_NAME when set, else
hostname:port; on both services, errors included."""

import socket

import httpx

from model_service.app import create_app as create_model_app
from model_service.config import ModelSettings
from tests.fixtures.services import ClientFactory, app_client, model_transport


async def test_the_replica_name_from_the_setting_is_on_every_answer(
    make_client: ClientFactory, jpeg: bytes
) -> None:
    async with make_client(replica_name="pipeline-2") as client:
        answers = [
            await client.post("/process_image?pipeline_id=1", files={"image": jpeg}),
            await client.get("/healthz"),
            await client.get("/results/999999999"),  # a 404 problem
            await client.get("/no-such-route"),
        ]
    assert [a.status_code for a in answers] == [200, 200, 404, 404]
    assert {a.headers["x-served-by"] for a in answers} == {"pipeline-2"}


async def test_without_a_name_the_answer_says_hostname_and_port() -> None:
    transport = model_transport()  # the model service with its defaults: no replica name
    async with httpx.AsyncClient(transport=transport, base_url="http://m:8123") as client:
        response = await client.get("/healthz")
    # httpx's in-process transport reports the URL's port as the server's port.
    assert response.headers["x-served-by"] == f"{socket.gethostname()}:8123"


async def test_the_model_service_names_itself_too() -> None:
    app = create_model_app(ModelSettings(replica_name="model-a"))
    async with app_client(app) as client:
        response = await client.get("/healthz")
    assert response.headers["x-served-by"] == "model-a"
