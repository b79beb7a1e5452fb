"""How test_examples_run.py runs a block, shown on small blocks against a plain HTTP server
standing in for the stack: statuses compared with the text, only 127.0.0.1 reachable,
variables kept between the blocks of a document, strict bash, and a block that hangs
killed with everything it started."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fixtures.doc_examples import Block
from tests.fixtures.doc_runner import DocumentSession, Outcome, Stack
from tests.fixtures.processes import free_port

pytestmark = pytest.mark.subprocess


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """python -m http.server: 200 for its folder's files, 404 for anything else."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "here.txt").write_text("here\n")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/here.txt")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def session(web_server: str, tmp_path: Path) -> DocumentSession:
    return DocumentSession(Stack(web_server, web_server, "unused"), tmp_path, timeout_s=5)


def run(session: DocumentSession, text: str) -> tuple[Block, Outcome]:
    block = Block("docs/example.md", 1, "bash", text)
    return block, session.run(block)


def test_the_statuses_are_compared_with_the_text(session: DocumentSession) -> None:
    block, outcome = run(
        session,
        "B=http://127.0.0.1:8000\n"
        "curl -s $B/here.txt\n"
        "curl -s -o /dev/null $B/gone.txt    # 404\n"
        "curl -s -o /dev/null $B/gone.txt    # the text claims 200 by saying nothing\n",
    )
    assert outcome.exit_code == 0, outcome.output
    assert outcome.statuses == [200, 404, 404]
    assert outcome.problems(block) == [
        "curl statuses [200, 404, 404], the text claims [200, 404, 200]"
    ]


def test_only_127_0_0_1_is_reachable(session: DocumentSession) -> None:
    _, outcome = run(session, "curl -s https://example.com/\n")
    assert outcome.exit_code == 97
    assert "curl may only reach 127.0.0.1" in outcome.output
    assert outcome.statuses == []


def test_variables_carry_over_to_the_next_block_of_the_document(
    session: DocumentSession,
) -> None:
    _, first = run(session, "ID=$(echo 7)\nNAME='two words'\n")
    assert first.exit_code == 0, first.output
    _, second = run(session, 'echo "$ID $NAME"\n')
    assert second.output == "7 two words\n"


@pytest.mark.parametrize(
    "text", ["false\necho after\n", "echo $NEVER_SET\n", "false | cat\necho after\n"]
)
def test_a_failing_command_an_unset_variable_or_a_failing_pipe_fails_the_block(
    session: DocumentSession, text: str
) -> None:
    block, outcome = run(session, text)
    assert outcome.exit_code != 0
    assert "after" not in outcome.output
    assert outcome.problems(block)[0].startswith("exit code")


def test_a_block_that_hangs_is_killed_with_what_it_started(
    session: DocumentSession, tmp_path: Path
) -> None:
    pid_file = tmp_path / "background.pid"
    block, outcome = run(session, f"sleep 300 &\necho $! > {pid_file}\necho started\nsleep 300\n")
    assert outcome.exit_code is None
    assert outcome.problems(block) == ["timed out after 5 s"]
    assert outcome.output == "started\n"
    background = int(pid_file.read_text())
    assert not psutil.pid_exists(background) or (
        psutil.Process(background).status() == psutil.STATUS_ZOMBIE
    )
