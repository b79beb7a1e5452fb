"""docs/api.md's summary of the step catalogue names every step type, with its flow and
every one of its params, as `GET /steps` answers them."""

import re

from pipeline_service.pipeline.step import step_catalogue
from tests.fixtures.processes import ROOT


def summary_rows() -> dict[str, str]:
    text = (ROOT / "docs" / "api.md").read_text()
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \| .*$", text, re.M)}


def test_the_step_table_follows_the_catalogue() -> None:
    rows = summary_rows()
    for step in step_catalogue():
        row = rows.get(step["name"])
        assert row, f"docs/api.md: no row for step {step['name']}"
        assert f"{step['consumes']} → {step['produces']}" in row, row
        for param in step["params"].get("properties", {}):
            assert f"`{param}`" in row, f"docs/api.md: {step['name']} row misses `{param}`"
