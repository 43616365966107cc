"""The fixture report opened in a real headless browser: screenshot, the warning banner, every
section, every figure drawn, no broken images, no console errors, and each method's legend colour
the same in every figure (read from the rendered SVG's computed style).

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Locally the test is skipped with a
reason when it is absent; in CI (``CI=true``) a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from fixtures_runs import SECTIONS, build_fixture_report

pytestmark = pytest.mark.browser

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@pytest.fixture(scope="session")
def browser() -> str:
    """The chromium executable (checked before the fixture report is built)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed but CI=true: install it with `apt-get install -y chromium`")
    pytest.skip("chromium not installed (apt-get install -y chromium); this browser test runs in CI")


def _run(browser: str, profile, *args, timeout: int = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def fixture_report(tmp_path_factory):
    return build_fixture_report(tmp_path_factory)


def test_report_in_headless_chromium(browser, fixture_report, tmp_path):
    url = fixture_report["index"].resolve().as_uri()
    shot = tmp_path / "report.png"
    res = _run(browser, tmp_path / "profile1", "--window-size=1280,2400", f"--screenshot={shot}", url)
    assert shot.is_file(), f"no screenshot: {res.stderr[-500:]}"

    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (2400, 1280)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200  # tables and figures drawn, not a blank page

    res = _run(
        browser,
        tmp_path / "profile2",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    )
    dom = res.stdout
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, f"console messages: {console[:3]}"
    # the banner is rendered at the top, before the first section, with the fixture's two items
    assert 0 <= dom.index('id="banner"') < dom.index('id="claim"')
    assert re.findall(r'<li data-key="(\w+)"', dom) == ["generated", "small_blocks"]
    for sec in SECTIONS:
        assert f'id="{sec}"' in dom, f"section {sec} missing in the rendered page"
    body = re.search(r"<body([^>]*)>", dom).group(1)
    figures = int(re.search(r'data-figures="(\d+)"', body).group(1))
    drawn = int(re.search(r'data-figures-drawn="(\d+)"', body).group(1))
    broken = int(re.search(r'data-broken-images="(\d+)"', body).group(1))
    assert figures >= 7 and drawn == figures, f"{drawn} of {figures} figures rendered with a size"
    assert broken == 0
    assert re.search(r'data-js-errors="0"', body)
    # a method's legend entry has the same computed colour in every figure that shows it
    colours = json.loads(re.search(r"data-legend-colours=\"([^\"]*)\"", body).group(1).replace("&quot;", '"'))
    by_method: dict[str, set] = {}
    for gid, colour in colours.items():
        _, fig, method = gid.split("-", 2)
        assert colour.startswith("rgb"), f"{gid}: no colour ({colour!r})"
        by_method.setdefault(method, set()).add(colour)
    assert {gid.split("-")[1] for gid in colours} == {"tradeoff", "severity", "bars"}
    assert all(len(c) == 1 for c in by_method.values()), by_method
    assert by_method["auxiliary"] != by_method["plain"]
