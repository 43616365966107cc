"""The precision-parity check (report --parity) and the ablation comparison on a rendered page:
fixture runs of plain, auxiliary and auxiliary[no_penalty], and the same runs' results table with
one run moved, standing for the other precision."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pandas as pd
import pytest
from fixtures_runs import write_fixture_runs

from robustbench_aux.catalog import BENCHMARK_15
from robustbench_aux.errors import UserError
from robustbench_aux.report import build_report
from robustbench_aux.report.parity import read_parity

LABELS = ("plain", "auxiliary", "auxiliary[no_penalty]")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("parity")
    write_fixture_runs(
        root / "runs", archs=("resnet18",), seeds=(0, 1), labels=LABELS, n=40, corruptions=BENCHMARK_15
    )
    build_report([root / "runs"], root / "first")
    other = pd.read_csv(root / "first" / "results_long.csv")
    moved = (other["run_id"] == "auxiliary-resnet18-s0") & (other["corruption"] == "clean")
    other.loc[moved, "acc"] -= 0.025  # the other precision: 2.5 points lower clean for one run
    other.to_csv(root / "fp32.csv", index=False)
    index = build_report([root / "runs"], root / "page", parity=root / "fp32.csv", parity_label="fp32")
    return {"root": root, "out": root / "page", "html": index.read_text()}


def test_parity_table_sets_each_run_against_its_twin(page):
    table = pd.read_csv(page["out"] / "parity.csv")
    runs = table[table["kind"] == "run"].set_index(["label", "seed"])
    assert len(runs) == 6
    assert runs.loc[("auxiliary", 0), "clean_diff_pts"] == pytest.approx(2.5)
    assert runs.drop(index=[("auxiliary", 0)])["clean_diff_pts"].abs().max() == pytest.approx(0)
    assert runs["mean15_diff_pts"].abs().max() == pytest.approx(0)
    deltas = table[table["kind"] == "vs plain"].set_index(["label", "seed"])
    assert sorted(deltas.index) == [
        ("auxiliary", 0),
        ("auxiliary", 1),
        ("auxiliary[no_penalty]", 0),
        ("auxiliary[no_penalty]", 1),
    ]
    # the method - plain difference moved by the same 2.5 points in seed 0 only
    assert deltas.loc[("auxiliary", 0), "clean_diff_pts"] == pytest.approx(2.5)
    assert deltas.loc[("auxiliary", 0), "clean_this"] == pytest.approx(
        runs.loc[("auxiliary", 0), "clean_this"] - runs.loc[("plain", 0), "clean_this"]
    )
    spread = pd.read_csv(page["out"] / "parity_seed_spread.csv")
    assert set(spread["label"]) == set(LABELS) and (spread["n_seeds"] == 2).all()


def test_page_shows_parity_and_ablation_sections(page):
    html = page["html"]
    assert 'id="parity"' in html and "Precision parity: these runs in fp32 vs fp32" in html
    assert "at most 2.50 points clean" in html
    assert 'id="ablation"' in html and 'data-reference="auxiliary"' in html
    assert "<b>auxiliary[no_penalty] vs auxiliary (resnet18)</b>" in html
    ablation = pd.read_csv(page["out"] / "ablation.csv", dtype={"seed": str})
    assert set(ablation["reference"]) == {"auxiliary"} and list(ablation["seed"]) == ["0", "1", "over seeds"]


def test_a_page_without_parity_has_no_parity_section(page):
    html = (page["root"] / "first" / "index.html").read_text()
    assert 'id="parity"' not in html and not (page["root"] / "first" / "parity.csv").exists()


def test_parity_input_errors_are_one_line(page, tmp_path):
    with pytest.raises(UserError, match="do not exist"):
        read_parity(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("run_id,acc\nx,0.5\n")
    with pytest.raises(UserError, match="lacks column"):
        read_parity(tmp_path / "bad.csv")
    other = pd.read_csv(page["root"] / "fp32.csv")
    other["seed"] += 10  # no shared seed
    other.to_csv(tmp_path / "elsewhere.csv", index=False)
    with pytest.raises(UserError, match="share no"):
        build_report([page["root"] / "runs"], tmp_path / "out", parity=tmp_path / "elsewhere.csv")
    assert read_parity(page["root"] / "first")["run_id"].nunique() == 6  # a report directory works


def test_reproduce_passes_the_grids_report_table(tmp_path, monkeypatch):
    from robustbench_aux.orchestrate import pipeline

    grid = tmp_path / "grid.toml"
    grid.write_text(
        "[defaults]\nout = 'runs'\n[[runs]]\nmethods = ['plain']\narchs = ['a']\nseeds = [0]\n"
        "[report]\nparity = 'reports/old'\nparity_label = 'fp32'\n"
    )
    calls = []
    monkeypatch.setattr(pipeline, "run_cli", lambda argv, echo=print: calls.append(argv))
    p = pipeline.Pipeline(
        grid=grid, dataset="cifar10", data=tmp_path, out=tmp_path / "runs", report=tmp_path / "r"
    )
    now = _dt.datetime.now(_dt.UTC)
    pipeline._report(p, lambda *_: None, now, {}, lambda stage: None, "cmd", {}, [])
    argv = calls[0]
    assert (
        argv[argv.index("--parity") + 1] == "reports/old" and argv[argv.index("--parity-label") + 1] == "fp32"
    )
    assert Path(tmp_path / "r" / "reproduction.json").is_file()
