"""What the examples test (test_examples_run.py) sees: which blocks run, which are marked not
run and why, and the status each curl claims. No process started."""

from pathlib import Path

from tests.fixtures.doc_examples import blocks, documents, expected_statuses, shell_blocks


def test_every_shell_block_runs_or_says_why_not() -> None:
    for block in shell_blocks():
        reason = block.not_run_reason
        assert reason is None or len(reason) > 5, f"{block.where}: `# not run:` without a reason"


def test_shell_examples_are_in_bash_fences() -> None:
    """A `curl` or `make` line in a ```sh or ```shell fence would escape the run unseen."""
    found = [
        block.where
        for document in documents()
        for block in blocks(document)
        if block.language in ("sh", "shell", "zsh", "console")
    ]
    assert not found


def test_a_curl_expects_200_unless_a_comment_says_otherwise() -> None:
    script = """B=http://127.0.0.1:8000
curl -s $B/steps
curl -s -X DELETE $B/pipelines/2 -H "$AUTH"   # 204
curl -s -X POST $B/pipelines -d '{"name": "# 404 not a comment",
  "steps": []}'
# 201 {"id": 2}
ID=$(curl -s $B/pipelines | python3 -c 'import sys; print(1)')
ETAG=$(curl -si $B/pipelines/$ID)  # "1"
curl -s $B/results \\
     -H 'x: y'      # 412: changed meanwhile
echo curl is not a command here # 500
"""
    assert expected_statuses(script) == [200, 204, 201, 200, 200, 412]


def test_blocks_are_read_with_their_language_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_text(
        "text\n```bash\n# not run: needs Docker\ndocker compose up\n```\n\n```\nout\n```\n"
    )
    found = blocks("x.md", tmp_path)
    assert [(b.line, b.language) for b in found] == [(2, "bash"), (7, "")]
    assert found[0].not_run_reason == "needs Docker"
    assert found[1].text == "out\n"


def test_no_example_that_runs_relies_on_database_url() -> None:
    """`make run` does not export DATABASE_URL (its database is the embedded one), so an
    example with `psql "$DATABASE_URL"` reaches another database there; the examples run
    against a stack started on a database of its own, which would hide that: `make psql`."""
    found = [
        block.where
        for block in shell_blocks()
        if block.not_run_reason is None and "DATABASE_URL" in block.text
    ]
    assert not found
