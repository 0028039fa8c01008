"""The README and docs/ link only to files a clone has, and to headings those files have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)")  # markdown link and image targets


DOCS = ["README.md", "docs/design.md", "docs/results.md"]
ANCHORED = re.compile(r"\]\(([^)#\s]*)#([^)\s]+)\)")  # [text](file#anchor) and [text](#anchor)


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve_inside_the_repo(doc):
    path = REPO / doc
    targets = [t for t in LINK.findall(path.read_text()) if "://" not in t]
    for target in targets:
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(REPO) and resolved.exists(), f"{doc} links {target}"


def test_the_readme_links_the_design_document_and_names_no_file_outside_the_repo():
    text = (REPO / "README.md").read_text()
    assert "](docs/design.md)" in text and "../" not in text


@pytest.mark.parametrize("doc", DOCS)
def test_anchors_name_a_heading_of_their_file(doc):
    path = REPO / doc
    for target, anchor in ANCHORED.findall(path.read_text()):
        linked = (path.parent / target) if target else path
        headings = {slug(line.lstrip("#")) for line in linked.read_text().splitlines() if re.match(r"#+ ", line)}
        assert anchor in headings, f"{doc} links {target}#{anchor}, a heading {linked.name} does not have"
