"""The committed full-data CPU experiment (``reports/cpu-cifar10/``): produced by the shipped
command on the full data, and every number of its page recomputable from its committed evidence.

- the record: every invocation of ``make reproduce-cpu-cifar10`` in ``reproduction.json``, the last
  one finished, 9 runs (plain, auxiliary, auxiliary[no_penalty] x seeds 0-2) on all 50,000 training
  images with the one recorded deviation (bf16 autocast), evaluated in bf16 on the whole CIFAR-10-C
  and CIFAR-10-C-bar (10,000 images per block);
- a new clone: ``report`` on the committed evidence folders alone (no run directory, no checkpoint)
  writes every CSV of the page byte for byte, and the same page;
- the paired tests (significance.csv, ablation.csv: McNemar's counts and p, the bootstrap's delta)
  and the training curves recompute from the evidence files with numpy and scipy alone.
"""

from __future__ import annotations

import csv
import html
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from evidence_bits import packed_blocks
from historical_pages import RECORDED_DIRTY
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
CPU = REPO / "reports" / "cpu-cifar10"
EVIDENCE = CPU / "evidence"
COMMAND = "robustbench-aux reproduce --grid baselines/grids/cpu_cifar10.toml --report reports/cpu-cifar10"
LABELS = ("plain", "auxiliary", "auxiliary[no_penalty]")
BLOCKS = 1 + 19 * 5 + 10 * 5  # clean, CIFAR-10-C, CIFAR-10-C-bar


def _record() -> dict:
    return json.loads((CPU / "reproduction.json").read_text())


def test_produced_by_the_shipped_command_on_the_full_data():
    record = _record()
    invocations = record["invocations"]
    assert all(i["command"].startswith(COMMAND) for i in invocations)
    assert invocations[-1]["state"] == "finished" and record["command"].startswith(COMMAND)
    assert not invocations[-1]["code_version"].endswith(".dirty")  # the page's own render
    for version in RECORDED_DIRTY["cpu-cifar10"]:  # the invocation behind it started clean
        assert any(i["code_version"] == version.removesuffix(".dirty") for i in invocations)
    grid = tomllib.loads(record["grid"]["text"])
    defaults = grid["defaults"]
    assert defaults["epochs"] == 8 and defaults["c_bar"] and defaults["eval_precision"] == "bf16"
    assert defaults["set"] == {"amp": "bf16", "channels_last": "on"}
    assert len(record["runs"]) == 9
    for run in record["runs"]:
        assert run["recipe"] == "reference" and run["epochs"] == 8 and run["n_train"] == 50_000
        assert [(d["switch"], d["value"]) for d in run["deviations"]] == [("train.amp", "bf16")]
        for version in (run["code_version"], run["eval_code_version"]):  # clean, or explained
            assert not version.endswith(".dirty") or version in RECORDED_DIRTY["cpu-cifar10"], version
        assert run["train_seconds"] > 0 and run["eval_seconds"] > 0
    runs = pd.read_csv(CPU / "runs.csv")
    assert sorted(zip(runs["label"], runs["seed"], strict=True)) == sorted(
        (label, seed) for label in LABELS for seed in (0, 1, 2)
    )
    df = pd.read_csv(CPU / "results_long.csv")
    assert (df.groupby("run_id").size() == BLOCKS).all() and (df["n"] == 10_000).all()
    assert sorted(p.name for p in EVIDENCE.iterdir()) == sorted(runs["run_id"])
    assert not list(CPU.rglob("*.pt"))


def test_a_new_clone_renders_the_same_page_from_the_committed_evidence(tmp_path, monkeypatch):
    """The committed evidence folders alone (no run directory) give every CSV byte for byte and
    the same page (but for its generation time), with the grid's [report] table as reproduce passes it."""
    from robustbench_aux.cli import main

    monkeypatch.chdir(REPO)  # the grid's paths are relative to the repository, as reproduce runs
    options = tomllib.loads((REPO / "baselines" / "grids" / "cpu_cifar10.toml").read_text())["report"]
    produced = re.search(r"<dt>produced by</dt><dd>(.*?)</dd>", (CPU / "index.html").read_text(), re.S)
    assert produced, "the committed page names the command that produced it"
    argv = ["report", str(EVIDENCE.relative_to(REPO)), "-o", str(tmp_path / "page")]
    argv += ["--parity", options["parity"], "--parity-label", options["parity_label"]]
    argv += ["--produced-by", html.unescape(produced.group(1))]
    assert main(argv) == 0
    committed = {p.name: p.read_bytes() for p in CPU.glob("*.csv")}
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "page").glob("*.csv")}
    assert sorted(fresh) == sorted(committed)
    assert [n for n in committed if fresh[n] != committed[n]] == []
    assert _page(tmp_path / "page" / "index.html") == _page(CPU / "index.html")


def _page(path: Path) -> str:
    """A page without what differs between two renders of the same evidence: the generation time
    and the code version that rendered it (the commit a clone is at)."""
    text = path.read_text(encoding="utf-8")
    own = re.search(r'id="page-version">([^<]*)<', text).group(1)
    text = text.replace(f">{own}<", "><version><")
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<time>", text)


def _folder(label: str, seed: str) -> Path:
    return EVIDENCE / f"{label.replace('[', '-').rstrip(']')}-resnet8-s{seed}"


@pytest.mark.parametrize("table", ["significance.csv", "ablation.csv"])
def test_paired_tests_recompute_from_the_evidencepacked_blocks(table):
    frame = pd.read_csv(CPU / table, dtype={"seed": str})
    fifteen = (
        "gaussian_noise shot_noise impulse_noise defocus_blur glass_blur motion_blur zoom_blur snow "
        "frost fog brightness contrast elastic_transform pixelate jpeg_compression"
    ).split()
    rows = frame[frame["seed"] != "over seeds"]
    assert len(rows) == (6 if table == "significance.csv" else 3)
    for row in rows.itertuples():
        reference = getattr(row, "reference", "plain")
        m, p = packed_blocks(_folder(row.label, row.seed)), packed_blocks(_folder(reference, row.seed))
        b, c = int((m["clean"] & ~p["clean"]).sum()), int((~m["clean"] & p["clean"]).sum())
        assert (row.clean_b, row.clean_c, row.n_images) == (b, c, 10_000)
        assert row.clean_p_mcnemar == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, abs=1e-6)
        bench = [k for k in m if k.rpartition("_s")[0] in fifteen]
        assert len(bench) == 75
        delta = np.mean([m[k] for k in bench], axis=0) - np.mean([p[k] for k in bench], axis=0)
        assert row.delta_mean15_pts == pytest.approx(100 * delta.mean(), abs=1e-5)
    over = frame[frame["seed"] == "over seeds"]
    for row in over.itertuples():
        deltas = rows[(rows["label"] == row.label)]["delta_clean_pts"]
        assert row.delta_clean_pts == pytest.approx(deltas.mean(), abs=1e-5)
        t = stats.ttest_1samp(deltas, 0.0)
        assert row.clean_p == pytest.approx(t.pvalue, abs=1e-6)


def test_training_curves_are_the_evidence_metrics():
    curves = pd.read_csv(CPU / "training_curves.csv")
    for folder in sorted(EVIDENCE.iterdir()):
        with (folder / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
        mine = curves[curves["run_id"] == folder.name]
        for quantity in ("train_acc", "ce_primary", "penalty", "lr"):
            if quantity not in rows[0]:
                assert folder.name.startswith("plain") and quantity != "train_acc"
                continue
            shown = mine[mine["quantity"] == quantity].sort_values("epoch")["value"].to_numpy()
            assert shown == pytest.approx([float(r[quantity]) for r in rows], abs=1e-6), (
                folder.name,
                quantity,
            )


# ----------------------------------------------------------------------------- what the READMEs quote
def _pm(mean: float, std: float, scale: float = 100, digits: int = 2) -> str:
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def _num(x: float) -> str:
    """A signed number as the READMEs write it: +1.23, −4.56 (a minus sign, not a hyphen)."""
    return f"{x:+.2f}".replace("-", "−")


def _signed(values) -> str:
    return ", ".join(_num(v) for v in values)


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def table_rows(report: Path = CPU) -> list[str]:
    """The rows of the results table in README's "What the suite finds" and in the report's README."""
    methods = pd.read_csv(report / "methods.csv").set_index("label")
    cbar = pd.read_csv(report / "c_bar_methods.csv").set_index("label")
    rows = []
    for label in LABELS:
        r, c = methods.loc[label], cbar.loc[label]
        rows.append(
            f"| {label} | {int(r['n_seeds'])} | {_pm(r['clean_acc_mean'], r['clean_acc_std'])} "
            f"| {_pm(r['mean_acc_15_mean'], r['mean_acc_15_std'])} "
            f"| {_pm(r['mean_acc_19_mean'], r['mean_acc_19_std'])} "
            f"| {_pm(c['mean_acc_cbar_mean'], c['mean_acc_cbar_std'])} "
            f"| {_pm(r['mce_norm_mean'], r['mce_norm_std'], 1, 3)} |"
        )
    return rows


def comparison_quotes(report: Path = CPU) -> dict[str, str]:
    """Per comparison (method vs reference): the per-seed differences and the seed-level test, as
    the READMEs write them."""
    quotes = {}
    for table in ("significance.csv", "ablation.csv"):
        frame = pd.read_csv(report / table, dtype={"seed": str})
        if "reference" not in frame.columns:
            frame["reference"] = "plain"
        for (label, reference), rows in frame.groupby(["label", "reference"]):
            seeds, over = rows[rows["seed"] != "over seeds"], rows[rows["seed"] == "over seeds"].iloc[0]
            n = int(over["n_seeds"])
            half = stats.t.ppf(0.975, n - 1) / np.sqrt(n)
            parts = []
            for key, what in (("clean", "clean"), ("mean15", "mean over the 15 corruptions")):
                d, sd = over[f"delta_{key}_pts"], over[f"{key}_std_pts"]
                parts.append(
                    f"{what} {_signed(seeds[f'delta_{key}_pts'])} points per seed; over seeds "
                    f"{_num(d)} (95 % t interval {_num(d - half * sd)} to {_num(d + half * sd)}, "
                    f"Holm-adjusted p {_p(over[f'{key}_p_holm'])})"
                )
            quotes[f"{label} vs {reference}"] = "; ".join(parts)
    return quotes


def curve_quotes(report: Path = CPU) -> dict[str, str]:
    """Clean training accuracy in epochs 7 and 8 (the penalty's epoch), mean over seeds, percent."""
    curves = pd.read_csv(report / "training_curves.csv")
    acc = curves[curves["quantity"] == "train_acc"]
    out = {}
    for label in LABELS:
        by_epoch = acc[acc["label"] == label].groupby("epoch")["value"].mean()
        out[label] = f"{100 * by_epoch[7]:.1f} % → {100 * by_epoch[8]:.1f} %"
    return out


def cbar_quotes(report: Path = CPU) -> dict[str, str]:
    """Per method vs plain: the gain over CIFAR-10-C (15) and over CIFAR-10-C-bar (10), points."""
    gap = pd.read_csv(report / "c_bar_gap.csv").set_index("label")
    return {
        label: f"{_num(gap.loc[label, 'gain_c_pts'])} on CIFAR-10-C, {_num(gap.loc[label, 'gain_cbar_pts'])} on "
        "CIFAR-10-C-bar"
        for label in LABELS
        if label != "plain"
    }


def parity_quote(report: Path = CPU) -> str:
    parity = pd.read_csv(report / "parity.csv")
    runs, deltas = parity[parity["kind"] == "run"], parity[parity["kind"] == "vs plain"]
    return (
        f"at most {runs['clean_diff_pts'].abs().max():.2f} points clean and "
        f"{runs['mean15_diff_pts'].abs().max():.2f} points over the 15 corruptions per run, and an "
        f"auxiliary − plain difference by at most {deltas['clean_diff_pts'].abs().max():.2f} / "
        f"{deltas['mean15_diff_pts'].abs().max():.2f} points"
    )


def readme_quotes(report: Path = CPU) -> list[str]:
    return [
        *table_rows(report),
        *comparison_quotes(report).values(),
        *curve_quotes(report).values(),
        *cbar_quotes(report).values(),
        parity_quote(report),
    ]


@pytest.mark.parametrize("readme", [REPO / "README.md", CPU / "README.md"], ids=["top-level", "report"])
def test_the_readmes_quote_the_committed_numbers(readme):
    text = " ".join(readme.read_text(encoding="utf-8").split())
    missing = [q for q in readme_quotes() if " ".join(q.split()) not in text]
    assert missing == [], f"{readme.relative_to(REPO)} does not quote: {missing}"
