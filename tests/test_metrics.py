"""Metrics on hand-computed fixtures: every number below was worked out by hand from the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustbench_aux import metrics as M
from robustbench_aux.errors import UserError
from robustbench_aux.metrics.tidy import block_rows, run_identity

# two runs, n = 10 images per block, gaussian_noise and contrast at severities 1 and 2
P_COUNTS = [
    ("clean", 0, 10, 8),
    ("gaussian_noise", 1, 10, 6),
    ("gaussian_noise", 2, 10, 4),
    ("contrast", 1, 10, 7),
    ("contrast", 2, 10, 5),
]
M_COUNTS = [
    ("clean", 0, 10, 9),
    ("gaussian_noise", 1, 10, 8),
    ("gaussian_noise", 2, 10, 6),
    ("contrast", 1, 10, 7),
    ("contrast", 2, 10, 6),
]


def _run(counts, method, seed=0, arch="resnet18", **cfg):
    config = {
        "run_id": f"{method}-{arch}-{seed}-{cfg.get('corruption', '')}",
        "method": method,
        "arch": arch,
        "seed": seed,
        "dataset": "cifar100",
        **cfg,
    }
    return block_rows(run_identity(config), counts)


@pytest.fixture()
def pm():
    p = _run(P_COUNTS, "plain")
    m = _run(M_COUNTS, "per_corruption", corruption="noise")
    return p, m, pd.concat([p, m], ignore_index=True)


def test_method_labels():
    assert M.method_label({"method": "plain"}) == "plain"
    assert M.method_label({"method": "per_corruption", "corruption": "noise"}) == "per_corruption[noise]"
    assert M.method_label({"method": "auxiliary", "variant": "no_sbn"}) == "auxiliary[no_sbn]"
    assert M.method_label({"method": "auxiliary", "variant": "full"}) == "auxiliary"
    # the training engine writes method options under "options"
    assert (
        M.method_label({"method": "per_corruption", "options": {"corruption": "blur"}})
        == "per_corruption[blur]"
    )
    assert M.method_label({"method": "auxiliary", "options": {"variant": "no_isd"}}) == "auxiliary[no_isd]"
    assert M.method_label({"method": "auxiliary", "corruption": "noise"}) == "auxiliary"


def test_per_run_accuracies(pm):
    p, m, both = pm
    assert M.clean_accuracy(both).to_dict() == {p.run_id[0]: 0.8, m.run_id[0]: 0.9}
    acc = M.corruption_accuracy(both)
    assert list(acc.columns) == ["gaussian_noise", "contrast"]  # catalog order
    assert acc.loc[p.run_id[0]].tolist() == pytest.approx([0.5, 0.6])
    assert acc.loc[m.run_id[0]].tolist() == pytest.approx([0.7, 0.65])
    assert M.mean_accuracy(both).to_dict() == pytest.approx({p.run_id[0]: 0.55, m.run_id[0]: 0.675})
    assert M.coverage(both).tolist() == [2, 2]
    assert M.mce(both)[p.run_id[0]] == pytest.approx(0.45)
    sev = M.severity_curve(p)
    assert sev.loc[p.run_id[0]].tolist() == pytest.approx([0.65, 0.45])
    cat = M.category_accuracy(p)
    assert cat.loc[p.run_id[0], "noise"] == pytest.approx(0.5)
    assert cat.loc[p.run_id[0], "digital"] == pytest.approx(0.6)
    assert "weather" not in cat.columns  # no weather corruption present: no made-up number


def test_15_and_19_means_differ_on_extra_corruptions():
    counts = [("clean", 0, 4, 4), ("gaussian_noise", 1, 4, 2), ("speckle_noise", 1, 4, 4)]
    t = _run(counts, "plain")
    s = M.run_summary(t)
    assert s["mean_acc_15"] == pytest.approx(0.5)  # speckle is one of the 4 extra corruptions
    assert s["mean_acc_19"] == pytest.approx(0.75)
    assert (s["n_corruptions_15"], s["n_corruptions_19"]) == (1, 2)
    assert s["by_category"] == {"noise": 0.5, "extra": 1.0}


def test_normalized_and_relative_ce(pm):
    p, m, _ = pm
    nce = M.normalized_ce(m, p)
    assert nce["gaussian_noise"] == pytest.approx(0.6)  # (0.2 + 0.4) / (0.4 + 0.6)
    assert nce["contrast"] == pytest.approx(0.875)  # (0.3 + 0.4) / (0.3 + 0.5)
    assert M.normalized_mce(m, p) == pytest.approx(0.7375)
    rce = M.relative_ce(m, p)
    assert rce["gaussian_noise"] == pytest.approx(0.4 / 0.6)
    assert rce["contrast"] == pytest.approx(0.5 / 0.4)
    assert M.relative_mce(m, p) == pytest.approx((0.4 / 0.6 + 1.25) / 2)
    assert M.normalized_mce(p, p) == pytest.approx(1.0)


def test_headline_both_readings():
    p = _run(P_COUNTS, "plain")
    a = _run(M_COUNTS, "auxiliary")
    h = M.headline(pd.concat([p, a]))
    row = h.iloc[0]
    assert row["delta_clean_pts"] == pytest.approx(10.0)
    assert row["robust_abs_pts_15"] == pytest.approx(12.5)  # mCE 45 % -> 32.5 %
    assert row["robust_rel_pct_15"] == pytest.approx(12.5 / 45 * 100)
    # no extra corruption evaluated: the 19-set readings equal the 15-set ones, each with its count
    assert row["robust_abs_pts_19"] == pytest.approx(12.5)
    assert (row["n_corruptions_15"], row["n_corruptions_19"]) == (2, 2)
    assert row["n_seeds"] == 1 and bool(row["paired"])


def test_headline_seeds_and_architectures():
    runs = []
    for arch, extra in (("resnet18", 0), ("resnet50", 1)):
        for seed in (0, 1):
            runs.append(_run(P_COUNTS, "plain", seed=seed, arch=arch))
            bump = [(c, s, n, k + (1 if c == "clean" and (seed + extra) else 0)) for c, s, n, k in M_COUNTS]
            runs.append(_run(bump, "auxiliary", seed=seed, arch=arch))
    h = M.headline(pd.concat(runs)).set_index("arch")
    assert h.loc["resnet18", "delta_clean_pts"] == pytest.approx(15.0)  # seeds: +10 and +20
    assert h.loc["resnet18", "delta_clean_pts_std"] == pytest.approx(np.std([10, 20], ddof=1))
    assert h.loc["resnet50", "delta_clean_pts"] == pytest.approx(20.0)
    assert h.loc["mean over architectures", "delta_clean_pts"] == pytest.approx(17.5)
    assert h.loc["mean over architectures", "robust_abs_pts_15"] == pytest.approx(12.5)


def test_headline_without_plain_is_empty(pm):
    _, m, _ = pm
    assert M.headline(m, label="per_corruption[noise]").empty


def test_interference_matrix(pm):
    _, _, both = pm
    mat = M.interference_matrix(both)
    assert list(mat.index) == ["plain", "per_corruption[noise]"]
    row = mat.loc["per_corruption[noise]"]
    assert row["clean_acc"] == pytest.approx(10.0)
    assert row["gaussian_noise"] == pytest.approx(20.0)
    assert row["contrast"] == pytest.approx(5.0)
    assert row["noise"] == pytest.approx(20.0) and row["digital"] == pytest.approx(5.0)
    assert (mat.loc["plain"] == 0).all()
    sev = M.interference_matrix(both, by_severity=True)
    assert sev.loc[("per_corruption[noise]", 1), "gaussian_noise"] == pytest.approx(20.0)
    assert sev.loc[("per_corruption[noise]", 2), "contrast"] == pytest.approx(10.0)
    assert sev.loc[("per_corruption[noise]", 1), "contrast"] == pytest.approx(0.0)
    with pytest.raises(KeyError, match="plain"):
        M.interference_matrix(both[both["method"] != "plain"])


def test_interference_averages_seeds():
    p = _run(P_COUNTS, "plain")
    m0 = _run(M_COUNTS, "auxiliary", seed=0)
    m1 = _run([(c, s, n, k - 1) for c, s, n, k in M_COUNTS], "auxiliary", seed=1)
    mat = M.interference_matrix(pd.concat([p, m0, m1]))
    assert mat.loc["auxiliary", "clean_acc"] == pytest.approx(5.0)  # mean(0.9, 0.8) - 0.8


def test_seen_and_unseen_families(pm):
    p, m, both = pm
    assert M.seen_corruptions(["noise"]) == ("gaussian_noise", "shot_noise", "speckle_noise")
    assert M.seen_corruptions(["rotation"]) == ()
    assert M.seen_corruptions(["cifar_c:fog@3", "blur"]) == ("defocus_blur", "fog", "gaussian_blur")
    assert "impulse_noise" not in M.SEEN_FAMILIES["noise"]
    assert M.training_corruptions({"method": "per_corruption", "corruption": "blur"}) == ("blur",)
    assert M.training_corruptions({"method": "auxiliary"}) == ("noise", "blur", "contrast", "rotation")
    assert M.training_corruptions({"method": "plain"}) == ()
    fam = M.family_accuracy(both, {m.run_id[0]: ("noise",)})
    assert fam.loc[m.run_id[0], "seen_acc"] == pytest.approx(0.7)
    assert fam.loc[m.run_id[0], "unseen_acc"] == pytest.approx(0.65)
    assert np.isnan(fam.loc[p.run_id[0], "seen_acc"]) and fam.loc[p.run_id[0], "n_unseen"] == 2


def test_aggregate_seeds():
    runs = pd.DataFrame({"label": ["a", "a", "b"], "arch": ["r", "r", "r"], "clean_acc": [0.5, 0.7, 0.4]})
    agg = M.aggregate_seeds(runs, ["clean_acc"]).set_index("label")
    assert agg.loc["a", "clean_acc_mean"] == pytest.approx(0.6)
    assert agg.loc["a", "clean_acc_std"] == pytest.approx(np.sqrt(0.02))
    assert agg.loc["a", "n_seeds"] == 2
    assert np.isnan(agg.loc["b", "clean_acc_std"]) and agg.loc["b", "n_seeds"] == 1


def test_bootstrap_interval():
    assert M.bootstrap_ci(np.ones(50)) == (1.0, 1.0, 1.0)
    scores = np.arange(400) % 2  # accuracy 0.5 over 400 images
    mean, lo, hi = M.bootstrap_ci(scores, seed=1)
    assert mean == 0.5 and lo < 0.5 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 400), rel=0.15)  # normal approximation


def test_per_image_score_matches_block_mean():
    blocks = [np.array([1, 0, 1, 1], bool), np.array([0, 0, 1, 1], bool)]
    r = M.per_image_score(blocks)
    assert r.tolist() == [0.5, 0.0, 1.0, 1.0]
    assert r.mean() == pytest.approx(np.mean([b.mean() for b in blocks]))


def test_paired_tests():
    a = np.array([1, 1, 1, 0, 1, 0], bool)
    b = np.array([0, 0, 0, 0, 1, 0], bool)
    mc = M.mcnemar(a, b)
    assert (mc["b"], mc["c"]) == (3, 0)
    assert mc["p_value"] == pytest.approx(0.25)  # 2 * 0.5**3
    same = M.paired_bootstrap(a.astype(float), a.astype(float))
    assert same["delta"] == 0 and same["p_value"] == 1.0
    rng = np.random.default_rng(0)
    base = rng.random(2000) < 0.6
    better = base | (rng.random(2000) < 0.3)
    res = M.paired_bootstrap(better.astype(float), base.astype(float))
    assert res["delta"] > 0.05 and res["low"] > 0 and res["p_value"] < 0.01
    with pytest.raises(ValueError):
        M.paired_bootstrap(np.ones(3), np.ones(4))


def test_check_table_rejects_percent(pm):
    _, _, both = pm
    bad = both.assign(acc=both["acc"] * 100)
    with pytest.raises(UserError, match="fractions"):
        M.check_table(bad)


def test_headline_four_readings_over_15_and_19():
    # plain: clean 0.8; gaussian_noise (benchmark) acc 0.5; speckle_noise (extra) acc 0.4
    # auxiliary: clean 0.8; gaussian_noise 0.6; speckle_noise 0.7
    p = _run([("clean", 0, 10, 8), ("gaussian_noise", 1, 10, 5), ("speckle_noise", 1, 10, 4)], "plain")
    a = _run([("clean", 0, 10, 8), ("gaussian_noise", 1, 10, 6), ("speckle_noise", 1, 10, 7)], "auxiliary")
    row = M.headline(pd.concat([p, a])).iloc[0]
    assert row["robust_abs_pts_15"] == pytest.approx(10.0)  # mCE_15: 50 % -> 40 %
    assert row["robust_rel_pct_15"] == pytest.approx(20.0)  # 10 / 50
    assert row["robust_abs_pts_19"] == pytest.approx(20.0)  # mCE_19: 55 % -> 35 %
    assert row["robust_rel_pct_19"] == pytest.approx(20 / 55 * 100)
    assert (row["n_corruptions_15"], row["n_corruptions_19"]) == (1, 2)


def _readings(a15, r15, a19, r19):
    return {
        "robust_abs_pts_15": a15,
        "robust_rel_pct_15": r15,
        "robust_abs_pts_19": a19,
        "robust_rel_pct_19": r19,
    }


def test_matching_reading_rule():
    # relative clearly nearest (21 vs 21.64), the 19-set relative far: named with its set
    assert M.matching_reading(_readings(6.0, 21.0, 6.5, 30.0)) == "relative %, 15 corruptions"
    # absolute nearest over both sets alike
    assert (
        M.matching_reading(_readings(21.0, 60.0, 22.0, 62.0))
        == "absolute points (15 and 19 corruptions alike)"
    )
    # the opposite sign: a loss never "matches", however near its absolute value
    assert M.matching_reading(_readings(-3.0, -8.0, -2.0, -6.0)).startswith("neither")
    assert "opposite sign" in M.matching_reading(_readings(-3.0, -8.0, -2.0, -6.0))
    # nearest, but not clearly (14.4 vs 9.8 from 21.64): neither
    assert M.matching_reading(_readings(7.2, 11.9, 7.8, 13.0)).startswith("neither")
    # a sign-correct reading that is still the nearest one only by a little: neither
    assert M.matching_reading(_readings(15.0, 28.0, 15.0, 28.0)).startswith("neither")
    assert M.matching_reading({}).startswith("neither")


def test_unstable_ratio_is_counted_not_dropped():
    # plain barely degrades on contrast (clean 0.8, contrast 0.8 / 0.79): relative CE would divide by 0.01
    p = _run(
        [
            ("clean", 0, 100, 80),
            ("gaussian_noise", 1, 100, 60),
            ("gaussian_noise", 2, 100, 40),
            ("contrast", 1, 100, 80),
            ("contrast", 2, 100, 79),
        ],
        "plain",
    )
    m = _run(
        [
            ("clean", 0, 100, 85),
            ("gaussian_noise", 1, 100, 70),
            ("gaussian_noise", 2, 100, 55),
            ("contrast", 1, 100, 70),
            ("contrast", 2, 100, 60),
        ],
        "auxiliary",
    )
    per = M.ratio_ce(m, p, "relative")
    assert per.loc["contrast", "ratio"] == pytest.approx(0.40 / 0.01)  # 4000 %: nonsense, so ...
    assert bool(per.loc["contrast", "unstable"]) and not bool(per.loc["gaussian_noise", "unstable"])
    r = M.ratio_mce(m, p, "relative")
    assert r["value"] == pytest.approx(0.45 / 0.60)  # ... the mean is over gaussian_noise only
    assert (r["n_used"], r["n_unstable"], r["unstable"]) == (1, 1, ["contrast"])
    assert r["n_missing"] == 13 and r["n_set"] == 15  # 13 of the 15 were not evaluated at all
    assert M.relative_mce(m, p) == pytest.approx(r["value"])
    # the normalized ratio divides by plain's error (20 %), which is stable
    n = M.ratio_mce(m, p, "normalized")
    assert (n["n_used"], n["n_unstable"]) == (2, 0)
    # nothing stable left: NaN with the count, never a number
    only = M.ratio_mce(m, p, "relative", corruptions=("contrast",))
    assert np.isnan(only["value"]) and only["n_unstable"] == 1 and only["n_used"] == 0


def test_partial_summary_is_flagged():
    t = _run([("clean", 0, 4, 4), ("gaussian_noise", 1, 4, 2), ("contrast", 1, 4, 3)], "plain")
    s = M.run_summary(t)
    assert s["partial_15"] and s["partial_19"] and s["n_corruptions_15"] == 2


def test_holm():
    p = [0.01, 0.04, 0.03, float("nan"), 0.005]
    adj = M.holm(p)
    # sorted: 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> made monotone: 0.02, 0.03, 0.06, 0.06
    assert adj[[4, 0, 2, 1]].tolist() == pytest.approx([0.02, 0.03, 0.06, 0.06])
    assert np.isnan(adj[3])
    assert M.holm([0.9, 0.8]).tolist() == [1.0, 1.0]  # 0.8 x 2 capped at 1; 0.9 made monotone
    assert M.holm([]).size == 0


def test_seed_test():
    t = M.seed_test([1.0, 2.0, 3.0])
    assert t["delta"] == pytest.approx(2.0) and t["n"] == 3
    assert t["p_value"] == pytest.approx(0.0742, abs=1e-3)  # t = 2 / (1 / sqrt 3) = 3.46, df 2
    assert np.isnan(M.seed_test([1.0])["p_value"])  # one seed: no test over seeds
