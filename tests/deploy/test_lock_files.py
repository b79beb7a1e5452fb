"""The lock files pin what pyproject.toml asks for: every dependency (runtime, and the dev and
embedded extras for the dev lock) has exactly one pinned version, within its range. `make
install` and CI install requirements/dev.lock, the Docker images requirements/runtime.lock;
`make lock` writes both again."""

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NAME = canonicalize_name(PROJECT["name"])


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (environment markers ignored)."""
    pinned = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            requirement = Requirement(line)
            [specifier] = requirement.specifier
            assert specifier.operator == "==", line
            pinned[canonicalize_name(requirement.name)] = specifier.version
    return pinned


def wanted(*extras: str) -> list[Requirement]:
    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        for text in PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) != NAME:  # the project's own extras
                requirements.append(requirement)
    return requirements


@pytest.mark.parametrize(
    ("lock", "extras"), [("dev.lock", ("dev", "embedded")), ("runtime.lock", ())]
)
def test_every_dependency_is_pinned_within_its_range(lock: str, extras: tuple[str, ...]) -> None:
    pinned = pins(ROOT / "requirements" / lock)
    for requirement in wanted(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in requirements/{lock}: run make lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"requirements/{lock} pins {name}=={pinned[name]}, outside {requirement}: run make lock"
        )


def test_the_runtime_lock_carries_no_dev_tool() -> None:
    pinned = pins(ROOT / "requirements" / "runtime.lock")
    for tool in ("pytest", "ruff", "mypy", "pgserver", "schemathesis"):
        assert tool not in pinned
