"""The report's reading rules, one by one: banner triggers, per-seed tests vs pooled seeds, unstable
ratios, and one colour per method across figures. Runs are built in memory (no training, no files)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_runs import PAPER_SHARED, build_fixture_report

from robustbench_aux.metrics import mcnemar
from robustbench_aux.report.banner import banner_items, deviations, reference_epochs
from robustbench_aux.report.numbers import ratio_cell, set_name
from robustbench_aux.report.runs import RunRecord
from robustbench_aux.report.tables import significance_table
from robustbench_aux.runinfo import run_info


def _record(label="plain", arch="resnet18", seed=0, config=None, summary=None, per_image=None) -> RunRecord:
    table = pd.DataFrame([{"run_id": f"{label}-{arch}-s{seed}", "label": label, "arch": arch, "seed": seed}])
    config = {"recipe": "reference", "train": {"epochs": 210}} if config is None else config
    return RunRecord(Path("."), config, summary or {}, table, _per_image=per_image)


def _paper_runs(**kw) -> list[RunRecord]:
    return [_record(lab, seed=s, **kw) for lab in ("plain", "auxiliary") for s in (0, 1)]


def _keys(records, **shared) -> list[str]:
    return [i.key for i in banner_items(records, replace(PAPER_SHARED, **shared))]


# ----------------------------------------------------------------------------- banner
def test_banner_is_empty_in_the_papers_setting():
    assert _keys(_paper_runs()) == []


def test_banner_triggers_one_by_one():
    runs = _paper_runs()
    assert _keys(runs, corruption_provenance="generated") == ["generated"]
    assert _keys(runs, images_per_block=9_999) == ["small_blocks"]
    assert _keys(runs, dataset="cifar10") == ["dataset"]
    assert _keys([r for r in runs if r.seed == 0]) == ["one_seed"]
    (item,) = banner_items(runs[:3], PAPER_SHARED)  # plain has 2 seeds, auxiliary only 1
    assert item.key == "one_seed" and item.text.startswith("Only one seed for auxiliary (resnet18)")
    assert _keys(_paper_runs(arch="resnet8")) == ["arch"]
    assert _keys(_paper_runs(arch="wrn40_2")) == ["arch"]
    short = _paper_runs(config={"recipe": "smoke", "train": {"epochs": 3}})
    (item,) = banner_items(short, PAPER_SHARED)
    assert item.key == "epochs" and "3 epochs, not the reference schedule's 210: all 4 runs" in item.text


def _resolved(recipe: str, **kw) -> dict:
    from robustbench_aux.config import resolve_config
    from robustbench_aux.methods import METHODS

    return resolve_config(
        methods=METHODS, method="plain", arch="resnet18", dataset="cifar100", seed=0, recipe=recipe, **kw
    ).to_dict()


def test_training_records_the_reference_schedule_of_the_recipe_chain():
    assert _resolved("smoke")["reference_epochs"] == 210  # smoke extends reference
    assert _resolved("cpu_demo")["reference_epochs"] == 210
    assert _resolved("paper")["reference_epochs"] == 210  # 300 epochs > 210: not short
    assert _resolved("augmix_published")["reference_epochs"] == 100  # extends nothing: its own
    assert _resolved("reference", epochs=8)["reference_epochs"] == 210
    assert _keys(_paper_runs(config={"recipe": "paper", "train": {"epochs": 300}})) == []
    assert _keys(_paper_runs(config={"epochs": 5})) == ["epochs"]  # a flat config (foreign run)


def test_report_reads_the_recorded_reference_schedule_never_todays_recipe(tmp_path):
    root, child = tmp_path / "root.toml", tmp_path / "child.toml"
    root.write_text("[train]\nepochs = 50\n")
    child.write_text('extends = "root.toml"\n[train]\nepochs = 5\n')
    config = _resolved(str(child))
    assert config["reference_epochs"] == 50
    runs = [_record(lab, seed=s, config=config) for lab in ("plain", "auxiliary") for s in (0, 1)]
    before = [i.text for i in banner_items(runs, PAPER_SHARED) if i.key == "epochs"]
    assert before == ["Trained 5 epochs, not the reference schedule's 50: all 4 runs."]
    root.write_text("[train]\nepochs = 400\n")  # the recipe is edited after the runs
    assert [i.text for i in banner_items(runs, PAPER_SHARED) if i.key == "epochs"] == before
    info = _record(config=config).info
    assert reference_epochs(info) == 50


def test_older_records_fall_back_to_the_scaled_length_then_the_shipped_chain():
    assert reference_epochs(run_info({"recipe": "smoke", "schedule_scaling": {"from_epochs": 120}})) == 120
    assert reference_epochs(run_info({"recipe": "smoke"})) == 210  # recorded before either existed
    assert reference_epochs(run_info({"recipe": "augmix_published"})) == 100
    assert reference_epochs(run_info({"recipe": "no-such-recipe"})) == 210


def test_banner_lists_every_protocol_deviation():
    amp = {"switch": "train.amp", "value": "bf16", "reference": "fp32"}
    noise = {"switch": "method.noise_impl", "value": "clipped", "reference": "wraparound"}
    runs = [
        _record(
            "plain", seed=0, config={"recipe": "reference", "train": {"epochs": 210}, "deviations": [amp]}
        ),
        _record("plain", seed=1, summary={"provenance": {"deviations": [noise, amp]}}),
        _record("auxiliary", seed=0),  # older run: no "deviations" key at all means none
        _record("auxiliary", seed=1, config={"deviations": []}),
    ]
    assert deviations(runs[2]) == [] and deviations(runs[3]) == []
    assert [d["switch"] for d in deviations(runs[1])] == ["method.noise_impl", "train.amp"]
    items = [i for i in banner_items(runs, PAPER_SHARED) if i.key == "deviation"]
    texts = [i.text for i in items]
    assert len(items) == 2
    assert any("train.amp = bf16 (reference: fp32) in 2 of 4 runs" in t for t in texts)
    assert any("method.noise_impl = clipped (reference: wraparound) in 1 of 4 runs" in t for t in texts)


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory):
    return build_fixture_report(tmp_path_factory)


def test_banner_is_at_the_top_of_the_page(fixture_report):
    html = fixture_report["index"].read_text()
    banner = html.index('id="banner"')
    assert banner < html.index('<section id="claim">')
    keys = re.findall(r'<li data-key="(\w+)"', html[banner : html.index("</div>", banner)])
    # fixture: generated, 100 images per block and clean test images, its own data copy, 2 seeds,
    # enlarged-dataset baselines with 5x / 2x the steps of plain
    assert keys == ["generated", "small_blocks", "test_images", "data_copy", "steps"]
    assert "protocol deviations</dt><dd>none recorded" in html


# ----------------------------------------------------------------------------- statistics per seed
def _clean(b: int, c: int, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Method/plain correctness on n test images: b images only the method gets right, c only plain."""
    m = np.array([True] * b + [False] * c + [True] * (n - b - c))
    p = np.array([False] * b + [True] * c + [True] * (n - b - c))
    return m, p


def test_mcnemar_is_per_seed_not_on_pooled_seeds():
    (m0, p0), (m1, p1) = _clean(8, 2), _clean(9, 2)
    records = [
        _record("auxiliary", seed=0, per_image={("clean", 0): m0}),
        _record("plain", seed=0, per_image={("clean", 0): p0}),
        _record("auxiliary", seed=1, per_image={("clean", 0): m1}),
        _record("plain", seed=1, per_image={("clean", 0): p1}),
    ]
    sig = significance_table(records).set_index("seed")
    # exact two-sided binomial: 8 of 10 -> 0.109; 9 of 11 -> 0.065; neither is a difference
    assert sig.loc["0", "clean_p_mcnemar"] == pytest.approx(2 * (45 + 10 + 1) / 2**10)
    assert sig.loc["1", "clean_p_mcnemar"] == pytest.approx(2 * (55 + 11 + 1) / 2**11)
    # pooled as if the seeds were 200 more images, 17 of 21 would look significant (p = 0.007)
    pooled = mcnemar(np.concatenate([m0, m1]), np.concatenate([p0, p1]))["p_value"]
    assert pooled < 0.01
    assert not sig.loc[["0", "1"], "clean_significant"].any()
    # over seeds: a t-test of the two per-seed differences (6 and 7 points)
    assert sig.loc["over seeds", "delta_clean_pts"] == pytest.approx(6.5)
    assert sig.loc["over seeds", "clean_test"] == "t over 2 seeds"
    # t = 6.5 / (0.707 / sqrt 2) = 13 with 1 degree of freedom: p = 1 - 2 atan(13) / pi
    assert sig.loc["over seeds", "clean_p"] == pytest.approx(1 - 2 * np.arctan(13) / np.pi)
    # the per-seed tests and the seed-level test are separate Holm families: the two McNemar tests
    # (0.065 x 2, 0.109) form one, the t-test over seeds (0.049, the only seed-level test here) another
    # Holm over the two McNemar tests: 0.065 x 2 = 0.131, and 0.109 x 1 raised to it (monotone)
    assert sig.loc["1", "clean_p_holm"] == pytest.approx(2 * sig.loc["1", "clean_p"])
    assert sig.loc["0", "clean_p_holm"] == pytest.approx(2 * sig.loc["1", "clean_p"])
    assert sig.loc["over seeds", "clean_p_holm"] == pytest.approx(sig.loc["over seeds", "clean_p"])
    assert bool(sig.loc["over seeds", "clean_significant"])
    assert list(sig["family_size"]) == [2, 2, 1]
    assert sig.loc["0", "family"].startswith("per seed: auxiliary vs plain")
    assert sig.loc["over seeds", "family"].startswith("over seeds: auxiliary vs plain")


def test_one_seed_has_no_test_over_seeds():
    m0, p0 = _clean(30, 2)
    records = [
        _record("auxiliary", seed=0, per_image={("clean", 0): m0}),
        _record("plain", seed=0, per_image={("clean", 0): p0}),
    ]
    sig = significance_table(records)
    assert list(sig["seed"]) == ["0"]
    assert bool(sig.loc[0, "clean_significant"])  # 30 vs 2 survives a family of one


# ----------------------------------------------------------------------------- ratios and counts
def test_ratio_cells_show_counts_and_unstable():
    assert ratio_cell(0.95, None, 15, "")[0] == "95.00"
    text, cls, title = ratio_cell(0.95, None, 13, "contrast;fog")
    assert text == "95.00 (13 of 15)" and cls == "partial" and "contrast, fog" in title
    assert ratio_cell(float("nan"), None, 0, "contrast")[0] == "unstable"
    assert ratio_cell(float("nan"), None, 0, "")[0] == "–"
    assert set_name(3, 15) == "3 of 15" and set_name(15, 15) == "15"


def test_partial_corruption_set_is_named_with_its_count(tmp_path):
    from fixtures_runs import write_fixture_run

    from robustbench_aux.report import build_report

    runs = [
        write_fixture_run(
            tmp_path, lab, "resnet18", 0, n=20, corruptions=("gaussian_noise", "fog", "contrast")
        )
        for lab in ("plain", "auxiliary")
    ]
    html = build_report(runs, tmp_path / "r").read_text()
    assert "mean acc. 3 of 15 (%)" in html and "mean acc. 15 (%)" not in html
    assert "absolute, 3 of 15 corruptions" in html
    assert "mean corruption accuracy, 3 of 15 corruptions (%)" in html  # the trade-off axis too
    assert "mean over 3 of 15 corruptions" in html  # and the severity curves
    claim = pd.read_csv(tmp_path / "r" / "claim.csv")
    assert claim.loc[0, "n_corruptions_15"] == 3


# ----------------------------------------------------------------------------- figures
def _legend_colours(html: str) -> dict[tuple[str, str], str]:
    """(figure, method slug) -> the first colour drawn inside the legend entry's SVG group."""
    out = {}
    for m in re.finditer(r'<g id="legend-(\w+)-([\w-]+)">(.*?)</g>', html, re.S):
        colour = re.search(r"(?:fill|stroke): (#[0-9a-f]{6})", m.group(3))
        # matplotlib leaves out a black fill: SVG's default fill is black
        out[(m.group(1), m.group(2))] = colour.group(1) if colour else "#000000"
    return out


def test_a_method_keeps_its_colour_across_figures(fixture_report):
    colours = _legend_colours(fixture_report["index"].read_text())
    figures = {f for f, _ in colours}
    # the per-corruption change plot draws each method twice: each seed (hollow) and the mean
    assert figures == {"tradeoff", "severity", "bars", "change_each_seed", "change_mean_95_interval"}
    by_method: dict[str, set] = {}
    for (_, method), c in colours.items():
        by_method.setdefault(method, set()).add(c)
    assert all(len(c) == 1 for c in by_method.values()), by_method
    assert len({next(iter(c)) for c in by_method.values()}) == len(by_method)  # and methods differ
    assert by_method["plain"] == {"#000000"}


# ----------------------------------------------------------------------------- heat-map colouring
def test_interference_cells_coloured_only_when_tested(fixture_report):
    out = fixture_report["out"]
    p = pd.read_csv(out / "interference_p_holm_resnet18.csv", index_col="label")
    delta = pd.read_csv(out / "interference_resnet18.csv", index_col="label")
    assert p.loc["plain"].isna().all()  # the reference row is not tested against itself
    assert p.loc["per_corruption[noise]", "gaussian_noise"] <= 0.05  # +17 points in both seeds
    assert (
        p.loc["per_corruption[noise]", "contrast"] <= 0.05
        and delta.loc["per_corruption[noise]", "contrast"] < 0
    )
    assert p.loc["per_corruption[rotation]", "clean_acc"] > 0.05  # -1 point on 100 images: noise


def _heatmap_colours(svg: str) -> set:
    """The distinct colours of the raster image a heat map embeds in its SVG."""
    import base64
    import io

    from PIL import Image

    data = re.search(r'xlink:href="data:image/png;base64,([^"]+)"', svg).group(1)
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return {tuple(c) for c in img.reshape(-1, 3)}


def test_heatmap_colours_the_change_and_outlines_significance():
    from robustbench_aux.report.figures import interference

    # a large loss that is not significant and a small one that is: the colour follows the size
    mat = pd.DataFrame([[-3.9, -2.2, 1.0]], index=["auxiliary"], columns=["clean", "fog", "snow"])
    plain_svg = interference(mat, "resnet18")
    sig = pd.DataFrame([[False, True, False]], index=mat.index, columns=mat.columns)
    marked_svg = interference(mat, "resnet18", sig)
    # significance never changes a colour: the same cells, the same colours
    assert _heatmap_colours(plain_svg) == _heatmap_colours(marked_svg)
    assert len(_heatmap_colours(marked_svg)) >= 3
    # the significant cell is outlined, the others are not
    assert plain_svg.count('id="sig-cell') == 0 and marked_svg.count('id="sig-cell') == 1
    import base64
    import io

    from PIL import Image

    data = re.search(r'xlink:href="data:image/png;base64,([^"]+)"', marked_svg).group(1)
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")).astype(int)
    row = img[img.shape[0] // 2]
    third = img.shape[1] // 3
    big, small = row[third // 2], row[third + third // 2]
    # -3.9 is a deeper red than -2.2 (further from white), whatever their tests say
    assert (255 * 3 - big.sum()) > (255 * 3 - small.sum())


def test_interference_cell_needs_every_seed_to_agree():
    from robustbench_aux.report.tables import interference_significance

    rng = np.random.default_rng(0)
    base = rng.random(400) < 0.5

    def blocks(shift_up: bool):
        # the method gets 60 more images right (seed 0) or 60 fewer (seed 1) on fog at severity 1
        changed = base.copy()
        idx = np.flatnonzero(~base if shift_up else base)[:60]
        changed[idx] = shift_up
        return {("clean", 0): base, ("fog", 1): changed}

    plain = {("clean", 0): base, ("fog", 1): base}
    records = [
        _record("plain", seed=0, per_image=plain),
        _record("plain", seed=1, per_image=plain),
        _record("auxiliary", seed=0, per_image=blocks(True)),
        _record("auxiliary", seed=1, per_image=blocks(False)),
    ]
    mat = pd.DataFrame(0.0, index=["plain", "auxiliary"], columns=["clean_acc", "fog"])
    p = interference_significance(records, mat, "resnet18")
    assert p.loc["auxiliary", "fog"] == 1.0  # each seed alone is far beyond noise, but they disagree
    agree = records[:3] + [_record("auxiliary", seed=1, per_image=blocks(True))]
    p = interference_significance(agree, mat, "resnet18")
    assert p.loc["auxiliary", "fog"] < 1e-6
    assert np.isnan(p.loc["auxiliary", "clean_acc"]) or p.loc["auxiliary", "clean_acc"] == 1.0


# ----------------------------------------------------------------------------- ablations
def _aux_config(variant=None) -> dict:
    config = {"recipe": "reference", "train": {"epochs": 210}, "method": "auxiliary"}
    return {**config, "options": {"variant": variant}} if variant else config


def test_ablation_variant_is_tested_against_its_base_method_per_seed():
    from robustbench_aux.report.tables import ablation_pairs, ablation_table

    # per seed: the variant is right on b images the base method misses, the base on c the variant misses
    (v0, a0), (v1, a1) = _clean(2, 12), _clean(3, 14)
    plain = np.zeros(100, bool)
    records = [
        _record("auxiliary", seed=0, config=_aux_config(), per_image={("clean", 0): a0}),
        _record("auxiliary", seed=1, config=_aux_config(), per_image={("clean", 0): a1}),
        _record(
            "auxiliary[no_penalty]", seed=0, config=_aux_config("no_penalty"), per_image={("clean", 0): v0}
        ),
        _record(
            "auxiliary[no_penalty]", seed=1, config=_aux_config("no_penalty"), per_image={("clean", 0): v1}
        ),
        _record("plain", seed=0, per_image={("clean", 0): plain}),
        _record("plain", seed=1, per_image={("clean", 0): plain}),
    ]
    assert ablation_pairs(records) == [("auxiliary[no_penalty]", "auxiliary")]
    table = ablation_table(records).set_index("seed")
    assert set(table["label"]) == {"auxiliary[no_penalty]"} and set(table["reference"]) == {"auxiliary"}
    assert (table.loc["0", "clean_b"], table.loc["0", "clean_c"]) == (2, 12)
    assert table.loc["1", "delta_clean_pts"] == pytest.approx(-11.0)
    assert table.loc["0", "clean_p_mcnemar"] == pytest.approx(mcnemar(v0, a0)["p_value"])
    assert table.loc["over seeds", "delta_clean_pts"] == pytest.approx(-10.5)
    assert table.loc["0", "family"].startswith("per seed: auxiliary[no_penalty] vs auxiliary")
    assert table.loc["over seeds", "family"].startswith("over seeds: auxiliary[no_penalty] vs auxiliary")
    # the comparison with plain is untouched by the ablation: no reference column, plain's counts
    sig = significance_table(records)
    assert "reference" not in sig.columns
    row = sig[(sig["label"] == "auxiliary[no_penalty]") & (sig["seed"] == "0")].iloc[0]
    assert row["clean_b"] == int(v0.sum()) and row["clean_c"] == 0


def test_only_variant_switches_are_ablations():
    from robustbench_aux.report.tables import ablation_pairs

    augmix_published = {"method": "augmix", "recipe": "augmix_published"}
    joint = {"method": "naive_augmentation", "options": {"data_reading": "joint_batch"}}
    records = [
        _record("augmix", config={"method": "augmix"}),
        _record("augmix[published protocol]", config=augmix_published),
        _record("naive_augmentation", config={"method": "naive_augmentation"}),
        _record("naive_augmentation[joint_batch]", config=joint),
        _record("auxiliary[no_sbn]", config=_aux_config("no_sbn")),  # its base was not run
    ]
    assert ablation_pairs(records) == []
