"""Every citation of ``parameters.md`` resolves inside the clone (docs/parameters.md), issue 17 item 7."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "parameters.md"
CITATION = re.compile(r"parameters\.md[ ,§]*(\d+)(?:\.(\d+))?")
SEARCHED = ("twin", "docs", "notebooks", "scenarios", "README.md")


def _sections() -> tuple[set[str], dict[str, int]]:
    """Headings ``N`` and ``N.M`` of the doc, and the numbered items of each top-level section."""
    heads: set[str] = set()
    items: dict[str, int] = {}
    current = ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? ", line)
        if m:
            heads.add(m.group(1))
            current = m.group(1).split(".")[0]
        elif (n := re.match(r"(\d+)\. ", line)) and current:
            items[current] = max(items.get(current, 0), int(n.group(1)))
    return heads, items


def _citations() -> list[tuple[str, str, str | None]]:
    found = []
    for top in SEARCHED:
        root = REPO / top
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if path.suffix not in (".py", ".md", ".csv", ".yaml", ".ipynb") or path == DOC:
                continue
            for m in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
                found.append((str(path.relative_to(REPO)), m.group(1), m.group(2)))
    return found


def test_every_parameters_citation_names_a_section_of_the_shipped_doc() -> None:
    heads, items = _sections()
    cites = _citations()
    assert len(cites) > 100  # the catalog and the physics cite it throughout
    bad = []
    for where, major, minor in cites:
        if major not in heads:
            bad.append((where, major, minor))
        elif minor is not None and f"{major}.{minor}" not in heads and int(minor) > items.get(major, 0):
            bad.append((where, major, minor))  # neither a subsection nor a numbered item of the section
    assert not bad, bad


def test_the_doc_is_the_reference_with_its_sources() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "## 7. Validation anchors" in text and "Opengate" in text
    assert "[EST]" in text  # estimates are marked as such
