"""Every filter of GET /results alone and combined, including combinations that match
nothing: a listing is exactly the runs a plain reading of the filters picks, newest first,
however the query is put together (one index range per outcome, merged: db/results.py).
The runs live in days of their own, over three day partitions and the default one."""

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

from pipeline_service.db.results import RunFilters, outcomes, windows
from tests.api.test_results import page_through
from tests.fixtures.runs import insert_run, new_pipeline
from tests.fixtures.services import ClientFactory

START = datetime(2029, 3, 1, tzinfo=UTC)  # no other test writes here
OUTCOMES = [("succeeded", True), ("succeeded", False), ("succeeded", None), ("failed", None)]


async def test_every_filter_alone_and_combined(make_client: ClientFactory, db) -> None:
    await db.execute(  # two of the days get a partition, the others stay in the default one
        "CREATE TABLE IF NOT EXISTS processing_runs_p20290302 PARTITION OF processing_runs "
        "FOR VALUES FROM ('2029-03-02 00:00+00') TO ('2029-03-03 00:00+00')"
    )
    pipelines = [await new_pipeline(db), await new_pipeline(db)]
    runs: list[tuple[int, int, str, bool | None, datetime]] = []
    rng = random.Random(14)
    for n in range(36):
        pipeline_id = pipelines[n % 2]
        status, car = rng.choice(OUTCOMES[:3] if pipeline_id == pipelines[1] else OUTCOMES)
        created = START + timedelta(hours=rng.randrange(0, 72), seconds=n)
        run_id = await insert_run(db, pipeline_id, status=status, car=car, created_at=created)
        runs.append((run_id, pipeline_id, status, car, created))
    window = (START, START + timedelta(days=3))  # all of them
    narrow = (START + timedelta(hours=30), START + timedelta(hours=50))

    async with make_client() as client:
        for pipeline_id, status, car, (since, until) in itertools.product(
            [None, *pipelines], [None, "succeeded", "failed"], [None, True, False], [window, narrow]
        ):
            expected = [
                r[0]
                for r in sorted(runs, key=lambda r: (r[4], r[0]), reverse=True)
                if pipeline_id in (None, r[1])
                and status in (None, r[2])
                and car in (None, r[3])
                and since <= r[4] < until
            ]
            params = {
                "since": since.isoformat(),
                "until": until.isoformat(),
                "limit": 4,
                **({"pipeline_id": pipeline_id} if pipeline_id else {}),
                **({"status": status} if status else {}),
                **({"car_detected": str(car).lower()} if car is not None else {}),
            }
            listed, _ = await page_through(client, **params)
            assert listed == expected, params
    # the second pipeline never failed: some combinations above matched nothing
    assert not [r for r in runs if r[1] == pipelines[1] and r[2] == "failed"]


def test_a_combination_that_cannot_match_needs_no_query() -> None:
    assert outcomes(RunFilters(status="failed", car_detected=True)) == []
    assert outcomes(RunFilters(status="failed", car_detected=False)) == []
    assert outcomes(RunFilters(status="failed")) == [("failed", None)]
    assert len(outcomes(RunFilters())) == 4


async def test_status_failed_with_car_detected_answers_an_empty_page(
    make_client: ClientFactory,
) -> None:
    async with make_client() as client:
        response = await client.get("/results?status=failed&car_detected=true")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_a_listing_reads_widening_windows_of_whole_days_down_to_since() -> None:
    start = datetime(2030, 6, 10, 15, 30, tzinfo=UTC)
    day = datetime(2030, 6, 10, tzinfo=UTC)
    bounds = [(w.lower, w.upper) for w in windows(start, since=None)]
    assert bounds == [
        (day, None),
        (day - timedelta(days=6), day),
        (day - timedelta(days=30), day - timedelta(days=6)),
        (None, day - timedelta(days=30)),
    ]
    # down to `since` and no further; a start in another time zone counts in UTC days
    assert [w.lower for w in windows(start, since=day - timedelta(days=3))] == [
        day,
        day - timedelta(days=6),
    ]
    east = start.astimezone(timezone(timedelta(hours=10)))  # 11 June there, 10 June in UTC
    assert windows(east, since=None)[0].lower == day


async def test_runs_over_months_are_listed_whole_across_the_windows(
    make_client: ClientFactory, db
) -> None:
    pipeline_id = await new_pipeline(db)
    now = datetime.now(UTC)
    ages = [0, 1, 3, 5, 7, 15, 29, 31, 400]  # each window, and both sides of their bounds
    created = [now - timedelta(days=age, minutes=1) for age in ages]
    ids = [await insert_run(db, pipeline_id, created_at=at) for at in created]
    async with make_client() as client:
        listed, pages = await page_through(client, pipeline_id=pipeline_id, limit=2)
        recent, _ = await page_through(
            client, pipeline_id=pipeline_id, since=(now - timedelta(days=20)).isoformat()
        )
    assert listed == ids and pages == 5
    assert recent == ids[:6]  # the runs of the last 20 days
