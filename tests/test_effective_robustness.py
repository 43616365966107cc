"""Effective robustness: the shipped RobustBench leaderboards, the logit-space line, each method's
distance from it, and the report's section and notes; the report's Calibration section."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from fixtures_runs import write_fixture_run

from robustbench_aux.catalog import BENCHMARK_15
from robustbench_aux.infra.shipped import LEADERBOARD_CSV, REFERENCE
from robustbench_aux.metrics.effective import (
    effective_robustness,
    expit,
    fit_logit_line,
    leaderboard,
    logit,
    reference_line,
)
from robustbench_aux.report import build_report
from robustbench_aux.report.effective import effective_table, own_line

SLIPPED = (
    "Gowal2020Uncovering_Linf",
    "Gowal2020Uncovering_extra_Linf",
    "Hendrycks2020AugMix_ResNeXt",
    "Hendrycks2020AugMix_WRN",
)


def test_shipped_leaderboards_with_source_and_the_slip_corrected():
    readme = (REFERENCE / "README.md").read_text(encoding="utf-8")
    assert "78fcc9e48a07a861268f295a777b975f25155964" in readme and "MIT" in readme
    assert len(leaderboard("cifar10", "all")) == 23 and len(leaderboard("cifar100", "all")) == 13
    c100 = leaderboard("cifar100", "all")
    assert set(SLIPPED) <= set(c100["model_id"])  # the four JSONs saying "cifar10" are CIFAR-100 rows
    unagg = (REFERENCE / "robustbench_cifar100_corruptions_unaggregated.csv").read_text()
    assert all(m in unagg for m in SLIPPED)
    wrn = c100.set_index("model_id").loc["Hendrycks2020AugMix_WRN"]
    assert (wrn["clean_acc"], wrn["corruptions_acc"]) == pytest.approx((0.7628, 0.6411))
    std = leaderboard("cifar10")  # single pass, no extra data
    assert len(std) == 16 and not std["additional_data"].any() and (std["number_forward_passes"] == 1).all()
    assert ((std["clean_acc"] > 0.8) & (std["clean_acc"] < 1)).all()  # fractions, not percent
    assert LEADERBOARD_CSV.is_file()


def test_the_line_is_least_squares_in_logit_space():
    clean = np.array([0.6, 0.7, 0.8, 0.9])
    line = fit_logit_line(clean, expit(0.8 * logit(clean) - 0.3), name="t", models="4")
    assert (line.a, line.b) == pytest.approx((0.8, -0.3))
    assert line.residual_sd == pytest.approx(0.0, abs=1e-9)
    assert (line.clean_min, line.clean_max) == pytest.approx((0.6, 0.9))
    # by hand: logit(0.6) = ln 1.5, the prediction σ(0.8 ln 1.5 − 0.3); a run at 0.5 corrupted
    want = 1 / (1 + math.exp(-(0.8 * math.log(1.5) - 0.3)))
    assert float(line.predict(0.6)) == pytest.approx(want)
    assert float(effective_robustness(0.6, 0.5, line)) == pytest.approx(100 * (0.5 - want))
    assert line.in_range([0.65, 0.95]).tolist() == [True, False]
    # least squares, not interpolation: noisy points give the polyfit of the logits
    y = np.array([0.5, 0.62, 0.69, 0.86])
    line = fit_logit_line(clean, y, name="t", models="4")
    assert (line.a, line.b) == pytest.approx(tuple(np.polyfit(logit(clean), logit(y), 1)))


def test_reference_lines_of_the_shipped_data():
    c10, c100 = reference_line("cifar10"), reference_line("cifar100")
    assert (c10.n, c100.n) == (16, 10)
    assert (c10.a, c10.b) == pytest.approx((0.6703, 0.0149), abs=1e-3)
    assert (c100.a, c100.b) == pytest.approx((0.8375, -0.3700), abs=1e-3)
    assert not c10.in_range(0.69)  # a ResNet-8 at 69 % clean is far below the CIFAR-10 leaderboard
    assert reference_line("cifar10", "all").n == 23


def test_own_line_needs_five_models_and_intervals_are_over_seeds():
    rows = [
        {"label": lab, "arch": "r", "seed": s, "clean_acc": c + 0.01 * s, "mean_acc_15": m + 0.005 * s}
        for lab, c, m in (("plain", 0.70, 0.50), ("a", 0.72, 0.53), ("b", 0.74, 0.55), ("c", 0.76, 0.58))
        for s in (0, 1)
    ]
    runs = pd.DataFrame(rows)
    assert own_line(runs) is None
    runs = pd.concat(
        [runs, pd.DataFrame([{"label": "d", "arch": "r", "seed": 0, "clean_acc": 0.8, "mean_acc_15": 0.6}])]
    )
    line = own_line(runs)
    assert line is not None and line.n == 5
    table = effective_table(runs, {"own": line})
    a = table.set_index("label").loc["a"]
    er = effective_robustness([0.72, 0.73], [0.53, 0.535], line)
    assert a["er_own_pts"] == pytest.approx(er.mean())
    half = 12.706204736 * er.std(ddof=1) / math.sqrt(2)  # t_{0.975, 1}
    assert (a["er_own_pts_low"], a["er_own_pts_high"]) == pytest.approx((er.mean() - half, er.mean() + half))
    assert table["in_range_own"].tolist() == [True, True, True, True, True]  # the edges are inside
    d = table.set_index("label").loc["d"]
    assert d["interval_own"] == "none (1 seed)" and math.isnan(d["er_own_pts_low"])


LABELS = ("plain", "auxiliary", "naive_augmentation", "augmix", "per_corruption[noise]")


@pytest.fixture(scope="module")
def calibrated_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrated")
    for lab in LABELS:
        for s in (0, 1):
            write_fixture_run(
                root / "runs",
                lab,
                "resnet18",
                s,
                n=60,
                corruptions=BENCHMARK_15,
                dataset="cifar10",
                calibration=True,
            )
    index = build_report([root / "runs"], root / "report")
    return root / "report", index.read_text(encoding="utf-8")


def _text(html: str) -> str:
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


def test_report_effective_robustness_section(calibrated_report):
    out, html = calibrated_report
    text = _text(html)
    lines = pd.read_csv(out / "effective_lines.csv")
    assert lines["key"].tolist() == ["robustbench", "own"]  # 5 distinct models: the report's own line too
    er = pd.read_csv(out / "effective_robustness.csv")
    assert set(er["label"]) == set(LABELS) and not er["in_range_robustbench"].any()
    per_run = pd.read_csv(out / "effective_runs.csv")
    assert len(per_run) == 10
    aux = per_run[per_run["label"] == "auxiliary"]["er_robustbench_pts"]
    assert er.set_index("label").loc["auxiliary", "er_robustbench_pts"] == pytest.approx(aux.mean(), abs=1e-5)
    assert "Outside the RobustBench line's range" in text and "extrapolation" in text
    assert "generated CIFAR-C" in text
    assert "78fcc9e48a07a861268f295a777b975f25155964" in text
    assert "effective robustness vs RobustBench line (points)" in text
    assert "effective robustness vs this report's line (points)" in text
    tradeoff = html[html.index('id="tradeoff"') : html.index('id="interference"')]
    assert "RobustBench line (logit fit" in tradeoff  # drawn on the trade-off plot


def test_report_calibration_section(calibrated_report):
    out, html = calibrated_report
    section = _text(html[html.index('id="calibration"') : html.index('id="corruptions"')])
    assert "Calibration" in section and "not recorded" not in section
    tests = pd.read_csv(out / "calibration_tests.csv", dtype={"seed": str})
    seed_rows, over = tests[tests["seed"] != "over seeds"], tests[tests["seed"] == "over seeds"]
    assert len(seed_rows) == 8 and len(over) == 4  # 4 methods x 2 seeds, and over seeds
    # per method: its 2 seeds x 2 tests, and its 2 seed-level tests (the accuracy rule)
    assert seed_rows["family"].str.startswith("Holm over the method's 4 per-seed tests").all()
    assert over["family"].str.startswith("Holm over the method's 2 seed-level tests").all()
    # a method's adjusted p does not depend on the other methods on the page
    from robustbench_aux.metrics.uncertainty import holm

    for _, group in seed_rows.groupby("label"):
        flat = np.concatenate([group["delta_ece_clean_pts_p"], group["delta_ece_15_pts_p"]])
        adj = holm(flat)
        assert np.allclose(adj[len(group) :], group["delta_ece_15_pts_p_holm"], equal_nan=True)
    for _, r in tests.iterrows():  # no word stronger than the test
        p, lo, hi = r["delta_ece_15_pts_p_holm"], r["delta_ece_15_pts_low"], r["delta_ece_15_pts_high"]
        if r["verdict_15"] != "inconclusive":
            assert p <= 0.05 and not lo <= 0 <= hi
        assert r["delta_ece_15_pts_low"] <= r["delta_ece_15_pts"] <= r["delta_ece_15_pts_high"]
    assert (
        "Holm over the method's 4 per-seed tests" in section
        and "Holm over the method's 2 seed-level tests" in section
    )
    sev = pd.read_csv(out / "calibration_severity.csv")
    assert set(sev["severity"]) == {0, 1, 2, 3, 4, 5} and set(sev["metric"]) == {
        "ece",
        "rmsce",
        "nll",
        "brier",
    }
    per_run = pd.read_csv(out / "calibration_runs.csv")
    assert len(per_run) == 10 and (per_run["calibration_blocks_recorded"] == 76).all()
    methods = pd.read_csv(out / "calibration_methods.csv")
    assert (methods["blocks_recorded_min"] == methods["blocks"]).all()
    # the fixture makes plain the most overconfident: every method's ECE is below plain's
    assert (seed_rows["delta_ece_15_pts"] < 0).all()
    long = pd.read_csv(out / "results_long.csv")
    assert {"ece", "rmsce", "nll", "brier"} <= set(long.columns) and long["ece"].notna().all()


def test_report_without_calibration_says_not_recorded(tmp_path):
    for lab in ("plain", "auxiliary"):
        write_fixture_run(tmp_path / "runs", lab, "resnet18", 0, n=40, corruptions=("fog", "contrast"))
    html = build_report([tmp_path / "runs"], tmp_path / "report").read_text(encoding="utf-8")
    section = _text(html[html.index('id="calibration"') : html.index('id="corruptions"')])
    assert "Calibration not recorded" in section
    assert not (tmp_path / "report" / "calibration_tests.csv").exists()
    long = pd.read_csv(tmp_path / "report" / "results_long.csv")
    assert long["ece"].isna().all()  # empty cells, never 0
    text = _text(html)
    assert "No line of this report's own" in text and "Only 2 of the 15" in text
