"""Reports from fixture runs: files, exact numbers in the CSVs, refusals, missing plain, export."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from fixtures_runs import FIXTURE_LABELS, SECTIONS, build_fixture_report, fixture_accuracy, write_fixture_run

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, SEVERITIES
from robustbench_aux.cli import main
from robustbench_aux.errors import UserError
from robustbench_aux.metrics.uncertainty import holm
from robustbench_aux.report import build_report, export_robustbench


def _acc(label, arch, seed, c, s, n=100):
    return round(fixture_accuracy(label, arch, seed, c, s) * n) / n  # fixture runs get round(acc·n) right


def _mean15(label, arch, seed):
    return sum(_acc(label, arch, seed, c, s) for c in BENCHMARK_15 for s in SEVERITIES) / 75


def _mean19(label, arch, seed):
    return sum(_acc(label, arch, seed, c, s) for c in ALL_19 for s in SEVERITIES) / 95


@pytest.fixture(scope="session")
def fixture_report(tmp_path_factory):
    return build_fixture_report(tmp_path_factory)


def test_report_files_and_sections(fixture_report):
    out, html = fixture_report["out"], fixture_report["index"].read_text()
    for name in (
        "runs.csv",
        "methods.csv",
        "claim.csv",
        "per_corruption.csv",
        "severity.csv",
        "families.csv",
        "significance.csv",
        "results_long.csv",
        "interference_resnet18.csv",
        "interference_by_severity_resnet50.csv",
    ):
        assert (out / name).is_file(), name
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in html
    assert html.count("<svg") >= 1 + 2 * 2 + 2  # trade-off, 2 heat maps per arch, severity, bars
    assert not re.search(r"""(src|href)=["']https?://""", html)  # self-contained: nothing fetched
    assert "<img" not in html and "<link" not in html
    assert "made-up numbers &lt;test&gt;" in html  # autoescape on
    assert "No plain-training run" not in html


def test_claim_numbers_exact(fixture_report):
    claim = pd.read_csv(fixture_report["out"] / "claim.csv").set_index("arch")
    for arch in ("resnet18", "resnet50"):
        d_clean = [
            100 * (_acc("auxiliary", arch, s, "clean", 0) - _acc("plain", arch, s, "clean", 0))
            for s in (0, 1)
        ]
        mce_p = [1 - _mean15("plain", arch, s) for s in (0, 1)]
        mce_a = [1 - _mean15("auxiliary", arch, s) for s in (0, 1)]
        absolute = [100 * (p - a) for p, a in zip(mce_p, mce_a, strict=True)]
        relative = [100 * (p - a) / p for p, a in zip(mce_p, mce_a, strict=True)]
        assert claim.loc[arch, "delta_clean_pts"] == pytest.approx(sum(d_clean) / 2, abs=1e-5)
        assert claim.loc[arch, "robust_abs_pts_15"] == pytest.approx(sum(absolute) / 2, abs=1e-5)
        assert claim.loc[arch, "robust_rel_pct_15"] == pytest.approx(sum(relative) / 2, abs=1e-5)
        mce19_p = [1 - _mean19("plain", arch, s) for s in (0, 1)]
        mce19_a = [1 - _mean19("auxiliary", arch, s) for s in (0, 1)]
        rel19 = [100 * (p - a) / p for p, a in zip(mce19_p, mce19_a, strict=True)]
        assert claim.loc[arch, "robust_rel_pct_19"] == pytest.approx(sum(rel19) / 2, abs=1e-5)
    assert "mean over architectures" in claim.index
    assert claim.loc["resnet18", "paper_robustness"] == 21.64
    # the verdict's Holm family is the claim's own: auxiliary's clean and mean-15 tests over seeds on
    # that architecture (2 tests), never the whole significance table
    sig = pd.read_csv(fixture_report["out"] / "significance.csv", dtype={"seed": str})
    for arch in ("resnet18", "resnet50"):
        over = sig[
            (sig["label"] == "auxiliary") & (sig["arch"] == arch) & (sig["seed"] == "over seeds")
        ].iloc[0]
        want = holm([over["clean_p"], over["mean15_p"]])[1]
        assert claim.loc[arch, "robust_p_holm"] == pytest.approx(want)
        assert int(over["family_size"]) == int(pd.notna(over[["clean_p", "mean15_p"]]).sum())
    mean = claim.loc["mean over architectures"]
    assert mean["robust_p_holm"] == pytest.approx(claim.loc[["resnet18", "resnet50"], "robust_p_holm"].max())
    expected = "inconclusive" if mean["robust_p_holm"] > 0.05 else "gain"
    assert mean["verdict"] == expected
    shown = f"({mean['robust_abs_pts_15']:+.2f} points over 15 corruptions, 95 % interval"
    assert shown in mean["matching_reading"]


def test_interference_csv_exact(fixture_report):
    mat = pd.read_csv(fixture_report["out"] / "interference_resnet18.csv", index_col="label")
    assert list(mat.index[:2]) == ["plain", "per_corruption[blur]"]
    got = mat.loc["per_corruption[noise]", "gaussian_noise"]
    want = (
        sum(
            100
            * (
                _acc("per_corruption[noise]", "resnet18", seed, "gaussian_noise", s)
                - _acc("plain", "resnet18", seed, "gaussian_noise", s)
            )
            for seed in (0, 1)
            for s in SEVERITIES
        )
        / 10
    )
    assert got == pytest.approx(want, abs=1e-5)
    assert mat.loc["per_corruption[noise]", "contrast"] < 0 < got  # helps its family, hurts contrast
    assert (mat.loc["plain"] == 0).all()
    sev = pd.read_csv(fixture_report["out"] / "interference_by_severity_resnet18.csv")
    assert len(sev) == len(FIXTURE_LABELS) * 5 and set(sev["severity"]) == set(SEVERITIES)


def test_methods_table_seeds(fixture_report):
    m = pd.read_csv(fixture_report["out"] / "methods.csv")
    row = m[(m.label == "augmix") & (m.arch == "resnet50")].iloc[0]
    vals = [_acc("augmix", "resnet50", s, "clean", 0) for s in (0, 1)]
    assert row["clean_acc_mean"] == pytest.approx(sum(vals) / 2, abs=1e-6)
    assert row["n_seeds"] == 2 and row["seeds"] == "0,1"
    plain = m[(m.label == "plain")]
    assert plain["mce_norm_mean"].tolist() == pytest.approx([1.0, 1.0])
    fam = pd.read_csv(fixture_report["out"] / "families.csv")
    noise = fam[(fam.label == "per_corruption[noise]") & (fam.arch == "resnet18")].iloc[0]
    assert noise["seen"] == "gaussian_noise, shot_noise, speckle_noise" and noise["seen_delta_pts"] > 0
    sig = pd.read_csv(fixture_report["out"] / "significance.csv", dtype={"seed": str})
    aux = sig[(sig.label == "auxiliary") & (sig.arch == "resnet18")].set_index("seed")
    assert list(aux.index) == ["0", "1", "over seeds"]  # one row per seed, then the test over seeds
    assert (aux["delta_mean15_pts"] > 0).all() and aux.loc["0", "mean15_p_bootstrap"] < 0.05
    assert aux.loc["0", "mean15_significant"]  # survives Holm over every p-value of the table
    assert aux.loc["over seeds", "mean15_test"] == "t over 2 seeds"
    assert aux.loc["over seeds", "delta_mean15_pts"] == pytest.approx(
        aux.loc[["0", "1"], "delta_mean15_pts"].mean()
    )
    assert (sig["mean15_p_holm"] >= sig["mean15_p"] - 1e-12).all()


def test_missing_plain_drops_normalized_figures(fixture_report, tmp_path):
    runs = [p for p in fixture_report["runs"] if not p.name.startswith("plain-")]
    index = build_report(runs, tmp_path / "r")
    html = index.read_text()
    assert "No plain-training run was given" in html
    assert not (tmp_path / "r" / "interference_resnet18.csv").exists()
    assert pd.read_csv(tmp_path / "r" / "methods.csv")["mce_norm_mean"].isna().all()
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in html


def test_incomparable_runs_are_refused(fixture_report, tmp_path):
    base = fixture_report["runs"][0]
    other = write_fixture_run(tmp_path, "auxiliary", "resnet18", 7, n=100, preset="imagenet")
    with pytest.raises(UserError, match="different corruption preset: cifar .* vs imagenet"):
        build_report([base, other], tmp_path / "x")
    other = write_fixture_run(tmp_path / "d", "auxiliary", "resnet18", 7, n=100, dataset="cifar10")
    with pytest.raises(UserError, match="different dataset"):
        build_report([base, other], tmp_path / "x")
    other = write_fixture_run(tmp_path / "c", "auxiliary", "resnet18", 7, n=100, corruptions=BENCHMARK_15)
    with pytest.raises(UserError, match="different corruption set: 19 corruptions .* vs 15 corruptions"):
        build_report([base, other], tmp_path / "x")
    other = write_fixture_run(tmp_path / "p", "auxiliary", "resnet18", 7, n=100, provenance="published")
    with pytest.raises(UserError, match="published/generated"):
        build_report([base, other], tmp_path / "x")
    with pytest.raises(UserError, match="appears twice"):
        build_report([base, base], tmp_path / "x")
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_cli_report_and_export(fixture_report, tmp_path, capsys):
    root = fixture_report["root"] / "runs"
    runs = [str(p) for p in fixture_report["runs"] if p.name.endswith("resnet18-s0")]
    assert main(["report", *runs, "-o", str(tmp_path / "rep"), "--title", "Small"]) == 0
    assert "<title>Small</title>" in (tmp_path / "rep" / "index.html").read_text()
    assert (
        main(
            [
                "export",
                "--format",
                "robustbench",
                str(root / "auxiliary-resnet18-s0"),
                "-o",
                str(tmp_path / "rb"),
                "--allow-nonstandard",  # generated fixture corruptions, 200 images per block
            ]
        )
        == 0
    )
    entry = json.loads((tmp_path / "rb" / "Zhang2020Auxiliary_Repro_ResNet18.json").read_text())
    assert entry["clean_acc"] == f"{100 * _acc('auxiliary', 'resnet18', 0, 'clean', 0):.2f}"
    assert entry["corruptions_acc"] == f"{100 * _mean15('auxiliary', 'resnet18', 0):.2f}"
    assert entry["architecture"] == "ResNet-18" and entry["dataset"] == "cifar100" and entry["eps"] is None
    assert {
        "link",
        "name",
        "authors",
        "additional_data",
        "number_forward_passes",
        "venue",
        "reported",
    } <= set(entry)
    un = pd.read_csv(tmp_path / "rb" / "unaggregated_results.csv", header=[0, 1], index_col=0)
    assert un.shape == (1, 75) and un.columns[0] == ("brightness", "1")
    assert un.loc["Zhang2020Auxiliary_Repro_ResNet18", ("contrast", "3")] == pytest.approx(
        _acc("auxiliary", "resnet18", 0, "contrast", 3), abs=1e-4
    )
    capsys.readouterr()
    assert main(["report", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "z")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_export_refuses_partial_runs(tmp_path):
    run = write_fixture_run(tmp_path, "plain", "resnet18", 0, n=50, corruptions=("gaussian_noise", "fog"))
    with pytest.raises(UserError, match="lacks 65 of the 75 benchmark blocks"):
        export_robustbench([run], tmp_path / "o")
    (path,) = [
        p
        for p in export_robustbench([run], tmp_path / "o", allow_partial=True, allow_nonstandard=True)
        if p.suffix == ".json"
    ]
    assert json.loads(path.read_text())["name"] == "plain (robustbench-aux baseline)"


def test_labels_are_escaped_in_tables_and_figures(tmp_path):
    runs = [
        write_fixture_run(tmp_path, lab, "resnet18", 0, n=20, corruptions=("gaussian_noise", "contrast"))
        for lab in ("plain", "auxiliary[<i>&x]")
    ]
    html = build_report(runs, tmp_path / "r").read_text()
    assert "<i>&x" not in html
    assert "auxiliary[&lt;i&gt;&amp;x]" in html  # escaped in the tables and in the SVG text
