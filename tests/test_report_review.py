"""The report rules from an independent review (issue 24, items 1-6), one test each:

1. the claim verdict respects its interval and the Holm-adjusted test; every claim number has an interval;
2. optimizer steps and images seen per run, the banner naming methods whose steps differ, and the
   ``step_budget = as_plain`` switch that trains enlarged-dataset baselines for plain's steps;
3. the banner names fewer training / test images, a data copy that is not the original, and says
   "pipeline check" when every run's training is toy-sized;
4. significance.csv carries what recomputes each p-value (n, b, c, resamples, standard error);
5. relative mCE with its confound stated and the per-corruption spread of the ratio.
(6, the browser check of wide tables, is in test_report_browser.py.)
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_runs import PAPER_SHARED, build_fixture_report, write_fixture_runs
from scipy import stats

from robustbench_aux import cli
from robustbench_aux.metrics import (
    claim_verdict,
    mcnemar,
    method_label,
    paired_bootstrap,
    paired_bootstrap_means,
)
from robustbench_aux.report import build_report
from robustbench_aux.report.banner import SHORT_SCHEDULE, UNKNOWN_SCALE, banner_items, framing, pipeline_check
from robustbench_aux.report.compute import steps_differences, training_compute
from robustbench_aux.report.runs import RunRecord


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory):
    return build_fixture_report(tmp_path_factory)


# ----------------------------------------------------------------------------- 1. the verdict
def _readings(abs15: float) -> dict:
    return {
        "robust_abs_pts_15": abs15,
        "robust_rel_pct_15": abs15 * 1.4,
        "robust_abs_pts_19": abs15,
        "robust_rel_pct_19": abs15 * 1.4,
    }


def test_a_loss_whose_interval_contains_zero_is_inconclusive_not_opposite_sign():
    # the review's case: -2.27 points, 95 % interval -5.18 ... +0.87, Holm p = 0.79
    verdict, text = claim_verdict(_readings(-2.27), -5.18, 0.87, 0.79, "n = 1 seed × 500 test images")
    assert verdict == "inconclusive"
    assert "opposite" not in text
    assert text == (
        "inconclusive (-2.27 points over 15 corruptions, 95 % interval -5.18 to +0.87, "
        "n = 1 seed × 500 test images, Holm-adjusted p = 0.79)"
    )


def test_an_interval_without_zero_is_still_inconclusive_when_holm_says_so():
    verdict, text = claim_verdict(_readings(-3.0), -5.0, -1.0, 0.20, "n = 3 seeds")
    assert verdict == "inconclusive" and "Holm-adjusted p = 0.2" in text
    verdict, _ = claim_verdict(_readings(6.0), 0.5, 11.0, 0.30, "n = 3 seeds")
    assert verdict == "inconclusive"  # a gain too: not significant after Holm
    verdict, _ = claim_verdict(_readings(6.0), -0.5, 11.0, 0.001, "n = 3 seeds")
    assert verdict == "inconclusive"  # significant, but the interval contains 0
    verdict, text = claim_verdict(_readings(6.0), math.nan, math.nan, math.nan, "seeds not paired")
    assert verdict == "inconclusive" and "no interval" in text


def test_opposite_sign_only_when_the_test_says_so():
    verdict, text = claim_verdict(_readings(-3.0), -5.0, -1.0, 0.01, "n = 3 seeds")
    assert verdict == "opposite sign"
    assert text.startswith("neither (a significant change of the opposite sign to the paper's: -3.00 points")
    readings = {
        "robust_abs_pts_15": 6.0,
        "robust_rel_pct_15": 21.0,
        "robust_abs_pts_19": 6.5,
        "robust_rel_pct_19": 30.0,
    }
    verdict, text = claim_verdict(readings, 4.0, 8.0, 0.01, "n = 3 seeds")
    assert verdict == "gain"
    assert (
        text.startswith("relative %, 15 corruptions (+6.00 points") and "95 % interval +4.00 to +8.00" in text
    )


def test_every_claim_number_has_its_interval(fixture_report):
    claim = pd.read_csv(fixture_report["out"] / "claim.csv").set_index("arch")
    sig = pd.read_csv(fixture_report["out"] / "significance.csv", dtype={"seed": str})
    runs = pd.read_csv(fixture_report["out"] / "runs.csv")
    metrics = [
        "delta_clean_pts",
        "robust_abs_pts_15",
        "robust_rel_pct_15",
        "robust_abs_pts_19",
        "robust_rel_pct_19",
    ]
    for arch in ("resnet18", "resnet50", "mean over architectures"):
        for m in metrics:
            low, mid, high = claim.loc[arch, [f"{m}_low", m, f"{m}_high"]]
            assert np.isfinite([low, high]).all() and low <= mid <= high, (arch, m)
            if m != "delta_clean_pts":  # the fixture's clean differences are equal in both seeds
                assert low < mid < high, (arch, m)
    # two paired seeds: a t interval over the per-seed differences
    sub = runs[runs["arch"] == "resnet18"].set_index(["label", "seed"])
    d = [100 * (sub.loc[("plain", s), "mce"] - sub.loc[("auxiliary", s), "mce"]) for s in (0, 1)]
    half = stats.t.ppf(0.975, 1) * np.std(d, ddof=1) / np.sqrt(2)
    # (runs.csv keeps 6 decimals, and the t quantile with 1 degree of freedom is 12.7)
    assert claim.loc["resnet18", "robust_abs_pts_15_low"] == pytest.approx(np.mean(d) - half, abs=1e-3)
    assert claim.loc["resnet18", "interval"] == "t over 2 seeds"
    # the verdict uses the Holm-adjusted p of the test over seeds
    over = sig[(sig["label"] == "auxiliary") & (sig["arch"] == "resnet18") & (sig["seed"] == "over seeds")]
    assert claim.loc["resnet18", "robust_p_holm"] == pytest.approx(float(over["mean15_p_holm"].iloc[0]))
    # the mean over architectures: half-widths in quadrature over the 2 architectures
    halves = [
        (claim.loc[a, "robust_abs_pts_15_high"] - claim.loc[a, "robust_abs_pts_15_low"]) / 2
        for a in ("resnet18", "resnet50")
    ]
    mean = claim.loc["mean over architectures"]
    assert mean["robust_abs_pts_15_high"] - mean["robust_abs_pts_15"] == pytest.approx(
        np.sqrt(sum(h**2 for h in halves)) / 2, abs=1e-5
    )
    html = fixture_report["index"].read_text()
    claim_html = html[html.index('<section id="claim">') : html.index('<section id="methods">')]
    assert f"{claim.loc['resnet18', 'robust_abs_pts_15']:+.2f} [" in claim_html
    assert "[95 % interval]" in claim_html


def test_one_seed_claim_interval_is_the_paired_bootstrap_of_section_8(tmp_path):
    write_fixture_runs(
        tmp_path / "runs", archs=("resnet18",), seeds=(0,), labels=("plain", "auxiliary"), n=100
    )
    build_report([tmp_path / "runs"], tmp_path / "out")
    claim = pd.read_csv(tmp_path / "out" / "claim.csv").iloc[0]
    sig = pd.read_csv(tmp_path / "out" / "significance.csv").iloc[0]
    assert claim["interval"].startswith("bootstrap over test images")
    assert claim["robust_abs_pts_15_low"] == pytest.approx(sig["mean15_low_pts"], abs=1e-9)
    assert claim["robust_abs_pts_15_high"] == pytest.approx(sig["mean15_high_pts"], abs=1e-9)
    assert claim["delta_clean_pts_low"] == pytest.approx(sig["clean_low_pts"], abs=1e-9)
    assert claim["robust_p_holm"] == pytest.approx(sig["mean15_p_holm"])
    assert "n = 1 seed × 100 test images" in claim["matching_reading"]


def test_paired_bootstrap_means_share_the_resamples_of_paired_bootstrap():
    rng = np.random.default_rng(3)
    a, b = rng.random(300), rng.random(300)
    ma, mb = paired_bootstrap_means(a, b)
    ref = paired_bootstrap(a, b)
    lo, hi = np.quantile(ma - mb, [0.025, 0.975])
    assert (lo, hi) == pytest.approx((ref["low"], ref["high"]), abs=1e-12)


# ----------------------------------------------------------------------------- 2. compute
def _metrics(run: Path, rows: list[tuple[int, int]]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,lr,steps,images"] + [f"{i + 1},0.1,{s},{n}" for i, (s, n) in enumerate(rows)]
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_training_compute_sums_the_epochs_and_never_guesses(tmp_path):
    _metrics(tmp_path / "a", [(391, 50000), (391, 50000)])
    assert training_compute(tmp_path / "a") == {"steps": 782, "images": 100000}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.csv").write_text("epoch,steps\n1,391\n")  # before images was recorded
    old = training_compute(tmp_path / "old")
    assert old["steps"] == 391 and math.isnan(old["images"])
    assert all(math.isnan(v) for v in training_compute(tmp_path / "none").values())


def test_steps_differences_name_methods_more_than_ten_percent_apart():
    runs = [
        ("plain", "r18", 1000),
        ("naive_augmentation", "r18", 5000),
        ("auxiliary", "r18", 1000),
        ("augmix", "r18", 1090),
        ("per_corruption[noise]", "r18", 2000),
        ("x", "r50", math.nan),
    ]
    (text,) = steps_differences(runs)
    assert text == "naive_augmentation 5.00×, per_corruption[noise] 2.00× the optimizer steps of plain (r18)"
    assert steps_differences([("plain", "r18", 1000), ("augmix", "r18", 1100)]) == []  # 10 % is not more
    # no plain run: the method with the fewest steps is the reference
    assert steps_differences([("a", "r18", 100), ("b", "r18", 300)]) == [
        "b 3.00× the optimizer steps of a (r18)"
    ]


def test_runs_and_methods_show_steps_and_images(fixture_report):
    runs = pd.read_csv(fixture_report["out"] / "runs.csv").set_index("run_id")
    methods = pd.read_csv(fixture_report["out"] / "methods.csv").set_index(["label", "arch"])
    for rid in runs.index:
        with open(fixture_report["root"] / "runs" / rid / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        assert runs.loc[rid, "optimizer_steps"] == sum(int(r["steps"]) for r in rows)
        assert runs.loc[rid, "images_seen"] == sum(int(r["images"]) for r in rows)
    plain = methods.loc[("plain", "resnet18")]
    assert methods.loc[("naive_augmentation", "resnet18"), "optimizer_steps"] / plain[
        "optimizer_steps"
    ] == pytest.approx(5, rel=1e-3)
    assert methods.loc[("auxiliary", "resnet18"), "images_seen"] == 5 * plain["images_seen"]
    html = fixture_report["index"].read_text()
    section = html[html.index('<section id="methods">') : html.index('<section id="tradeoff">')]
    assert "optimizer steps" in section and "images seen (all views)" in section
    assert f"{int(plain['optimizer_steps']):,}" in section
    banner = html[html.index('id="banner"') : html.index("</div>", html.index('id="banner"'))]
    assert "naive_augmentation 5.00×" in banner and "per_corruption[noise] 2.00×" in banner


TINY = ["--arch", "test_tiny", "--dataset", "synthetic10", "--seed", "0", "--device", "cpu"]


def _train(out: Path, method: str, *extra: str) -> int:
    common = ["--recipe", "smoke", *TINY, "--n-train", "64", "--epochs", "2", "--set", "batch_size=16"]
    return cli.main(["train", "--method", method, *common, "--out", str(out), *extra])


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_step_budget_as_plain_trains_plain_trainings_steps(tmp_path, capsys):
    assert _train(tmp_path / "plain", "plain") == 0
    assert _train(tmp_path / "full", "naive_augmentation") == 0
    assert _train(tmp_path / "equal", "naive_augmentation", "--set", "step_budget=as_plain") == 0
    assert _train(tmp_path / "aux", "auxiliary") == 0
    steps = {k: [int(r["steps"]) for r in _rows(tmp_path / k)] for k in ("plain", "full", "equal", "aux")}
    images = {k: [int(r["images"]) for r in _rows(tmp_path / k)] for k in ("plain", "full", "equal", "aux")}
    assert steps["plain"] == [4, 4] and steps["full"] == [20, 20]  # 64 images, batch 16; 5 x 64 items
    assert steps["equal"] == steps["plain"] == steps["aux"]
    assert images["plain"] == images["equal"] == [64, 64]
    assert images["full"] == [320, 320] and images["aux"] == [320, 320]  # the auxiliary step: 5 views
    config = json.loads((tmp_path / "equal" / "config.json").read_text())
    assert config["options"]["step_budget"] == "as_plain"
    assert method_label(config) == "naive_augmentation[plain steps]"
    full = json.loads((tmp_path / "full" / "config.json").read_text())
    assert full["options"]["step_budget"] == "full_pass" and method_label(full) == "naive_augmentation"
    capsys.readouterr()
    code = _train(
        tmp_path / "bad",
        "naive_augmentation",
        "--set",
        "data_reading=joint_batch",
        "--set",
        "step_budget=as_plain",
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(
        "error: step_budget = as_plain applies to data_reading = enlarged_dataset"
    )
    assert not (tmp_path / "bad" / "metrics.csv").exists()


# ----------------------------------------------------------------------------- 3. the banner
def _record(label="plain", seed=0, data=None, dataset="cifar100", summary=None, epochs=210) -> RunRecord:
    table = pd.DataFrame([{"run_id": f"{label}-s{seed}", "label": label, "arch": "resnet18", "seed": seed}])
    config = {"recipe": "reference", "dataset": dataset, "train": {"epochs": epochs}, "data": data or {}}
    return RunRecord(Path("/nonexistent"), config, summary or {}, table)


def _keys(records, **shared) -> list[str]:
    return [i.key for i in banner_items(records, replace(PAPER_SHARED, **shared))]


def _paper(**kw) -> list[RunRecord]:
    return [_record(lab, s, **kw) for lab in ("plain", "auxiliary") for s in (0, 1)]


def test_banner_names_fewer_images_and_a_copy_that_is_not_the_original():
    official = {"n_train": 50_000, "copy": "official (torchvision) or user-provided copy"}
    assert _keys(_paper(data=official)) == []
    assert _keys(_paper(data=official), clean_test_images=500) == ["test_images"]
    items = banner_items(_paper(data={"n_train": 2000}), PAPER_SHARED)
    assert [i.key for i in items] == ["train_images"]
    assert items[0].text == "Trained on 2,000 of the 50,000 training images: all 4 runs."
    jpeg = {"data": {"copy": "CIFAR-10 (JPEG-q75 copy)"}}
    items = banner_items(_paper(summary={"provenance": jpeg}), PAPER_SHARED)
    assert [i.key for i in items] == ["data_copy"]
    assert items[0].text.startswith("Data copy CIFAR-10 (JPEG-q75 copy), not the original release")


def test_pipeline_check_sentence_only_for_a_fraction_of_the_data():
    toy = _paper(data={"n_train": 2000}, epochs=3)
    sentence = pipeline_check(toy)
    assert sentence.startswith(
        "These numbers are a pipeline check, not a comparison of the methods: every run trained on "
        "2,000 of the 50,000 training images (4 %)"
    )
    # all training images at a short schedule: a real comparison at that schedule, not a pipeline check
    assert pipeline_check(_paper(data={"n_train": 50_000}, epochs=8)) is None
    assert framing(_paper(data={"n_train": 50_000}, epochs=8)).kind == SHORT_SCHEDULE
    # one run on a fraction of the images is enough: the comparison is only as strong as that run
    mixed = toy[:1] + _paper(data={"n_train": 50_000})[1:]
    assert "1 of 4 runs trained on 2,000" in pipeline_check(mixed)
    assert pipeline_check(_paper()) is None  # training images not recorded: nothing is claimed
    assert framing(_paper()).kind == UNKNOWN_SCALE


def test_the_page_says_pipeline_check_in_the_banner(tmp_path):
    runs = write_fixture_runs(
        tmp_path / "runs", archs=("resnet18",), seeds=(0,), labels=("plain", "auxiliary"), n=50
    )
    for run in runs:
        config = json.loads((run / "config.json").read_text())
        config["data"]["n_train"] = 512
        config["train"]["epochs"] = 2
        (run / "config.json").write_text(json.dumps(config))
    html = build_report([tmp_path / "runs"], tmp_path / "out").read_text()
    banner = html[html.index('id="banner"') : html.index("</div>", html.index('id="banner"'))]
    assert 'data-framing="pipeline check">These numbers are a pipeline check' in banner
    for key in ("test_images", "data_copy", "train_images", "epochs"):
        assert f'data-key="{key}"' in banner


# ----------------------------------------------------------------------------- 4. significance.csv
def test_every_p_value_can_be_recomputed_from_significance_csv(fixture_report):
    sig = pd.read_csv(fixture_report["out"] / "significance.csv", dtype={"seed": str})
    seed_rows = sig[sig["seed"] != "over seeds"]
    assert len(seed_rows) and (seed_rows["n_images"] == 100).all()
    assert (seed_rows["bootstrap_resamples"] == 2000).all()
    for _, r in seed_rows.iterrows():
        b, c = int(r["clean_b"]), int(r["clean_c"])
        p = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
        assert r["clean_p_mcnemar"] == pytest.approx(p, abs=1e-6)
        z = abs(r["delta_mean15_pts"]) / r["mean15_se_pts"]
        assert r["mean15_p"] == pytest.approx(2 * stats.norm.sf(z), abs=1e-5)  # the CSV keeps 6 decimals
        assert r["interval"] == "95 % bootstrap percentile, unadjusted"
    # the over-seeds t-test from the per-seed rows
    over = sig[
        (sig["seed"] == "over seeds") & (sig["label"] == "auxiliary") & (sig["arch"] == "resnet18")
    ].iloc[0]
    per = seed_rows[(seed_rows["label"] == "auxiliary") & (seed_rows["arch"] == "resnet18")]
    assert over["mean15_p"] == pytest.approx(stats.ttest_1samp(per["delta_mean15_pts"], 0).pvalue, abs=1e-5)
    html = fixture_report["index"].read_text()
    section = html[html.index('<section id="significance">') : html.index('<section id="runs">')]
    assert "[unadjusted 95 % CI]" in section and "McNemar b / c" in section


def test_mcnemar_counts_in_the_table_are_the_tests_own():
    m = np.array([True] * 12 + [False] * 3 + [True] * 85)
    p = np.array([False] * 12 + [True] * 3 + [True] * 85)
    assert mcnemar(m, p)["b"] == 12 and mcnemar(m, p)["c"] == 3


# ----------------------------------------------------------------------------- 5. relative mCE
def test_relative_mce_shown_with_its_confound_and_spread(fixture_report):
    out = fixture_report["out"]
    runs = pd.read_csv(out / "runs.csv").set_index("run_id")
    ratios = pd.read_csv(out / "ratios.csv")
    rid = runs.index[runs["label"] == "naive_augmentation"][0]
    for name in ("mce_rel", "mce_norm"):
        mine = ratios[(ratios["run_id"] == rid) & (ratios["ratio"] == name)]
        stable = mine[~mine["unstable"]]["value"]
        assert runs.loc[rid, name] == pytest.approx(stable.mean())
        assert runs.loc[rid, f"{name}_min"] == pytest.approx(stable.min())
        assert runs.loc[rid, f"{name}_median"] == pytest.approx(stable.median())
        assert runs.loc[rid, f"{name}_max"] == pytest.approx(stable.max())
        assert len(mine) == 15
    html = fixture_report["index"].read_text()
    section = html[html.index('<section id="methods">') : html.index('<section id="tradeoff">')]
    assert "Relative mCE rewards a lower clean accuracy" in section
    assert (
        "normalized mCE vs plain (%)" in section
        and "relative CE per corruption (%): min / median / max" in section
    )
    methods = pd.read_csv(out / "methods.csv").set_index(["label", "arch"])
    row = methods.loc[("naive_augmentation", "resnet18")]
    shown = " / ".join(f"{100 * row[f'mce_rel_{q}']:.0f}" for q in ("min", "median", "max"))
    assert shown in section
