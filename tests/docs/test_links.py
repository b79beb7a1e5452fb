"""README.md stays short, and every relative link of README.md and docs/ leads somewhere: to
a file of the checkout and, with `#anchor`, to a heading of that file (GitHub's slugs)."""

import re
from pathlib import Path

from tests.fixtures.processes import ROOT

README_MAX_LINES = 300
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*```")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, inline code removed."""
    lines, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and (match := HEADING.match(line)):
            base = slug(match.group(1))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for line in prose(path.read_text()):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{target}: no heading with that anchor in {linked.name}")
    return [f"{path.relative_to(root)}: {problem}" for problem in broken]


def test_the_readme_stays_short() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move details to docs/"


def test_every_relative_link_leads_to_a_file_and_heading() -> None:
    broken = [problem for path in markdown_files() for problem in broken_links(path)]
    assert not broken, "\n".join(broken)


def test_slugs_and_broken_links_are_found(tmp_path: Path) -> None:
    assert slug("`POST /process_image`") == "post-process_image"
    assert slug("Connections: sizing PostgreSQL") == "connections-sizing-postgresql"
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n## Two words\n## Two words\n[ok](#two-words-1) [file](page.md#a-page)\n"
        "[gone](#three-words) [missing](nowhere.md) [web](https://example.com/x)\n"
        "```\n[in code](nowhere-either.md)\n```\n"
    )
    assert anchors(page) == {"a-page", "two-words", "two-words-1"}
    problems = broken_links(page, tmp_path)
    assert problems == [
        "page.md: #three-words: no heading with that anchor in page.md",
        "page.md: nowhere.md: no such file",
    ]
