"""HTTP metrics and the Prometheus exposition, for both services.

Works in one process and with several workers (see `service_kit.multiprocess`): with
PROMETHEUS_MULTIPROC_DIR set, the exposition sums the files of every worker.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from service_kit.multiprocess import ENV

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Seconds from receiving a request to its answer's last byte.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0),
)

UNMATCHED_ROUTE = "unmatched"  # every path no route knows shares one label value


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_LATENCY.labels(route, method).observe(seconds)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(ENV))


def exposition() -> tuple[bytes, str]:
    """The text exposition and its content type."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def forget_this_process() -> None:
    """At worker shutdown: drop this process's live gauges (counters are kept, as they must)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())
