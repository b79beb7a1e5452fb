"""The configuration docs cannot drift from the settings: docs/operations.md's tables are
what scripts/settings_docs.py writes from `Settings` and `ModelSettings`, and .env.example
names only real variables, its commented-out lines showing the true defaults. (The
Kubernetes env files are held to the settings by tests/deploy/test_kubernetes_against_code.py.)
"""

import re
from pathlib import Path

import pytest
from pydantic import TypeAdapter
from pydantic_settings import BaseSettings

from model_service.config import ModelSettings
from pipeline_service.config import Settings
from tests.fixtures.processes import ROOT
from tests.fixtures.scripts import load_script

ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")
ASSIGNMENT = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>\S*)")
SETTINGS: list[type[BaseSettings]] = [Settings, ModelSettings]


settings_docs = load_script("settings_docs")


def field_of(name: str) -> tuple[type[BaseSettings], str] | None:
    for settings in SETTINGS:
        for field in settings.model_fields:
            if settings_docs.env_name(settings, field) == name:
                return settings, field
    return None


def test_the_configuration_tables_are_written_from_the_settings() -> None:
    text = settings_docs.OPERATIONS.read_text()
    assert settings_docs.rendered(text) == text, "run python scripts/settings_docs.py"


def test_every_setting_has_a_row_with_its_default_and_description() -> None:
    text = settings_docs.OPERATIONS.read_text()
    for settings in SETTINGS:
        for field, info in settings.model_fields.items():
            assert info.description, f"{settings.__name__}.{field}: no Field(description=...)"
            name = settings_docs.env_name(settings, field)
            rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
            assert len(rows) == 1, f"{name}: {len(rows)} rows (a hand-written copy left over?)"
            assert settings_docs.default_text(settings, field) in rows[0]


def test_the_check_fails_on_a_stale_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "operations.md"
    text = settings_docs.OPERATIONS.read_text()
    stale.write_text(text.replace("| `DB_POOL_SIZE` | `10` |", "| `DB_POOL_SIZE` | `20` |"))
    monkeypatch.setattr(settings_docs, "OPERATIONS", stale)
    monkeypatch.setattr(settings_docs, "ROOT", tmp_path)
    assert settings_docs.main(["--check"]) == 1
    assert settings_docs.main([]) == 0
    assert stale.read_text() == text
    assert settings_docs.main(["--check"]) == 0


def test_a_table_without_its_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="settings:pipeline_service begin"):
        settings_docs.rendered("# Operations\n")


def test_env_example_names_only_settings_and_the_compose_files_variables() -> None:
    compose = set(COMPOSE_VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := ASSIGNMENT.match(line):
            name = match.group("name")
            assert field_of(name) or name in compose, f".env.example: {name} is no setting"


def test_env_example_shows_the_true_defaults_in_its_commented_lines() -> None:
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ASSIGNMENT.match(line)
        if not match or not match.group("comment"):
            continue
        found = field_of(match.group("name"))
        assert found, line
        settings, field = found
        info = settings.model_fields[field]
        value = TypeAdapter(info.annotation).validate_python(match.group("value"))
        assert value == info.default, f".env.example: {line!r}, the default is {info.default!r}"
