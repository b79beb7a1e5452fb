"""The overload row's arithmetic: admitted req/s, the share shed, the p99 of the admitted
requests only, and the verdict (the real run is `make bench`; speed is never asserted)."""

from bench.overload import OverloadResult, Probes, judged, table_row


def result(**changes: object) -> OverloadResult:
    fields: dict = {
        "ok": 40,
        "shed": 960,
        "other": 0,
        "socket_errors": 0,
        "seconds": 20.0,
        "admitted_ms": [float(ms) for ms in range(1, 101)],
        "probes": Probes(healthz_ms=[5.0, 20.0, 700.0], readyz_ms=[40.0, 90.0]),
        "runs_stored": 40,
        "wrk_cpu_s": 1.0,
    }
    return OverloadResult(**{**fields, **changes})


def test_the_row_reports_admitted_requests_only() -> None:
    r = result()
    assert r.admitted_per_s == 2.0
    assert r.shed_share == 0.96
    assert r.admitted_p99_ms == 100.0  # of the 200s: the refusals took a millisecond each
    row = table_row("1920x1080", r)
    assert "| 2.0 | 96% | 100 | 20 / 700 | 90 / 90 | 0 | yes |" in row
    assert judged(r)


def test_errors_failed_probes_or_missing_runs_fail_the_row() -> None:
    assert not judged(result(other=1))
    assert not judged(result(socket_errors=2))
    assert not judged(result(runs_stored=39))
    assert not judged(result(probes=Probes([5.0], [40.0], failures=1)))
    assert "**NO**" in table_row("1920x1080", result(runs_stored=39))
