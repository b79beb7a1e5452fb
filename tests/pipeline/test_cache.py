"""The in-process cache of compiled pipelines and its LISTEN connection, against the real
database: no definition read per request, a change drops the entry, a lost connection
drops everything and the cache is bypassed until the listener is back."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from pipeline_service.db.change_listener import PipelineChangeListener
from pipeline_service.db.engine import create_engine
from pipeline_service.db.pipeline_store import PipelineStore
from pipeline_service.pipeline.cache import PipelineCache
from pipeline_service.pipeline.definition import PipelineDefinition
from tests.fixtures.pipelines import create, eventually, listener_pids
from tests.fixtures.services import ClientFactory


@dataclass
class Watched:
    """A cache wired to the database like the service's, recording what happens to it."""

    cache: PipelineCache
    loads: list[int] = field(default_factory=list)
    connected: list[bool] = field(default_factory=list)
    dropped_all: int = 0
    listener_pid: int | None = None


async def connection_states(state: Watched) -> list[bool]:
    await asyncio.sleep(0)
    return list(state.connected)


@pytest.fixture
async def watched(database_url: str, db) -> AsyncIterator[Watched]:
    engine = create_engine(
        database_url.replace("postgresql://", "postgresql+asyncpg://"), 2, pre_ping=True
    )
    repository = PipelineStore(engine)

    async def load(pipeline_id: int) -> PipelineDefinition | None:
        state.loads.append(pipeline_id)
        return await repository.load_active(pipeline_id)

    def on_change(pipeline_id: int | None) -> None:
        if pipeline_id is None:
            state.dropped_all += 1
        state.cache.invalidate(pipeline_id)

    def on_connected(connected: bool) -> None:
        state.connected.append(connected)
        state.cache.set_listening(connected)

    state = Watched(PipelineCache(load))
    others = await listener_pids(db)
    listener = PipelineChangeListener(database_url, on_change, on_connected, check_every_s=0.5)
    await listener.start()
    try:
        await eventually(lambda: connection_states(state), lambda c: c == [True])
        assert state.connected == [True]
        [state.listener_pid] = await listener_pids(db) - others
        yield state
    finally:
        await listener.stop()
        await engine.dispose()


async def test_a_cached_pipeline_is_not_read_again(watched: Watched) -> None:
    first = await watched.cache.get(1)
    for _ in range(5):
        assert await watched.cache.get(1) is first
    assert watched.loads == [1]


async def test_a_change_drops_only_that_pipeline(
    watched: Watched, make_client: ClientFactory, db
) -> None:
    async with make_client(pipeline_admin_token="t") as client:
        other = await create(client, **{}) if False else None  # noqa: F841
    # Two pipelines cached; a change of one is announced by the trigger.
    await watched.cache.get(1)
    async with make_client(pipeline_admin_token="test-admin-token") as client:
        pipeline_id = (await create(client))["id"]
    await watched.cache.get(pipeline_id)
    await db.execute("UPDATE pipelines SET description = 'new' WHERE id = $1", pipeline_id)
    reloaded = await eventually(
        lambda: watched.cache.get(pipeline_id), lambda p: p.ref.version == 2
    )
    assert reloaded.ref.version == 2
    await watched.cache.get(1)
    assert watched.loads == [1, pipeline_id, pipeline_id]  # pipeline 1 stayed cached


async def test_a_lost_listener_drops_everything_and_recovers(watched: Watched, db) -> None:
    await watched.cache.get(1)
    assert watched.loads == [1]
    assert await db.fetchval("SELECT pg_terminate_backend($1)", watched.listener_pid)

    await eventually(lambda: connection_states(watched), lambda c: len(c) >= 3)
    assert watched.connected == [True, False, True]
    # Dropped when the loss was noticed and again on reconnecting (what was missed is unknown).
    assert watched.dropped_all >= 2
    await watched.cache.get(1)
    await watched.cache.get(1)
    assert watched.loads == [1, 1]  # read once after the loss, then cached again


async def test_while_deaf_the_cache_is_bypassed(watched: Watched) -> None:
    watched.cache.set_listening(False)
    await watched.cache.get(1)
    await watched.cache.get(1)
    assert watched.loads == [1, 1]
