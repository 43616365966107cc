"""Section 5b obeys the paper-claim rule: every C-bar number carries its 95 % interval (computed as
in the claim table) and the C-bar claim gets a verdict that is inconclusive unless the interval
excludes 0 and the test is significant."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fixtures_runs import write_fixture_run
from scipy import stats

from robustbench_aux.catalog import ALL_19, CBAR_10
from robustbench_aux.cli import main
from robustbench_aux.report.cbar import CLAIM_METRICS, GAP_METRICS, cbar_claim_table, cbar_gap_table
from robustbench_aux.report.runs import combined_table, load_runs

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cbar_claim")
    return [
        write_fixture_run(root, label, "resnet18", seed, n=200, corruptions=ALL_19 + CBAR_10)
        for label in ("plain", "auxiliary")
        for seed in SEEDS
    ]


def _bounds_hold(row, metrics):
    for k in metrics:
        assert np.isfinite(row[f"{k}_low"]) and np.isfinite(row[f"{k}_high"]), k
        assert row[f"{k}_low"] < row[k] < row[f"{k}_high"], k


def test_report_csvs_and_html_carry_intervals_and_the_verdict(runs, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", *map(str, runs), "-o", str(out)]) == 0
    claim = pd.read_csv(out / "c_bar_claim.csv").iloc[0]
    gap = pd.read_csv(out / "c_bar_gap.csv").iloc[0]
    _bounds_hold(claim, CLAIM_METRICS)
    _bounds_hold(gap, GAP_METRICS)
    assert claim["interval"] == gap["interval"] == "t over 3 seeds"
    # the t interval of the claim table: mean ± t(0.975, n-1) · std / sqrt(n)
    half = stats.t.ppf(0.975, 2) * claim["robust_abs_pts_cbar_std"] / math.sqrt(3)
    assert claim["robust_abs_pts_cbar_high"] - claim["robust_abs_pts_cbar"] == pytest.approx(half, rel=1e-4)
    half = stats.t.ppf(0.975, 2) * gap["gap_pts_std"] / math.sqrt(3)
    assert gap["gap_pts_high"] - gap["gap_pts"] == pytest.approx(half, rel=1e-4)
    # the fixture's auxiliary gains on C-bar in every seed, with a small spread: a significant gain
    assert claim["robust_test"] == "t over 3 seeds" and claim["robust_p_holm"] <= 0.05
    assert claim["verdict"] == "gain"
    assert "over 10 C-bar corruptions, 95 % interval" in claim["verdict_text"]
    html = (out / "index.html").read_text()
    assert 'id="c-bar-verdict" data-verdict="gain"' in html
    low, high = claim["robust_abs_pts_cbar_low"], claim["robust_abs_pts_cbar_high"]
    assert f"{claim['robust_abs_pts_cbar']:+.2f} [{low:+.2f}, {high:+.2f}]" in html


def test_a_gain_whose_interval_contains_zero_is_inconclusive(runs):
    df = combined_table(load_runs(runs))
    bar = df["corruption"].isin(CBAR_10)
    # auxiliary's C-bar accuracy = plain's of the same seed, shifted by +1, -1, +0.5 points
    shift = {0: 0.01, 1: -0.01, 2: 0.005}
    plain = df[bar & (df["label"] == "plain")].set_index(["seed", "corruption", "severity"])["acc"]
    aux = bar & (df["label"] == "auxiliary")
    keys = list(zip(df.loc[aux, "seed"], df.loc[aux, "corruption"], df.loc[aux, "severity"], strict=True))
    df.loc[aux, "acc"] = [plain[k] + shift[k[0]] for k in keys]
    row = cbar_claim_table(df).iloc[0]
    assert row["robust_abs_pts_cbar"] == pytest.approx(100 * 0.005 / 3)
    assert row["robust_abs_pts_cbar_low"] < 0 < row["robust_abs_pts_cbar_high"]
    assert row["verdict"] == "inconclusive"
    assert row["verdict_text"].startswith(
        "inconclusive (+0.17 points over 10 C-bar corruptions, 95 % interval"
    )
    assert "n = 3 seeds" in row["verdict_text"] and "Holm-adjusted p" in row["verdict_text"]


def test_one_seed_uses_the_bootstrap_over_test_images(runs):
    one = [r for r in load_runs(runs) if r.seed == 0]
    df = combined_table(one)
    claim = cbar_claim_table(df, one).iloc[0]
    gap = cbar_gap_table(df, one).iloc[0]
    _bounds_hold(claim, CLAIM_METRICS)
    _bounds_hold(gap, GAP_METRICS)
    assert claim["interval"].startswith("bootstrap over test images")
    assert claim["robust_test"] == "paired bootstrap z (1 seed)"
    assert "n = 1 seed × 200 test images" in claim["verdict_text"]
    assert gap["gap_test"] == "one seed: no test"
    # without the per-image results there is no interval and no test: inconclusive, said so
    bare = cbar_claim_table(df).iloc[0]
    assert math.isnan(bare["robust_abs_pts_cbar_low"]) and math.isnan(bare["robust_p_holm"])
    assert bare["verdict"] == "inconclusive" and "no interval; n = 1 seed" in bare["verdict_text"]
    assert math.isnan(cbar_gap_table(df).iloc[0]["gap_pts_low"])


def test_a_gain_inside_its_interval_is_not_coloured():
    from robustbench_aux.report.cbar import _with_interval

    inside = {"g": 2.0, "g_low": -0.5, "g_high": 4.5, "g_std": 1.0}
    outside = {"g": 2.0, "g_low": 0.5, "g_high": 3.5, "g_std": 1.0}
    loss = {"g": -2.0, "g_low": -3.5, "g_high": -0.5, "g_std": float("nan")}
    none = {"g": 2.0, "g_low": float("nan"), "g_high": float("nan"), "g_std": float("nan")}
    assert _with_interval(inside, "g")[1] == "" and _with_interval(none, "g")[1] == ""
    assert _with_interval(outside, "g")[1] == "pos" and _with_interval(loss, "g")[1] == "neg"
