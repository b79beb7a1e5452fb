"""Paging GET /results while runs keep arriving, from other transactions, for real.

The promise: a listing (its first page and the pages reached through its cursors) is exactly
the runs that had committed when the first page was read, newest first, each once. A run
committed later waits for the next listing, even when its transaction began earlier (an older
created_at and id than rows already shown), which plain keyset paging would slip in or skip.
"""

import asyncio
import contextlib

import asyncpg

from tests.fixtures.runs import insert_run, listing_order, new_pipeline
from tests.fixtures.services import ClientFactory, model_transport


async def _churn(database_url: str, pipeline_id: int, inserted: list[int], stop: asyncio.Event):
    """Keep committing runs: quick ones, and slow transactions that commit out of order."""
    quick = await asyncpg.connect(database_url)
    slow = await asyncpg.connect(database_url)
    try:
        while not stop.is_set():
            async with slow.transaction():
                late = await insert_run(slow, pipeline_id)
                for _ in range(3):  # commits while the slow one is open: higher ids first
                    async with quick.transaction():
                        inserted.append(await insert_run(quick, pipeline_id))
                    await asyncio.sleep(0.002)
            inserted.append(late)
    finally:
        await quick.close()
        await slow.close()


async def _api_churn(client, pipeline_id: int, jpeg: bytes, answers: list[int], stop) -> None:
    while not stop.is_set():
        response = await client.post(
            "/process_image", params={"pipeline_id": pipeline_id}, files={"image": jpeg}
        )
        assert response.status_code == 200, response.text
        answers.append(response.json()["run_id"])


async def test_paging_while_runs_commit_concurrently(
    make_client: ClientFactory, database_url: str, db, jpeg: bytes
) -> None:
    pipeline_id = await new_pipeline(db)
    # A transaction that began before everything else and commits after the first page.
    early_begun = await asyncpg.connect(database_url)
    early_tx = early_begun.transaction()
    await early_tx.start()
    late_committer = await insert_run(early_begun, pipeline_id)

    existing = set()
    for _ in range(8):  # 40 runs, 5 per transaction (ties on created_at)
        async with db.transaction():
            for _ in range(5):
                existing.add(await insert_run(db, pipeline_id))
    assert late_committer < min(existing)

    churned: list[int] = []
    posted: list[int] = []
    stop = asyncio.Event()
    listed: list[int] = []
    async with make_client(model=model_transport(detection_probability=0.5)) as client:
        first = (
            await client.get("/results", params={"pipeline_id": pipeline_id, "limit": 6})
        ).json()
        await early_tx.commit()
        await early_begun.close()
        workers = [
            asyncio.create_task(_churn(database_url, pipeline_id, churned, stop)),
            asyncio.create_task(_api_churn(client, pipeline_id, jpeg, posted, stop)),
        ]
        try:
            listed = [item["run_id"] for item in first["items"]]
            cursor = first["next_cursor"]
            pages = 1
            while cursor:
                # others commit between any two pages: through the DB and through the API
                await _until(lambda p=pages: len(churned) >= 4 * p and len(posted) >= p)
                pages += 1
                page = await client.get(
                    "/results", params={"pipeline_id": pipeline_id, "limit": 6, "cursor": cursor}
                )
                assert page.status_code == 200, page.text
                listed += [item["run_id"] for item in page.json()["items"]]
                cursor = page.json()["next_cursor"]
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*workers)

        arrived = set(churned) | set(posted) | {late_committer}
        assert len(listed) == len(set(listed)), "a run was repeated"
        assert listed == await listing_order(db, existing), "skipped, foreign, or out of order"
        assert not arrived & set(listed)

        # A new listing shows everything, the late committer in its place by age.
        again, _ = await _all(client, pipeline_id)
        assert again == await listing_order(db, existing | arrived)
        assert again[-1] == late_committer


async def _until(condition, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the inserts did not happen"
        await asyncio.sleep(0.005)


async def _all(client, pipeline_id: int) -> tuple[list[int], int]:
    ids: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"pipeline_id": pipeline_id, "limit": 50, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/results", params=params)).json()
        ids += [item["run_id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            return ids, pages
