"""What docker-compose.yml promises, read without Docker (CI has none); `make compose-check`
runs it for real."""

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.processes import ROOT
from tests.fixtures.scripts import load_script

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
VARIABLE = re.compile(r"\$\{([A-Z_]+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def example_settings() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2 and not pair[0].startswith("#")}


def test_postgres_is_probed_over_tcp(compose: dict[str, Any]) -> None:
    """The first-start server of the postgres image listens on its unix socket only."""
    probe = " ".join(compose["services"]["postgres"]["healthcheck"]["test"])
    assert "pg_isready -h 127.0.0.1" in probe


def test_only_the_pipeline_service_and_adminer_are_published_on_the_loopback(
    compose: dict[str, Any],
) -> None:
    published = {name: s["ports"] for name, s in compose["services"].items() if "ports" in s}
    assert set(published) == {"pipeline_service", "adminer"}
    for ports in published.values():
        assert len(ports) == 1 and ports[0].startswith("${PUBLISH_ADDRESS:-127.0.0.1}:")
    assert example_settings()["PUBLISH_ADDRESS"] == "127.0.0.1"


def test_the_postgres_password_has_no_default() -> None:
    uses = re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", COMPOSE.read_text())
    assert uses and all(use.startswith("${POSTGRES_PASSWORD:?") for use in uses), uses


def test_our_services_run_hardened(compose: dict[str, Any]) -> None:
    for name in ("migrate", "model_service", "pipeline_service"):
        service = compose["services"][name]
        assert service["cap_drop"] == ["ALL"], name
        assert service["read_only"] is True, name
        assert "no-new-privileges:true" in service["security_opt"], name


def test_env_example_sets_every_variable_the_compose_file_reads() -> None:
    read = set(VARIABLE.findall(COMPOSE.read_text()))
    assert read - set(example_settings()) == set()


def test_compose_check_writes_its_env_from_the_example(tmp_path: Path) -> None:
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env.example")
    settings = load_script("compose_check").write_env(tmp_path)
    example = example_settings()
    written = dict(
        line.split("=", 1)
        for line in (tmp_path / ".env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert written == settings
    assert set(written) == set(example)
    for secret in ("POSTGRES_PASSWORD", "PIPELINE_ADMIN_TOKEN"):
        assert written[secret] != example[secret] and re.fullmatch(r"[0-9a-f]{32}", written[secret])
    assert written["PIPELINE_PORT"] != written["ADMINER_PORT"]
    assert written["PIPELINE_WORKERS"] == "2"
