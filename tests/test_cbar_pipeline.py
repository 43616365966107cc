"""CIFAR-C-bar through the suite: generation (CLI, manifest, resume), the reader, evaluation of one
or both directories in one run, the report's C-bar section, the export's refusals, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_runs import write_fixture_run

from robustbench_aux.catalog import ALL_19, CBAR_10, SEVERITIES
from robustbench_aux.cli import main
from robustbench_aux.corruptions import corrupt_batch
from robustbench_aux.corruptions.generate import block_seed
from robustbench_aux.datasets import CifarCReader
from robustbench_aux.errors import UserError
from robustbench_aux.evaluation.results import read_results

N = 16


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def dirs(cifar10_root, tmp_path_factory):
    """A small CIFAR-10-C (two corruptions) and a full CIFAR-10-C-bar (ten), N images each."""
    root = tmp_path_factory.mktemp("cbar")
    common = ["--dataset", "cifar10", "--data", str(cifar10_root), "--n", str(N), "--workers", "1"]
    c = root / "CIFAR-10-C-generated"
    bar = root / "CIFAR-10-C-bar-generated"
    assert main(["corrupt", *common, "--corruptions", "fog,contrast", "--out", str(c)]) == 0
    assert main(["corrupt", *common, "--preset", "cifar10-c-bar", "--out", str(bar)]) == 0
    return c, bar


def test_generation_layout_manifest_and_seeded_blocks(dirs, cifar10):
    _, bar = dirs
    reader = CifarCReader(bar, require=CBAR_10, num_classes=10)
    assert reader.benchmark == "cifar-c-bar" and reader.corruptions == list(CBAR_10) and reader.n == N
    m = json.loads((bar / "manifest.json").read_text())
    assert m["benchmark"] == "cifar-c-bar" and m["preset"] == "cifar10-c-bar"
    assert "published CIFAR-10-C-bar levels" in m["parameters"] and "choice" not in m["parameters"]
    assert set(m["files"]) == {f"{c}.npy" for c in CBAR_10} | {"labels.npy"}
    # every block is corrupt_batch of the test images with the block's own seed
    x = torch.from_numpy(np.array(cifar10.test_x[:N])).permute(0, 3, 1, 2).contiguous()
    for name, s in (("lines", 4), ("sparkles", 2)):
        g = torch.Generator().manual_seed(block_seed(0, name, s))
        want = corrupt_batch(x, name, s, preset="cifar10-c-bar", generator=g).permute(0, 2, 3, 1).numpy()
        np.testing.assert_array_equal(reader.block(name, s).images, want)


def test_cifar100_parameters_are_labelled_our_choice(tmp_path, capsys):
    out = tmp_path / "CIFAR-100-C-bar-generated"
    argv = ["corrupt", "--dataset", "synthetic100", "--n", "8", "--preset", "cifar10-c-bar"]
    assert main([*argv, "--corruptions", "ripple", "--severities", "1", "--out", str(out)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert "applied to synthetic100: this suite's choice" in m["parameters"]
    capsys.readouterr()
    assert main([*argv, "--corruptions", "ripple", "--severities", "1", "--out", str(out)]) == 0  # resumes
    assert "CIFAR-C-bar, 1 corruption files" in capsys.readouterr().out


def test_bad_input_is_one_line(dirs, tmp_path, capsys):
    _, bar = dirs
    base = ["corrupt", "--dataset", "synthetic10", "--n", "4"]
    err = _one_line_error(
        capsys,
        [*base, "--preset", "cifar10-c-bar", "--corruptions", "sparkle", "--out", str(tmp_path / "x-C-bar")],
    )
    assert "did you mean 'sparkles'" in err
    err = _one_line_error(capsys, [*base, "--preset", "cifar10-c-bar", "--out", str(tmp_path / "CIFAR-10-C")])
    assert "named like CIFAR-C" in err
    err = _one_line_error(capsys, [*base, "--corruptions", "ripple", "--out", str(tmp_path / "y")])
    assert "--preset cifar10-c-bar" in err
    assert not (tmp_path / "CIFAR-10-C").exists() and not (tmp_path / "y").exists()
    mixed = tmp_path / "mixed"
    shutil.copytree(bar, mixed)
    shutil.copy(dirs[0] / "fog.npy", mixed / "fog.npy")
    with pytest.raises(UserError, match="mixes CIFAR-C files"):
        CifarCReader(mixed)


def _evaluate(cifar10_root, out, *corruption_args):
    return [
        "evaluate", "--model", "robustbench_aux.models:build_model", "--model-arg", "arch=test_tiny",
        "--model-arg", "num_classes=10", "--dataset", "cifar10", "--data", str(cifar10_root),
        "--n", str(N), "--device", "cpu", "--out", str(out), *corruption_args,
    ]  # fmt: skip


def test_evaluate_both_directories_in_one_run(dirs, cifar10_root, tmp_path, capsys):
    c, bar = dirs
    torch.manual_seed(0)
    out = tmp_path / "both"
    assert main(_evaluate(cifar10_root, out, "--corruptions", str(c), "--corruptions", str(bar))) == 0
    assert "C-bar mean" in capsys.readouterr().out
    table, summary = read_results(out / "eval")
    bench = table.groupby("benchmark")["corruption"].unique()
    assert sorted(bench["cifar-c"]) == ["contrast", "fog"]
    assert sorted(bench["cifar-c-bar"]) == sorted(CBAR_10) and list(bench["clean"]) == ["clean"]
    assert (table.loc[table["benchmark"] == "cifar-c-bar", "category"] == "c-bar").all()
    assert summary["c_bar"]["n_corruptions"] == 10 and not summary["c_bar"]["partial"]
    bar_rows = table[table["benchmark"] == "cifar-c-bar"]
    assert summary["c_bar"]["mean_acc"] == pytest.approx(bar_rows.groupby("corruption")["acc"].mean().mean())
    # the CIFAR-C figures are over the CIFAR-C blocks only
    c_rows = table[table["benchmark"] == "cifar-c"]
    assert summary["n_corruptions_19"] == 2
    assert summary["mean_acc_19"] == pytest.approx(c_rows.groupby("corruption")["acc"].mean().mean())
    assert summary["provenance"]["corruptions_bar"]["benchmark"] == "cifar-c-bar"
    assert summary["provenance"]["corruptions"]["benchmark"] == "cifar-c"
    stored = [f for f in (out / "eval" / "per_image").glob("*.npy") if "." not in f.stem]  # correctness
    assert len(stored) == 1 + 2 * 5 + 10 * 5


def test_evaluate_a_cbar_directory_alone_and_its_errors(dirs, cifar10_root, tmp_path, capsys):
    c, bar = dirs
    out = tmp_path / "bar"
    assert (
        main(_evaluate(cifar10_root, out, "--corruptions", str(bar), "--corruption-names", "ripple,lines"))
        == 0
    )
    capsys.readouterr()
    table, summary = read_results(out / "eval")
    assert set(table["benchmark"]) == {"clean", "cifar-c-bar"}
    assert summary["provenance"]["corruptions"]["provenance"] is None
    assert summary["c_bar"]["n_corruptions"] == 2 and summary["c_bar"]["partial"]
    err = _one_line_error(
        capsys,
        _evaluate(cifar10_root, tmp_path / "e1", "--corruptions", str(bar), "--corruption-names", "sparkle"),
    )
    assert "did you mean 'sparkles'" in err
    err = _one_line_error(
        capsys, _evaluate(cifar10_root, tmp_path / "e2", "--corruptions", str(bar), "--corruptions", str(bar))
    )
    assert "two CIFAR-C-bar directories" in err
    err = _one_line_error(
        capsys,
        _evaluate(cifar10_root, tmp_path / "e3", "--corruptions", str(c), "--corruption-names", "ripple"),
    )
    assert "no CIFAR-C-bar directory was given" in err
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()


def test_old_results_without_the_benchmark_column_still_read(tmp_path):
    run = write_fixture_run(tmp_path, "plain", "resnet18", 0, n=20, corruptions=ALL_19[:2])
    csv = run / "eval" / "results.csv"
    pd.read_csv(csv).drop(columns="benchmark").to_csv(csv, index=False)
    table, _ = read_results(run / "eval")
    assert list(table["benchmark"].unique()) == ["clean", "cifar-c"]


@pytest.fixture(scope="module")
def cbar_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cbar_runs")
    corruptions = ALL_19 + CBAR_10
    return [
        write_fixture_run(root, label, "resnet18", seed, n=200, corruptions=corruptions)
        for label in ("plain", "auxiliary", "naive_augmentation")
        for seed in (0, 1, 2)
    ]


def test_report_shows_the_cbar_column_set(cbar_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", *map(str, cbar_runs), "-o", str(out)]) == 0
    html = (out / "index.html").read_text()
    assert 'id="c-bar"' in html and "Unseen corruptions: CIFAR-C-bar" in html
    assert "the published CIFAR-10-C-bar levels (fixture)" in html
    methods = pd.read_csv(out / "c_bar_methods.csv")
    assert set(methods["label"]) == {"plain", "auxiliary", "naive_augmentation"}
    assert (methods["n_corruptions_cbar"] == 10).all()
    plain = methods.set_index("label").loc["plain"]
    assert plain["mce_cbar_mean"] == pytest.approx(1 - plain["mean_acc_cbar_mean"])
    claim = pd.read_csv(out / "c_bar_claim.csv")
    assert list(claim["arch"]) == ["resnet18"] and claim["n_seeds"].iloc[0] == 3
    gap = pd.read_csv(out / "c_bar_gap.csv").set_index("label")
    # the fixture's auxiliary gains less on C-bar than on CIFAR-C: a positive gap, tested over 3 seeds
    aux = gap.loc["auxiliary"]
    assert aux["gap_pts"] > 0 and aux["gain_c_pts"] > aux["gain_cbar_pts"]
    assert aux["gap_test"] == "t over 3 seeds" and 0 <= aux["gap_p"] <= 1
    assert aux["gap_pts"] == pytest.approx(aux["gain_c_pts"] - aux["gain_cbar_pts"])
    # CIFAR-C tables stay CIFAR-C: no C-bar column in per_corruption.csv
    assert not set(CBAR_10) & set(pd.read_csv(out / "per_corruption.csv").columns)


def test_report_without_cbar_has_no_cbar_section(tmp_path):
    runs = [write_fixture_run(tmp_path / "r", lab, "resnet18", 0, n=50) for lab in ("plain", "auxiliary")]
    assert main(["report", *map(str, runs), "-o", str(tmp_path / "rep")]) == 0
    assert 'id="c-bar"' not in (tmp_path / "rep" / "index.html").read_text()
    assert not (tmp_path / "rep" / "c_bar_gap.csv").exists()


def test_export_keeps_cbar_out_and_says_so(cbar_runs, dirs, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(cbar_runs[0]), "-o", str(out), "--allow-nonstandard"]) == 0
    assert "CIFAR-C-bar results left out" in capsys.readouterr().out
    entry = json.loads(next(out.glob("*.json")).read_text())
    assert "CIFAR-C-bar results left out (RobustBench has no CIFAR-C-bar track)" in entry["footnote"]
    csv = (out / "unaggregated_results.csv").read_text()
    assert not any(c in csv for c in CBAR_10)
    err = _one_line_error(capsys, ["export", str(dirs[1]), "-o", str(tmp_path / "x")])
    assert "is a CIFAR-C-bar directory, not an evaluated run" in err
    only_bar = write_fixture_run(tmp_path / "ob", "plain", "resnet18", 0, n=20, corruptions=CBAR_10)
    err = _one_line_error(capsys, ["export", str(only_bar), "-o", str(tmp_path / "y"), "--allow-nonstandard"])
    assert "evaluated on CIFAR-C-bar only" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_benchmark_api_refuses_a_cbar_directory(dirs, cifar10_root):
    from robustbench_aux import benchmark
    from robustbench_aux.models import build_model

    with pytest.raises(UserError, match="is a CIFAR-C-bar directory"):
        benchmark(
            build_model("test_tiny", num_classes=10), "cifar10", cifar10_root, corruptions_dir=dirs[1], n=4
        )
    assert SEVERITIES == (1, 2, 3, 4, 5)
