"""The package, its docs, recipes, grids and tests cite only files inside the repository: none of
the design notes a user of the package does not have (their names are built here, not written)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = [f"{name}.md" for name in ("METHOD", "METRICS", "CORRUPTIONS", "REFERENCES", "CONVENTIONS")]
SUFFIXES = {".py", ".md", ".toml", ".j2", ".txt", ".cfg"}


def test_no_citation_of_files_outside_the_repository():
    files = [ROOT / "README.md"]
    for sub in ("robustbench_aux", "baselines", "tests", "docs"):
        files += [p for p in (ROOT / sub).rglob("*") if p.is_file() and p.suffix in SUFFIXES]
    hits = [
        f"{p.relative_to(ROOT)}: {name}"
        for p in files
        for name in OUTSIDE
        if name in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert not hits, hits
