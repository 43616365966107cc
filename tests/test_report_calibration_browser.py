"""The report's Calibration and effective-robustness sections read in headless Chromium: both
sections rendered, every figure drawn (the ECE-vs-severity figure and the trade-off plot with its
lines), no console or script errors, no table cut off at 1400 px.

Needs Debian's ``chromium``; skipped locally without it, a failure in CI (``CI=true``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from fixtures_runs import write_fixture_run

from robustbench_aux.catalog import BENCHMARK_15
from robustbench_aux.report import build_report

pytestmark = pytest.mark.browser


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed but CI=true: install it with `apt-get install -y chromium`")
    pytest.skip("chromium not installed (apt-get install -y chromium); this browser test runs in CI")


def test_calibration_and_effective_robustness_in_headless_chromium(tmp_path):
    browser = _browser()
    for lab in ("plain", "auxiliary", "naive_augmentation", "augmix", "per_corruption[noise]"):
        for seed in (0, 1):
            write_fixture_run(
                tmp_path / "runs", lab, "resnet18", seed, n=40, corruptions=BENCHMARK_15, calibration=True
            )
    url = build_report([tmp_path / "runs"], tmp_path / "report").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]
    res = subprocess.run(
        [browser, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
        + ["--window-size=1400,3000", "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = res.stdout
    assert not [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-js-errors="0"' in body and 'data-broken-images="0"' in body
    drawn = re.search(r'data-figures="(\d+)" data-figures-drawn="(\d+)"', body)
    assert drawn and drawn.group(1) == drawn.group(2)
    assert 'data-clipped-tables="0"' in body
    calibration = dom[dom.index('id="calibration"') : dom.index('id="corruptions"')]
    assert "<svg" in calibration and "Holm over the method's 4 per-seed tests" in calibration
    assert "calibration-verdicts" in calibration
    tradeoff = dom[dom.index('id="tradeoff"') : dom.index('id="interference"')]
    assert 'id="effective-robustness"' in tradeoff and "legend-tradeoff-RobustBench-line" in tradeoff
