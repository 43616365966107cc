"""What a page says it is, what it says first, and which tests its words rest on.

- the framing thresholds (pipeline check vs short-schedule comparison, docs/metrics.md);
- the facts-first sentences and the power of a test over seeds;
- Holm families fixed by the claim: adding an unrelated method moves no auxiliary verdict;
- seen vs unseen corruptions, tested per seed and over seeds;
- the data behind the per-corruption change plot and the training curves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_runs import write_fixture_runs
from scipy import stats

from robustbench_aux.metrics.uncertainty import detectable_difference
from robustbench_aux.report import cbar, claim, facts, plotdata, tables
from robustbench_aux.report.banner import (
    FULL_SCHEDULE,
    PIPELINE_CHECK,
    SHORT_SCHEDULE,
    TOY_TEST_IMAGES,
    framing,
)
from robustbench_aux.report.runs import RunRecord, load_runs


# ----------------------------------------------------------------------------- framing thresholds
def _run(n_train=50_000, epochs=8, n_test=10_000, n_block=10_000, seed=0, label="plain") -> RunRecord:
    table = pd.DataFrame(
        [
            {"run_id": f"{label}-s{seed}", "label": label, "arch": "resnet8", "seed": seed,
             "corruption": "clean", "severity": 0, "n": n_test},
            {"run_id": f"{label}-s{seed}", "label": label, "arch": "resnet8", "seed": seed,
             "corruption": "fog", "severity": 1, "n": n_block},
        ]
    )  # fmt: skip
    config = {
        "recipe": "reference",
        "dataset": "cifar10",
        "train": {"epochs": epochs},
        "data": {"n_train": n_train} if n_train is not None else {},
    }
    return RunRecord(Path("/nonexistent"), config, {}, table)


def _pair(**kw) -> list[RunRecord]:
    return [_run(label=lab, **kw) for lab in ("plain", "auxiliary")]


def test_framing_thresholds():
    # half the training images is still a comparison; one image fewer makes it a pipeline check
    assert framing(_pair(n_train=25_000)).kind == SHORT_SCHEDULE
    f = framing(_pair(n_train=24_999))
    assert f.kind == PIPELINE_CHECK and "24,999 of the 50,000 training images" in f.text
    # a toy test set: fewer than 2,000 clean test images or images per block, and the page says which
    assert framing(_pair(n_test=TOY_TEST_IMAGES, n_block=TOY_TEST_IMAGES)).kind == SHORT_SCHEDULE
    f = framing(_pair(n_test=TOY_TEST_IMAGES - 1))
    assert f.kind == PIPELINE_CHECK and "toy test set of 1,999 clean test images" in f.text
    assert "training images" not in f.text
    f = framing(_pair(n_block=500))
    assert f.kind == PIPELINE_CHECK and "500 images per corruption block" in f.text
    # the committed example's scale: both reasons named
    f = framing(_pair(n_train=2_000, epochs=3, n_test=500, n_block=500))
    assert "2,000 of the 50,000 training images (4 %)" in f.text and "500 clean test images" in f.text
    # the first CPU experiment's scale: all images, 8 of 210 epochs -> a real short-schedule comparison
    f = framing(_pair())
    assert f.kind == SHORT_SCHEDULE
    assert f.text.startswith("A short-schedule comparison on full data: every run trained on all 50,000")
    assert "8 epochs instead of the reference schedule's 210" in f.text and "not at the paper's" in f.text
    assert "pipeline check" not in f.text
    assert framing(_pair(epochs=210)).kind == FULL_SCHEDULE
    assert framing(_pair(epochs=210)).text == ""


# ----------------------------------------------------------------------------- facts first, power
def test_seed_sentence_states_each_seed_with_its_test():
    text = facts.seed_sentence([-7.03, -4.47], [1e-52, 1e-24], "clean accuracy")
    assert text == "2 of 2 seeds lose clean accuracy, −7.0 and −4.5 points, each p < 0.001"
    text = facts.seed_sentence([1.2, -0.5], [0.3, 0.6], "clean accuracy")
    assert text == "the 2 seeds disagree on clean accuracy: +1.2 (p = 0.3) and −0.5 (p = 0.6) points"
    text = facts.seed_sentence([2.0, 1.0, 3.0], [0.01, 0.2, 1e-4], "mean accuracy")
    assert text.startswith("3 of 3 seeds gain mean accuracy, +2.0, +1.0 and +3.0 points, p = 0.01, p = 0.2")


def test_detectable_difference_is_the_documented_formula():
    # (t_0.975,1 + t_0.8,1) * s / sqrt(2) = (12.706 + 1.376) / 1.414 = 9.96 s
    assert detectable_difference(1.0, 2) == pytest.approx(9.958, abs=1e-3)
    assert detectable_difference(2.0, 3) == pytest.approx(
        (stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)) * 2.0 / math.sqrt(3)
    )
    assert math.isnan(detectable_difference(1.0, 1)) and math.isnan(detectable_difference(float("nan"), 3))
    # more seeds, smaller detectable difference at the same spread
    assert detectable_difference(1.0, 10) < detectable_difference(1.0, 3) < detectable_difference(1.0, 2)


def test_seed_level_verdict_and_power_from_the_significance_row():
    row = {"n_seeds": 2, "delta_clean_pts": -5.75, "clean_std_pts": 1.81, "clean_p_holm": 0.27}
    lv = facts.seed_level(row, "clean")
    assert lv["verdict"] == "inconclusive"
    half = stats.t.ppf(0.975, 1) * 1.81 / math.sqrt(2)
    assert lv["low"] == pytest.approx(-5.75 - half) and lv["high"] == pytest.approx(-5.75 + half)
    assert lv["detectable"] == pytest.approx(detectable_difference(1.81, 2))
    row = {"n_seeds": 5, "delta_clean_pts": -5.0, "clean_std_pts": 1.0, "clean_p_holm": 0.001}
    assert facts.seed_level(row, "clean")["verdict"] == "significant loss"


# ----------------------------------------------------------------------------- named test families
CORRUPTIONS = ("gaussian_noise", "defocus_blur", "fog", "contrast", "snow", "pixelate")


def _runs(root: Path, labels, seeds=(0, 1, 2)) -> list[RunRecord]:
    write_fixture_runs(root, archs=("resnet18",), seeds=seeds, labels=labels, n=120, corruptions=CORRUPTIONS)
    return load_runs([root])


def _claim(records):
    df = pd.concat([r.table for r in records], ignore_index=True)
    sig = tables.significance_table(records)
    return sig, claim.claim_table(df, records, sig)


def test_adding_an_unrelated_method_does_not_move_the_auxiliary_verdict(tmp_path):
    two = _runs(tmp_path / "two", ("plain", "auxiliary"))
    more = _runs(tmp_path / "more", ("plain", "auxiliary", "naive_augmentation", "per_corruption[noise]"))
    sig2, claim2 = _claim(two)
    sig4, claim4 = _claim(more)
    for col in ("robust_p_holm", "clean_p_holm", "verdict", "matching_reading", "family"):
        assert claim2.loc[0, col] == claim4.loc[0, col], col
    aux = lambda s: s[s["label"] == "auxiliary"].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(
        aux(sig2)[["seed", "clean_p_holm", "mean15_p_holm", "family_size"]],
        aux(sig4)[["seed", "clean_p_holm", "mean15_p_holm", "family_size"]],
    )
    # the claim's family: auxiliary's two seed-level tests, named with its size
    over = sig4[(sig4["label"] == "auxiliary") & (sig4["seed"] == "over seeds")].iloc[0]
    assert over["family_size"] == 2 and claim4.loc[0, "family"].startswith("Holm over 2 tests (over seeds:")
    per_seed = sig4[(sig4["label"] == "auxiliary") & (sig4["seed"] != "over seeds")]
    assert (per_seed["family_size"] == 6).all()  # clean and mean-15 of each of 3 seeds


def test_per_seed_and_seed_level_tests_never_share_a_family(tmp_path):
    sig, _ = _claim(_runs(tmp_path / "r", ("plain", "auxiliary")))
    seed_rows = sig[sig["seed"] != "over seeds"]
    from robustbench_aux.metrics.uncertainty import holm

    family = np.concatenate([seed_rows["clean_p"], seed_rows["mean15_p"]])
    want = holm(family)
    assert np.allclose(seed_rows["clean_p_holm"], want[: len(seed_rows)], equal_nan=True)
    assert np.allclose(seed_rows["mean15_p_holm"], want[len(seed_rows) :], equal_nan=True)
    over = sig[sig["seed"] == "over seeds"].iloc[0]
    assert over["mean15_p_holm"] == pytest.approx(holm([over["clean_p"], over["mean15_p"]])[1])


def test_cbar_family_is_named_and_gap_seeds_is_a_count(tmp_path):
    from robustbench_aux.catalog import CBAR_10

    root = tmp_path / "cbar"
    write_fixture_runs(
        root, archs=("resnet18",), seeds=(0, 1), labels=("plain", "auxiliary", "augmix"), n=80,
        corruptions=CORRUPTIONS + CBAR_10[:3],
    )  # fmt: skip
    records = load_runs([root])
    df = pd.concat([r.table for r in records], ignore_index=True)
    c = cbar.cbar_claim_table(df, records)
    assert c.loc[0, "family"] == "Holm over 1 test: auxiliary's C-bar gain per architecture"
    gap = cbar.cbar_gap_table(df, records)
    shown = cbar.html_cbar(cbar.cbar_method_table(df), c, gap)
    header = shown["claim"]["columns"]
    assert any(h.startswith("Holm-adjusted p (Holm over 1 test:") for h in header)
    seeds = shown["gap"]["columns"].index("seeds (paired)")
    assert [row[seeds]["text"] for row in shown["gap"]["rows"]] == ["2", "2"]
    assert shown["gap"]["rows"][0][seeds]["title"] == "seeds 0,1"


# ----------------------------------------------------------------------------- seen vs unseen
def _pi(n_right: int, n: int = 400) -> np.ndarray:
    return np.arange(n) < n_right


def _rec(label, seed, blocks, method="auxiliary") -> RunRecord:
    table = pd.DataFrame([{"run_id": f"{label}-s{seed}", "label": label, "arch": "resnet18", "seed": seed}])
    config = {"method": method if label != "plain" else "plain", "run_id": f"{label}-s{seed}"}
    return RunRecord(Path("/nonexistent"), config, {}, table, _per_image=blocks)


def _blocks(seen_right: int, unseen_right: int) -> dict:
    # gaussian_noise is seen by auxiliary training (noise), fog and snow are not
    return {
        ("gaussian_noise", 1): _pi(seen_right),
        ("fog", 1): _pi(unseen_right),
        ("snow", 1): _pi(unseen_right),
    }


def test_seen_vs_unseen_is_tested_per_seed_and_over_seeds():
    plain = [_rec("plain", s, _blocks(200, 200)) for s in (0, 1, 2)]
    # the method gains 40, 44, 36 images on the seen corruption and nothing on the unseen ones
    aux = [_rec("auxiliary", s, _blocks(200 + g, 200)) for s, g in zip((0, 1, 2), (40, 44, 36), strict=True)]
    records = plain + aux
    t = facts.seen_unseen_table(records, {r.run_id: r.config for r in records})
    assert list(t["seed"]) == ["0", "1", "2", "over seeds"]
    assert t.loc[0, "seen_delta_pts"] == pytest.approx(10.0) and t.loc[0, "unseen_delta_pts"] == 0
    assert t.loc[0, "diff_p"] < 0.001 and t.loc[0, "diff_low_pts"] > 0
    over = t.iloc[-1]
    assert over["diff_pts"] == pytest.approx(10.0)
    sd = np.std([10, 11, 9], ddof=1)
    assert over["diff_high_pts"] - over["diff_pts"] == pytest.approx(
        stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    )
    assert over["diff_p"] == pytest.approx(stats.ttest_1samp([10, 11, 9], 0).pvalue)
    text = facts.seen_unseen_sentence(t, "auxiliary", "resnet18")
    assert "10.00 points better on the seen corruptions" in text and "over seeds" in text
    # the same change everywhere: no difference is shown, and the words say so
    flat = [
        _rec("auxiliary", s, _blocks(200 + g, 200 + g)) for s, g in zip((0, 1, 2), (8, 12, 4), strict=True)
    ]
    t = facts.seen_unseen_table(plain + flat, {r.run_id: r.config for r in plain + flat})
    assert facts.seen_unseen_sentence(t, "auxiliary", "resnet18").startswith(
        "auxiliary (resnet18): no difference between seen and unseen corruptions is shown"
    )


# ----------------------------------------------------------------------------- plot data
def test_corruption_change_per_seed_and_interval(tmp_path):
    records = _runs(tmp_path / "r", ("plain", "auxiliary"))
    df = pd.concat([r.table for r in records], ignore_index=True)
    per_seed, summary = plotdata.corruption_change_data(df)
    acc = df.groupby(["label", "seed", "corruption"])["acc"].mean()
    for seed in (0, 1, 2):
        got = per_seed.query("seed == @seed and corruption == 'fog'")["delta_pts"].iloc[0]
        assert got == pytest.approx(100 * (acc["auxiliary", seed, "fog"] - acc["plain", seed, "fog"]))
    fog = summary.set_index("corruption").loc["fog"]
    d = per_seed.query("corruption == 'fog'")["delta_pts"].to_numpy()
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert fog["n_seeds"] == 3 and fog["mean_pts"] == pytest.approx(d.mean())
    assert fog["high_pts"] - fog["mean_pts"] == pytest.approx(half)
    assert set(summary["label"]) == {"auxiliary"}  # the reference has no row
    sev = plotdata.severity_per_seed(df)
    assert len(sev) == 6 and list(sev.columns[-6:]) == ["clean", "s1", "s2", "s3", "s4", "s5"]


def test_training_curves_read_metrics_csv_and_name_runs_without_it(tmp_path):
    records = _runs(tmp_path / "r", ("plain", "auxiliary"), seeds=(0,))
    aux = next(r for r in records if r.label == "auxiliary")
    (aux.path / "metrics.csv").write_text(
        "epoch,lr,lr_last,ce_primary,ce_aux_noise,penalty,loss,train_acc,gamma,steps,images,images_per_s,seconds\n"
        "1,0.1,0.1,2.0,1.5,0.0,3.5,0.40,0.0,390,250000,900,55\n"
        "2,0.1,0.05,1.5,1.0,0.2,2.7,0.55,0.5,390,250000,910,54\n"
    )
    curves, missing = plotdata.training_curve_data(records)
    # the fixture's plain run records only steps and images: no curve, and it is named
    assert missing == [next(r.run_id for r in records if r.label == "plain")]
    got = curves.pivot_table(index="quantity", columns="epoch", values="value")
    assert set(got.index) == {"lr", "ce_primary", "ce_aux_noise", "penalty", "loss", "train_acc"}
    assert got.loc["train_acc", 2] == 0.55 and got.loc["penalty", 2] == 0.2
    (aux.path / "metrics.csv").unlink()
    curves, missing = plotdata.training_curve_data(records)
    assert curves.empty and len(missing) == 2


def test_a_page_without_metrics_csv_says_so(tmp_path):
    from robustbench_aux.report import build_report

    write_fixture_runs(tmp_path / "runs", archs=("resnet18",), seeds=(0,), labels=("plain", "auxiliary"),
                       n=50, corruptions=CORRUPTIONS)  # fmt: skip
    for m in (tmp_path / "runs").glob("*/metrics.csv"):
        m.unlink()
    for c in (tmp_path / "runs").glob("*/config.json"):
        cfg = json.loads(c.read_text())
        c.write_text(json.dumps(cfg))
    html = build_report([tmp_path / "runs"], tmp_path / "out").read_text()
    assert 'id="no-training-curves">metrics.csv is not available for 2 of 2' in html
    assert 'id="facts"' in html and html.index('id="facts"') < html.index('id="claim"')
