"""The README and docs/design.md link only to files a clone has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)")  # markdown link and image targets


@pytest.mark.parametrize("doc", ["README.md", "docs/design.md"])
def test_relative_links_resolve_inside_the_repo(doc):
    path = REPO / doc
    targets = [t for t in LINK.findall(path.read_text()) if "://" not in t]
    for target in targets:
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(REPO) and resolved.exists(), f"{doc} links {target}"


def test_the_readme_links_the_design_document_and_names_no_file_outside_the_repo():
    text = (REPO / "README.md").read_text()
    assert "](docs/design.md)" in text and "../" not in text
