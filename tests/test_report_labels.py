"""Method labels the report tells apart: the two "w/o SBN" ablations, the two readings of naive /
per-corruption augmentation, and AugMix on the shared schedule vs AugMix on its published protocol
(never set beside AugMix's published numbers unless it ran that protocol)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from fixtures_runs import build_fixture_report, write_fixture_run

from robustbench_aux.metrics import method_label
from robustbench_aux.report import build_report
from robustbench_aux.report.figures import method_styles
from robustbench_aux.report.runs import load_run
from robustbench_aux.report.tables import PUBLISHED_AUGMIX, training_protocol
from robustbench_aux.runinfo import run_info

PUBLISHED_CLEAN = f"{100 * PUBLISHED_AUGMIX[('cifar100', 'wrn40_2')]['clean_acc']:.2f}"  # "76.28"


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory):
    return build_fixture_report(tmp_path_factory)


@pytest.mark.parametrize(
    ("config", "label"),
    [
        ({"method": "auxiliary", "options": {"variant": "no_sbn"}}, "auxiliary[no_sbn]"),
        ({"method": "auxiliary", "options": {"variant": "no_sbn_per_view"}}, "auxiliary[no_sbn_per_view]"),
        (
            {"method": "naive_augmentation", "options": {"data_reading": "enlarged_dataset"}},
            "naive_augmentation",
        ),
        (
            {"method": "naive_augmentation", "options": {"data_reading": "joint_batch"}},
            "naive_augmentation[joint_batch]",
        ),
        ({"method": "naive_augmentation"}, "naive_augmentation"),  # not recorded: shown as such in the table
        (
            {"method": "per_corruption", "options": {"corruption": "blur", "data_reading": "joint_batch"}},
            "per_corruption[blur,joint_batch]",
        ),
        (
            {"method": "augmix", "recipe": "reference", "recipe_source": "auxiliary_training_reference"},
            "augmix",
        ),
        (
            {"method": "augmix", "recipe": "augmix_published", "recipe_source": "augmix_published"},
            "augmix[published protocol]",
        ),
        # a user recipe that extends augmix_published keeps its source; the source decides, not the name
        (
            {"method": "augmix", "recipe": "my.toml", "recipe_source": "augmix_published"},
            "augmix[published protocol]",
        ),
        (
            {"method": "augmix", "recipe": "augmix_published"},
            "augmix[published protocol]",
        ),  # source not recorded
        (
            {
                "method": "augmix",
                "recipe": "augmix_published",
                "recipe_source": "auxiliary_training_reference",
            },
            "augmix",
        ),
        # data_reading is an option of the augmentation baselines only
        ({"method": "auxiliary", "options": {"data_reading": "joint_batch"}}, "auxiliary"),
    ],
)
def test_method_label_names_variant_reading_and_protocol(config, label):
    assert method_label(config) == label


def test_report_relabels_runs_evaluated_before_the_rule(tmp_path):
    run = write_fixture_run(tmp_path, "augmix[published protocol]", "resnet18", 0, n=20, corruptions=("fog",))
    table = pd.read_csv(run / "eval" / "results.csv")
    table.assign(label="augmix").to_csv(run / "eval" / "results.csv", index=False)  # an old label
    assert load_run(run).label == "augmix[published protocol]"


def test_styles_distinct_over_the_full_grid():
    # every label of baselines/grids/cifar100.toml and augmix_published.toml: its own colour and marker
    labels = ["plain", "naive_augmentation", "augmix", "augmix[published protocol]", "auxiliary"]
    labels += [f"per_corruption[{c}]" for c in ("blur", "noise", "contrast", "rotation")]
    labels += [
        f"auxiliary[{v}]" for v in ("no_isd", "no_sbn", "no_sbn_per_view", "no_penalty", "no_attention")
    ]
    labels += ["auxiliary[shared_head]"]
    styles = method_styles(labels)
    assert len({c for c, _ in styles.values()}) == len(labels)
    assert len({m for _, m in styles.values()}) == len(labels)
    # one more (the other data reading): the colour is still its own, the (colour, marker) pair too
    styles = method_styles(labels + ["naive_augmentation[joint_batch]"])
    assert len({c for c, _ in styles.values()}) == len(set(styles.values())) == len(labels) + 1


def _legend(html: str, figure: str, slug: str) -> tuple[str, str]:
    """(fill colour, marker definition id) of a method's legend entry in one figure."""
    m = re.search(rf'<g id="legend-{figure}-{re.escape(slug)}">(.{{0,800}})', html, re.S)
    assert m, f"no legend entry for {slug} in {figure}"
    return re.search(r"fill: ?(#[0-9a-fA-F]{6})", m.group(1)).group(1), re.search(
        r'xlink:href="#([^"]+)"', m.group(1)
    ).group(1)


def test_both_no_sbn_ablations_appear_with_their_own_name_colour_and_marker(fixture_report):
    methods = pd.read_csv(fixture_report["out"] / "methods.csv")
    assert {"auxiliary[no_sbn]", "auxiliary[no_sbn_per_view]"} <= set(methods["label"])
    html = fixture_report["index"].read_text()
    for figure in ("tradeoff", "severity"):
        a = _legend(html, figure, "auxiliary-no_sbn")
        b = _legend(html, figure, "auxiliary-no_sbn_per_view")
        assert a[0] != b[0] and a[1] != b[1]
    assert _legend(html, "tradeoff", "augmix")[0] != _legend(html, "tradeoff", "augmix-published-protocol")[0]


def test_data_reading_shown_in_methods_table_and_provenance(fixture_report):
    methods = pd.read_csv(fixture_report["out"] / "methods.csv").set_index(["label", "arch"])
    full_pass = "data reading: enlarged_dataset; every item each epoch (more steps than plain)"
    assert methods.loc[("naive_augmentation", "resnet18"), "training"].endswith(full_pass)
    assert methods.loc[("naive_augmentation[joint_batch]", "resnet18"), "training"].endswith(
        "data reading: joint_batch"
    )
    assert methods.loc[("per_corruption[noise]", "resnet50"), "training"].endswith(full_pass)
    assert "data reading" not in methods.loc[("auxiliary", "resnet18"), "training"]
    html = fixture_report["index"].read_text()
    prov = html[html.index('<section id="provenance">') :]
    # 2 archs x 2 seeds: 4 naive joint-batch runs; 4 naive + 16 per-corruption enlarged-dataset runs
    assert "enlarged_dataset [20 of 24 runs]; joint_batch [4 of 24 runs]" in prov
    assert (
        "data reading: joint_batch"
        in html[html.index('<section id="methods">') : html.index('<section id="tradeoff">')]
    )


def test_shared_and_published_augmix_are_told_apart_and_never_anchored(fixture_report):
    methods = pd.read_csv(fixture_report["out"] / "methods.csv").set_index(["label", "arch"])
    assert "shared schedule" in methods.loc[("augmix", "resnet18"), "training"]
    assert "published protocol" in methods.loc[("augmix[published protocol]", "resnet18"), "training"]
    html = fixture_report["index"].read_text()
    assert "augmix[published protocol]" in html
    # no wrn40_2 run of the published protocol: no published AugMix number anywhere on the page
    assert PUBLISHED_CLEAN not in html and 'id="published-anchor"' not in html
    assert not (fixture_report["out"] / "augmix_published_anchor.csv").exists()


def test_published_numbers_only_beside_published_protocol_runs(tmp_path):
    corr = ("gaussian_noise", "fog", "contrast")
    for label in ("plain", "augmix", "augmix[published protocol]"):
        for seed in (0, 1):
            write_fixture_run(tmp_path / "runs", label, "wrn40_2", seed, n=40, corruptions=corr)
    index = build_report([tmp_path / "runs"], tmp_path / "report")
    html = index.read_text()
    anchor = pd.read_csv(tmp_path / "report" / "augmix_published_anchor.csv")
    assert list(anchor["label"]) == ["augmix[published protocol]"]
    assert anchor["published_clean_acc"].iloc[0] == pytest.approx(0.7628)
    assert anchor["delta_clean_acc_pts"].iloc[0] == pytest.approx(
        100 * (anchor["clean_acc_mean"].iloc[0] - 0.7628)
    )
    # 3 of the 15 corruptions evaluated: the published 15-corruption mean gets no difference
    assert anchor["n_corruptions_15"].iloc[0] == 3 and anchor["delta_mean_acc_15_pts"].isna().all()
    start = html.index('id="published-anchor"')
    section = html[start : html.index("</section>", start)]
    assert html.count(PUBLISHED_CLEAN) == 1 and PUBLISHED_CLEAN in section
    rows = re.findall(r"<tr>(.*?)</tr>", section[section.index("<tbody>") :], re.S)
    assert len(rows) == 1 and "augmix[published protocol]" in rows[0]
    assert training_protocol(run_info({"method": "augmix", "recipe": "reference"})).startswith(
        "reference: shared schedule"
    )


def test_anchor_rows_only_for_published_protocol_of_an_anchored_architecture():
    from robustbench_aux.report.tables import published_anchor_table

    def row(label, arch, n15=15):
        return {
            "label": label,
            "arch": arch,
            "n_seeds": 1,
            "n_corruptions_15": n15,
            "clean_acc_mean": 0.75,
            "clean_acc_std": float("nan"),
            "mean_acc_15_mean": 0.62,
            "mean_acc_15_std": float("nan"),
        }

    methods = pd.DataFrame(
        [
            row("augmix", "wrn40_2"),
            row("augmix[published protocol]", "wrn40_2"),
            row("augmix[published protocol]", "resnet18"),  # no published numbers for it
            row("auxiliary", "wrn40_2"),
        ]
    )
    anchor = published_anchor_table(methods, "cifar100")
    assert list(zip(anchor["label"], anchor["arch"])) == [("augmix[published protocol]", "wrn40_2")]
    assert anchor["delta_clean_acc_pts"].iloc[0] == pytest.approx(75 - 76.28)
    assert anchor["delta_mean_acc_15_pts"].iloc[0] == pytest.approx(62 - 64.11)
    assert published_anchor_table(methods, "cifar10").empty  # published numbers are CIFAR-100's
