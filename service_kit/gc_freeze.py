"""Keep Python's cyclic garbage collector away from what lives as long as the process.

After startup a worker holds ~135,000 tracked objects (the app, its routes and schemas,
SQLAlchemy's metadata, pydantic validators). Every full collection walks all of them with
the event loop stopped: 85-180 ms under load, about once per 900-2,700 requests per worker
(measured with `gc.callbacks`; docs/performance.md). Frozen, they are skipped.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def startup_objects_frozen(enabled: bool = True) -> Iterator[None]:
    """Freeze what is alive now (startup is done) for the life of the block. Cyclic garbage
    is collected first, so nothing unreachable is frozen; at the end the objects are handed
    back to the collector, so an app stopped in a longer-lived process can be freed.

    `enabled=False` (the GC_FREEZE setting): nothing is done. For apps started many times in
    one process, as the in-process tests do, where each start would pay a full collection."""
    if not enabled:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
