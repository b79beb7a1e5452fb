"""Startup objects are kept away from the cyclic garbage collector while a service runs
(no 100+ ms full collections with the event loop stopped), and handed back when it stops."""

import gc

from asgi_lifespan import LifespanManager

from model_service.app import create_app as create_model_app
from model_service.config import ModelSettings
from service_kit.gc_freeze import startup_objects_frozen
from tests.fixtures.services import ClientFactory


def test_frozen_inside_the_block_released_after() -> None:
    gc.unfreeze()
    startup = [[] for _ in range(100)]  # container objects the collector tracks
    with startup_objects_frozen():
        assert gc.get_freeze_count() >= len(startup)
    assert gc.get_freeze_count() == 0


async def test_pipeline_service_freezes_its_startup_objects(make_client: ClientFactory) -> None:
    gc.unfreeze()
    async with make_client(fresh=True, gc_freeze=True) as client:
        assert gc.get_freeze_count() > 10_000  # the app, its schemas, SQLAlchemy's metadata...
        assert (await client.get("/healthz")).status_code == 200
    assert gc.get_freeze_count() == 0


async def test_model_service_freezes_its_startup_objects() -> None:
    gc.unfreeze()
    async with LifespanManager(create_model_app(ModelSettings(gc_freeze=True))):
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
