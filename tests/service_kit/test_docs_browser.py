"""Swagger UI renders the operations in a real browser that can reach no other host.

Needs Debian's `chromium`; skipped without it (`make` does not install a browser). The
guarantee that holds everywhere is tests/service_kit/test_docs.py: the page names no
other host.
"""

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import MODEL_APP, PIPELINE_APP, Server, uvicorn_server

pytestmark = pytest.mark.subprocess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"
)


def rendered_dom(url: str, profile: Path) -> str:
    """The page's DOM once it has loaded everything; every host but 127.0.0.1 unresolvable."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        # Virtual time stands still while a fetch is pending: the budget is not a race.
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def assert_renders_operations(server: Server, profile: Path) -> None:
    paths = set(httpx.get(server.url + "/openapi.json").json()["paths"])
    dom = rendered_dom(server.url + "/docs", profile)
    shown = set(re.findall(r'class="opblock-summary-path" data-path="([^"]*)"', dom))
    assert shown == paths, dom[-3000:]


@needs_chromium
def test_swagger_ui_renders_both_services_offline(database_url: str, tmp_path: Path) -> None:
    with uvicorn_server(MODEL_APP, {}, tmp_path) as model:
        assert_renders_operations(model, tmp_path / "profile-model")
        env = {"DATABASE_URL": database_url, "MODEL_SERVICE_URL": model.url}
        with uvicorn_server(PIPELINE_APP, env, tmp_path) as pipeline:
            assert_renders_operations(pipeline, tmp_path / "profile-pipeline")
