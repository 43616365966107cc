"""The fixture report opened in a real headless browser: screenshot, every section, no broken images.

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Locally the test is skipped with a
reason when it is absent; in CI (``CI=true``) a missing browser is a failure, not a skip.
"""

from __future__ import annotations

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

    dom = _run(browser, tmp_path / "profile2", "--virtual-time-budget=10000", "--dump-dom", url).stdout
    for sec in SECTIONS:
        assert f'id="{sec}"' in dom, f"section {sec} missing in the rendered page"
    body = re.search(r"<body([^>]*)>", dom).group(1)
    figures = int(re.search(r'data-figures="(\d+)"', body).group(1))
    drawn = int(re.search(r'data-figures-drawn="(\d+)"', body).group(1))
    broken = int(re.search(r'data-broken-images="(\d+)"', body).group(1))
    assert figures >= 7 and drawn == figures, f"{drawn} of {figures} figures rendered with a size"
    assert broken == 0
