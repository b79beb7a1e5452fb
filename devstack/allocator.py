"""glibc malloc settings for the services' processes: the one place they are written down.

The launcher gives them to both services (a value already in the environment wins), the
bench's fault-free floor runs in a process with them, the Dockerfile sets the same `ENV`
and docs/operations.md ("Allocator settings") lists them for other deployments; tests keep
those copies equal to this one. Why these values:
docs/decisions/0017-allocator-keeps-image-buffers.md.
"""

from collections.abc import Mapping

MIB = 2**20

ALLOCATOR_ENV: dict[str, str] = {
    # At most two malloc arenas: each image thread otherwise gets its own, which the
    # multi-MB image buffers then fragment (RSS crept up by 11 % over 20,000 requests).
    "MALLOC_ARENA_MAX": "2",
    # Image buffers up to 32 MiB (a full 4K frame is 24 MiB) come from the arenas instead of
    # a fresh mmap each time, which the kernel zero-fills page by page on first touch and
    # takes back on free: ~2,000 page faults per 1080p image. 32 MiB is glibc's upper bound.
    "MALLOC_MMAP_THRESHOLD_": str(32 * MIB),
    # ... and stay there when freed: the free space at the top of an arena is returned to
    # the kernel only beyond this much, so the next image reuses pages already mapped.
    "MALLOC_TRIM_THRESHOLD_": str(128 * MIB),
}


def with_allocator_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus the allocator settings it does not set itself."""
    return {**ALLOCATOR_ENV, **env}
