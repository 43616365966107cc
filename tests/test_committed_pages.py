"""Every committed page (reports/*/index.html) as the repository ships it: rendered by committed
code, its tables counting what they say they count.

- no ``.dirty`` code version anywhere on the page (a page rendered from uncommitted code cannot be
  reproduced from the repository);
- the C-bar gap table's "seeds" column is a count, as in every other table (ids on hover);
- the provenance box never adds CIFAR-C and CIFAR-10-C-bar into one corruption count: they are two
  benchmarks.

These read the committed HTML, so they fail until a page is regenerated with the current code.
"""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import pandas as pd
import pytest
from historical_pages import RECORDED_DIRTY

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "reports").glob("*/index.html"))


def _text(fragment: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", "", fragment))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.parent.name)
def test_committed_page_was_rendered_from_committed_code(page):
    html = page.read_text(encoding="utf-8")
    own = re.search(r'id="page-version">([^<]*)<', html)
    if own:
        assert not own.group(1).endswith(".dirty"), (
            f"{page.relative_to(REPO)} was rendered by {own.group(1)}: regenerate it from a clean checkout"
        )
    dirty = sorted(set(re.findall(r"[\w.+-]*\.dirty\b", html)))
    explained = RECORDED_DIRTY.get(page.parent.name, {})
    assert [v for v in dirty if v not in explained] == [], (
        f"{page.relative_to(REPO)} shows code versions {dirty}: regenerate it from a clean checkout"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.parent.name)
def test_cbar_gap_seeds_column_is_a_count(page):
    html = page.read_text(encoding="utf-8")
    start = html.find("Gain on CIFAR-C vs gain on CIFAR-C-bar")
    if start < 0:
        pytest.skip("no CIFAR-C-bar section on this page")
    table = html[start : html.index("</table>", start)]
    heads = [_text(h) for h in re.findall(r"<th>(.*?)</th>", table, re.S)]
    col = next(i for i, h in enumerate(heads) if h.startswith("seeds"))
    assert heads[col] == "seeds (paired)", heads[col]
    gap = pd.read_csv(page.parent / "c_bar_gap.csv")
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)
    shown = [_text(re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[col]) for row in rows]
    assert shown == [str(int(n)) for n in gap["n_seeds"]], f"seeds column shows {shown}, not the counts"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.parent.name)
def test_provenance_counts_each_benchmark_on_its_own(page):
    html = page.read_text(encoding="utf-8")
    prov = html[html.index('<dl class="prov">') : html.index("</dl>", html.index('<dl class="prov">'))]
    counts = [int(n) for n in re.findall(r"(\d+) corruptions", _text(prov))]
    assert all(n <= 19 for n in counts), f"a corruption count above CIFAR-C's 19: {counts}"
    if "C-bar" in html:
        assert "CIFAR-10-C-bar: " in _text(prov) and "two separate benchmarks" in _text(prov)
