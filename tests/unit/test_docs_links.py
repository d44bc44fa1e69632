"""The README and docs/ stay navigable: every relative link reaches a file and, with a fragment, a heading of
it; every path the README's "Where to change what" table names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"(?ms)^```.*?^```")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    body = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"(?m)^#{1,6} (.+)$", body)}


def links(page: Path) -> list[str]:
    body = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(body) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_heading(page):
    broken = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_where_to_change_what_table_names_only_existing_paths():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Where to change what", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:layers|devstack|rules|tests|benchmarks|reliability|schemas|config)/[^`]+)`",
                           table))
    # a path after a full one, such as `services/jobs/registry.py`, is relative to the package
    named |= {f"layers/wxloop/{p}" for p in re.findall(r"`((?:services|adapters|domain|protocol|analytics)/[^`]+)`",
                                                     table)}
    assert len(named) > 20  # the table names paths at all
    missing = sorted(p for p in named if not (ROOT / p.rstrip("/")).exists())
    assert missing == []


def test_a_missing_file_or_heading_is_reported(tmp_path):
    """The checker itself: a link to a missing file or heading counts as broken."""
    (tmp_path / "a.md").write_text("# Title\n\n[ok](b.md#here) [bad](b.md#gone) [none](c.md)\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("## Here\n", encoding="utf-8")
    found = links(tmp_path / "a.md")
    assert found == ["b.md#here", "b.md#gone", "c.md"]
    assert "here" in anchors(tmp_path / "b.md") and "gone" not in anchors(tmp_path / "b.md")
