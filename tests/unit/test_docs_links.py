"""The docs cannot silently go stale: relative links in README.md and docs/ resolve, and every code comment that
cites `docs/protocol.md §<section>` names a section that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CITATION = re.compile(r"§([A-Z][^§),.;:\"`]*)")


def anchors(page: Path) -> set[str]:
    """GitHub-style anchors of the page's headings."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_relative_links_resolve() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_protocol_citations_name_existing_sections() -> None:
    sections = {line[3:].strip() for line in (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("## ")}
    wrong = []
    for path in [*ROOT.glob("kiro_core/**/*.py"), *ROOT.glob("functions/**/*.py"), *ROOT.glob("tests/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        for start in (m.end() for m in re.finditer(r"protocol\.md", text)):
            window = re.sub(r"\s*\n\s*(#\s*)?", " ", text[start:start + 160])  # a citation may wrap onto a comment line
            for cited in CITATION.findall(window.split("\n")[0])[:3]:
                name = cited.strip().removesuffix(" [S]")
                if name not in sections and not any(name.startswith(s) for s in sections):
                    wrong.append(f"{path.relative_to(ROOT)}: §{name}")
    assert not wrong, wrong
