"""The services' glibc malloc settings are written down once (devstack/allocator.py); the
Docker image and the operations guide (for Kubernetes manifests) carry the same values."""

import re

from devstack.allocator import ALLOCATOR_ENV, with_allocator_env
from tests.fixtures.processes import ROOT


def test_the_launcher_fills_in_the_settings_and_a_value_given_wins() -> None:
    env = with_allocator_env({"PATH": "/bin", "MALLOC_ARENA_MAX": "4"})
    assert env["PATH"] == "/bin"
    assert env["MALLOC_ARENA_MAX"] == "4"
    assert {k: env[k] for k in ALLOCATOR_ENV if k != "MALLOC_ARENA_MAX"} == {
        k: v for k, v in ALLOCATOR_ENV.items() if k != "MALLOC_ARENA_MAX"
    }


def test_the_settings_keep_large_image_buffers_in_the_arenas() -> None:
    # A decoded 4K frame (3840 x 2160 x 3 bytes) must stay under the mmap threshold, which
    # glibc caps at 32 MiB on 64-bit (a larger value is silently ignored).
    threshold = int(ALLOCATOR_ENV["MALLOC_MMAP_THRESHOLD_"])
    assert 3840 * 2160 * 3 < threshold <= 32 * 2**20
    assert int(ALLOCATOR_ENV["MALLOC_TRIM_THRESHOLD_"]) >= threshold


def test_the_dockerfile_sets_the_same_values() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    found = dict(re.findall(r"^\s+(MALLOC_\w+)=(\S+?)\s*\\?$", dockerfile, re.MULTILINE))
    assert found == ALLOCATOR_ENV


def test_the_operations_guide_lists_the_same_values_for_kubernetes() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    section = guide.split("### Allocator settings", 1)[1]
    table = dict(re.findall(r"^\| `(MALLOC_\w+)` \| `(\d+)`", section, re.MULTILINE))
    manifest = dict(re.findall(r'\{name: (MALLOC_\w+), value: "(\d+)"\}', section))
    assert table == manifest == ALLOCATOR_ENV
