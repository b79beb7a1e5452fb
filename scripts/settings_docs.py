"""The configuration tables of docs/operations.md, written from the settings classes.

    python scripts/settings_docs.py           rewrite the tables between their marker comments
    python scripts/settings_docs.py --check   exit 1 (saying which) if a table is out of date

Each row is a field of `Settings` (pipeline_service/config.py) or `ModelSettings`
(model_service/config.py), those of `ServiceSettings` (service_kit/settings.py) included:
its environment variable, its default and its `Field(description=...)`. A new setting
therefore only needs its description; tests/docs/test_settings_docs.py runs the check.
"""

import argparse
import sys
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from model_service.config import ModelSettings  # noqa: E402
from pipeline_service.config import Settings  # noqa: E402

OPERATIONS = ROOT / "docs" / "operations.md"
TABLES: dict[str, type[BaseSettings]] = {
    "pipeline_service": Settings,
    "model_service": ModelSettings,
}
# Defaults computed when the process starts: what the reader gets, in words.
FACTORY_DEFAULTS: dict[tuple[type[BaseSettings], str], str] = {
    (Settings, "cpu_threads"): "number of cores"
}
MIB = 2**20


def env_name(settings: type[BaseSettings], field: str) -> str:
    return (str(settings.model_config.get("env_prefix", "")) + field).upper()


def env_names(settings: type[BaseSettings]) -> set[str]:
    return {env_name(settings, field) for field in settings.model_fields}


def default_text(settings: type[BaseSettings], field: str) -> str:
    """The default as it would be written in the environment."""
    info = settings.model_fields[field]
    if info.default_factory is not None:
        if (settings, field) in FACTORY_DEFAULTS:
            return FACTORY_DEFAULTS[(settings, field)]
        value = info.default_factory()  # type: ignore[call-arg]
        if value in ([], (), {}, ""):
            return "empty"
        raise ValueError(f"{field}: say in FACTORY_DEFAULTS what its default is")
    return env_text(info.default)


def env_text(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "set"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ",".join(env_text(item) for item in value) + "]"
    return str(value)


def _shown(settings: type[BaseSettings], field: str) -> str:
    text = default_text(settings, field)
    value = settings.model_fields[field].default
    if isinstance(value, int) and not isinstance(value, bool) and value >= MIB and not value % MIB:
        return f"`{text}` ({value // MIB} MiB)"
    return text if text in ("unset", "empty", "number of cores") else f"`{text}`"


def table(settings: type[BaseSettings]) -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field, info in settings.model_fields.items():
        if not info.description:
            raise ValueError(f"{settings.__name__}.{field} has no Field(description=...)")
        meaning = " ".join(info.description.split()).replace("|", "\\|")
        rows.append(f"| `{env_name(settings, field)}` | {_shown(settings, field)} | {meaning} |")
    return "\n".join(rows) + "\n"


def markers(name: str) -> tuple[str, str]:
    return (
        f"<!-- settings:{name} begin: written by scripts/settings_docs.py, edit the Field "
        "descriptions instead -->\n",
        f"<!-- settings:{name} end -->\n",
    )


def rendered(text: str) -> str:
    """`text` (docs/operations.md) with every table between its markers written anew."""
    for name, settings in TABLES.items():
        begin, end = markers(name)
        start, stop = text.find(begin), text.find(end)
        if start == -1 or stop < start:
            raise ValueError(f"{OPERATIONS.name} has no {begin.strip()} ... {end.strip()}")
        text = text[: start + len(begin)] + "\n" + table(settings) + "\n" + text[stop:]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    current = OPERATIONS.read_text()
    wanted = rendered(current)
    if current == wanted:
        return 0
    if args.check:
        print(
            f"{OPERATIONS.relative_to(ROOT)}: the configuration tables differ from the settings; "
            "run python scripts/settings_docs.py",
            file=sys.stderr,
        )
        return 1
    OPERATIONS.write_text(wanted)
    print(f"wrote the configuration tables of {OPERATIONS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
