"""Every shell example of README.md and docs/ runs as written, against a stack started for
the purpose (`python -m devstack` on free ports and a database of its own, stopped at the
end), and every `curl` in it gets the status the text claims.

The conventions a doc follows (the top of docs/api.md says them for readers):
- a ```bash block is run; one whose first line is `# not run: <why>` is not (it starts the
  stack itself, needs Docker or a cluster, runs for minutes), and must say why;
- a `curl` expects 200 unless the first comment after it starts with a status (`# 201`);
- the documents run in reading order (README.md, docs/api.md, docs/behaviour.md, the rest
  alphabetically) on one fresh stack, each document's blocks like commands typed into one
  terminal: a variable set in a block is there in the later blocks of the same document.
How a block is run (addresses, environment, safety): tests/fixtures/doc_runner.py.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.database import empty_database
from tests.fixtures.doc_examples import Block, documents, shell_blocks
from tests.fixtures.doc_runner import DocumentSession, Stack, devstack

pytestmark = pytest.mark.subprocess

RUN = [block for block in shell_blocks() if block.not_run_reason is None]
DOCUMENTS = [name for name in documents() if any(b.document == name for b in RUN)]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="docs-examples-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def stack(postgres_url: str, scratch: Path) -> Iterator[Stack]:
    with empty_database(postgres_url, "pipeline_docs") as url, devstack(url, scratch) as running:
        yield running


def report(block: Block, problems: list[str], output: str) -> str:
    text = block.text.rstrip()
    return f"{block.where}: {'; '.join(problems)}\n--- block ---\n{text}\n--- output ---\n{output}"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_examples_of_a_document_run_as_written(
    document: str, stack: Stack, scratch: Path
) -> None:
    folder = scratch / document.replace("/", "_")
    folder.mkdir()
    session = DocumentSession(stack, folder)
    failures = []
    for block in (b for b in RUN if b.document == document):
        outcome = session.run(block)
        if problems := outcome.problems(block):
            failures.append(report(block, problems, outcome.output))
    assert not failures, "\n\n".join(failures)
