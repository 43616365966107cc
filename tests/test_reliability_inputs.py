"""Reliability battery, part 1: every bad input is one ``error:`` line, exit 2, and changes nothing.

One parametrized test per class of input: bad values, bad files, bad paths, traversal attempts.
Each case copies a small world (reliability_world.py), runs one command in-process and asserts
the exit status, a single error line (no traceback), and sha256-identical files outside the
command's output directory. docs/reliability.md reports the size and result of the battery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from reliability_world import GRID, TINY, Case, build_world, run_case, train_argv

RUN = "plain-resnet18-s0"  # the evaluated fixture run in evruns/
EVAL = ["evaluate", "run", "--device", "cpu"]
EVAL_C = [*EVAL, "--corruptions", "cc", "--n", "40"]
CORRUPT = [
    "corrupt",
    "--dataset",
    "synthetic10",
    "--corruptions",
    "gaussian_noise",
    "--n",
    "20",
    "--workers",
    "1",
]
# corrupt a dataset read from the array layout under ./data (the class-names file cases)
CORRUPT_ARRAYS = [
    "corrupt",
    "--dataset",
    "cifar10",
    "--corruptions",
    "gaussian_noise",
    "--data",
    "data",
    "--n",
    "5",
    "--out",
    "cco",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world") / "w")


# ----------------------------------------------------------------------------- helpers for setups


def _write(rel: str, data: str | bytes):
    def setup(w: Path) -> None:
        p = w / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)

    return setup


def _grid(extra: str = "", replace: tuple[str, str] | None = None):
    text = GRID if replace is None else GRID.replace(*replace)
    return _write("grid.toml", text + extra)


def _ckpt(edit):
    """Rewrite run/final.pt through ``edit(ckpt) -> ckpt`` (saved with plain torch.save)."""

    def setup(w: Path) -> None:
        path = w / "run" / "final.pt"
        ckpt = torch.load(path, weights_only=True)
        torch.save(edit(ckpt), path)

    return setup


def _drop(key):
    return _ckpt(lambda c: {k: v for k, v in c.items() if k != key})


def _state(edit):
    def change(c):
        edit(c["state_dict"])
        return c

    return _ckpt(change)


def _poison(sd):
    name = next(k for k in sd if k.endswith("running_var"))
    sd[name] = torch.full_like(sd[name], float("inf"))


def _wrong_shape(sd):
    name = next(k for k in sd if k.endswith("weight") and sd[k].ndim == 4)
    sd[name] = torch.zeros(1, 1, 1, 1)


def _missing_tensors(sd):
    for k in list(sd)[: len(sd) // 2]:
        del sd[k]


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _evil(w: Path) -> None:
    torch.save({"format": "robustbench-aux/1", "x": _Evil()}, w / "run" / "final.pt")


def _truncate(w: Path) -> None:
    p = w / "run" / "final.pt"
    p.write_bytes(p.read_bytes()[:1000])


def _config_run_id(value):
    return _ckpt(lambda c: {**c, "config": {**c["config"], "run_id": value}})


def _results_column(column, value):
    def setup(w: Path) -> None:
        p = w / "evruns" / RUN / "eval" / "results.csv"
        t = pd.read_csv(p)
        t[column] = value
        t.to_csv(p, index=False)

    return setup


def _labels_shuffled(w: Path) -> None:
    p = w / "cc" / "labels.npy"
    y = np.load(p)
    n = len(y) // 5
    base = np.roll(y[:n], 1)
    np.save(p, np.tile(base, 5))


def _array_layout(classes_json: str):
    def setup(w: Path) -> None:
        d = w / "data" / "cifar10"
        d.mkdir(parents=True)
        for stem, n in (("train", 20), ("test", 20)):
            np.save(d / f"{stem}_x.npy", np.zeros((n, 32, 32, 3), np.uint8))
            np.save(d / f"{stem}_y.npy", np.arange(n, dtype=np.int64) % 10)
        (d / "classes.json").write_text(classes_json)

    return setup


def _resume_without(key):
    def setup(w: Path) -> None:
        (w / "run" / "final.pt").unlink()
        path = w / "run" / "last.pt"
        ckpt = torch.load(path, weights_only=True)
        del ckpt[key]
        torch.save(ckpt, path)

    return setup


def _symlink_out(w: Path) -> None:
    (w / "exp").mkdir()
    (w / "outside.txt").write_text("keep me\n")
    (w / "exp" / "unaggregated_results.csv").symlink_to(w / "outside.txt")


# ----------------------------------------------------------------------------- bad values

VALUES = [
    Case("lr-negative", train_argv("new", "--set", "lr=-1"), "lr must be"),
    Case("lr-nan", train_argv("new", "--set", "lr=nan"), "lr must be"),
    Case("lr-inf", train_argv("new", "--set", "lr=inf"), "lr must be"),
    Case("lr_decay-negative", train_argv("new", "--set", "lr_decay=-1"), "lr_decay must be in (0, 1]"),
    Case("lr_decay-above-1", train_argv("new", "--set", "lr_decay=2"), "lr_decay"),
    Case("momentum-negative", train_argv("new", "--set", "momentum=-0.5"), "momentum"),
    Case(
        "nesterov-without-momentum",
        train_argv("new", "--set", "nesterov=true", "--set", "momentum=0"),
        "nesterov",
    ),
    Case("weight_decay-negative", train_argv("new", "--set", "weight_decay=-1e-4"), "weight_decay"),
    Case("batch_size-zero", train_argv("new", "--set", "batch_size=0"), "batch_size"),
    Case("epochs-set-zero", train_argv("new", "--set", "epochs=0"), "epochs"),
    Case(
        "epochs-flag-zero", ["train", "--method", "plain", *TINY, "--epochs", "0", "--out", "new"], "--epochs"
    ),
    Case("warmup-negative", train_argv("new", "--set", "warmup_epochs=-1"), "warmup_epochs"),
    Case("milestone-negative", train_argv("new", "--set", "milestones=[-3]"), "milestones"),
    Case("width-negative", train_argv("new", "--set", "width=-8"), "width"),
    Case("std-zero", train_argv("new", "--set", "std=[0,0.2,0.2]"), "std"),
    Case("mean-out-of-range", train_argv("new", "--set", "mean=[2,0,0]"), "mean"),
    Case("amp-unknown", train_argv("new", "--set", "amp=fast"), "amp must be one of"),
    Case("n-train-negative", train_argv("new") + ["--n-train", "-1990"], "n_train"),
    Case("seed-negative", train_argv("new", "--seed", "-1"), "seed"),
    Case("seed-too-large", train_argv("new", "--seed", str(2**33)), "seed"),
    Case("device-unknown", train_argv("new", "--device", "gpu0"), "unknown device"),
    Case("device-index", train_argv("new", "--device", "cuda:99"), "cuda"),
    Case(
        "one-class",
        train_argv("new", "--dataset", "synthetic1"),  # the later --dataset wins
        "at least 2 classes",
    ),
    Case("eval-batch-size", [*EVAL, "--batch-size", "0"], "--batch-size"),
    Case("eval-severity", [*EVAL_C, "--severities", "9"], "1..5"),
    Case("eval-n-negative", [*EVAL, "--n", "-1"], "--n"),
    Case("corrupt-n-negative", [*CORRUPT[:-4], "--n", "-5", "--out", "cco"], "--n"),
    Case("corrupt-seed", [*CORRUPT, "--seed", "-1", "--out", "cco"], "--seed"),
    Case("corrupt-batch", [*CORRUPT, "--batch-size", "0", "--out", "cco"], "batch size", allowed=("cco",)),
    Case(
        "grid-seed-string", ["sweep", "grid.toml"], "seed", _grid(replace=("seeds = [0]", 'seeds = ["abc"]'))
    ),
    Case(
        "grid-seed-negative", ["sweep", "grid.toml"], "seed", _grid(replace=("seeds = [0]", "seeds = [-1]"))
    ),
    Case(
        "grid-method-int",
        ["sweep", "grid.toml"],
        "names",
        _grid(replace=('methods = ["plain"]', "methods = [1]")),
    ),
    Case("grid-runs-table", ["sweep", "grid.toml"], "[[runs]]", _grid(replace=("[[runs]]", "[runs]"))),
    Case(
        "grid-defaults-int", ["sweep", "grid.toml"], "defaults must be", _write("grid.toml", "defaults = 5\n")
    ),
    Case(
        "grid-vary-string",
        ["sweep", "grid.toml"],
        "vary.corruption",
        _grid('vary = {corruption = "noise"}\n'),
    ),
    Case("grid-vary-table", ["sweep", "grid.toml"], "vary.x", _grid("vary = {x = [{a = 1}]}\n")),
    Case(
        "grid-n_train-negative",
        ["sweep", "grid.toml"],
        "n_train",
        _grid(replace=("n_train = 64", "n_train = -1990")),
    ),
    Case("grid-epochs-zero", ["sweep", "grid.toml"], "epochs", _grid(replace=("epochs = 1", "epochs = 0"))),
    Case(
        "grid-epochs-bool", ["sweep", "grid.toml"], "epochs", _grid(replace=("epochs = 1", "epochs = true"))
    ),
    Case(
        "grid-archs-not-list",
        ["sweep", "grid.toml"],
        "archs",
        _grid(replace=('archs = ["test_tiny"]', 'archs = "test_tiny"')),
    ),
]


@pytest.mark.parametrize("case", VALUES, ids=[c.id for c in VALUES])
def test_bad_values(case, world, tmp_path, capsys, monkeypatch):
    run_case(case, world, tmp_path, capsys, monkeypatch)


# ----------------------------------------------------------------------------- bad files

FILES = [
    Case(
        "recipe-not-utf8",
        train_argv("new", "--recipe", "recipe.toml"),
        "utf-8",
        _write("recipe.toml", b"\xff\xfe[train]\n"),
    ),
    Case("grid-not-utf8", ["sweep", "grid.toml"], "utf-8", _write("grid.toml", b"\xff\xfe[defaults]\n")),
    Case("grid-not-toml", ["sweep", "grid.toml"], "not valid toml", _write("grid.toml", "[[runs]\n")),
    Case("cifar-c-manifest-list", EVAL_C, "not a json object", _write("cc/manifest.json", "[]")),
    Case(
        "corrupt-manifest-list",
        [*CORRUPT, "--out", "cc"],
        "not a json object",
        _write("cc/manifest.json", "[1, 2]"),
    ),
    Case("cifar-c-labels-mismatch", EVAL_C, "differs from the clean test labels", _labels_shuffled),
    Case("checkpoint-no-model", EVAL, "'model' entry", _drop("model")),
    Case("checkpoint-no-state_dict", EVAL, "state_dict", _drop("state_dict")),
    Case("checkpoint-wrong-shape", EVAL, "does not match architecture", _state(_wrong_shape)),
    Case("checkpoint-missing-tensors", EVAL, "does not match architecture", _state(_missing_tensors)),
    Case("checkpoint-non-finite", EVAL, "nan or infinite", _state(_poison)),
    Case("checkpoint-malicious-pickle", EVAL, "refusing checkpoint", _evil),
    Case("checkpoint-truncated", EVAL, "cannot read checkpoint", _truncate),
    Case("checkpoint-not-a-dict", EVAL, "not a robustbench-aux checkpoint", _ckpt(lambda c: [1, 2])),
    Case(
        "resume-no-optimizer",
        train_argv("run", "--set", "batch_size=32", "--resume"),
        "lacks optimizer",
        _resume_without("optimizer"),
    ),
    Case(
        "resume-no-generator",
        train_argv("run", "--set", "batch_size=32", "--resume"),
        "lacks generator",
        _resume_without("generator"),
    ),
    Case("config-json-list", EVAL, "not a json object", _write("run/config.json", "[]")),
    Case("config-json-not-utf8", EVAL, "not valid json", _write("run/config.json", b"\xff{}")),
    Case(
        "classes-json-string",
        CORRUPT_ARRAYS,
        "class names",
        _array_layout('"abc"'),
    ),
    Case(
        "classes-json-objects",
        CORRUPT_ARRAYS,
        "class names",
        _array_layout('[{"a": 1}]'),
    ),
    Case(
        "per-image-corrupt",
        ["report", "evruns", "-o", "rep"],
        "per_image",
        _write(f"evruns/{RUN}/eval/per_image/clean.npy", b"garbage"),
        allowed=("rep",),
    ),
    Case(
        "summary-json-list",
        ["export", "evruns", "-o", "exp", "--allow-nonstandard"],
        "not a json object",
        _write(f"evruns/{RUN}/eval/summary.json", "[]"),
    ),
    Case(
        "check-spec-bad-type",
        ["check", "--spec", "spec.toml", "--data", "."],
        "must be a str",
        _write("spec.toml", "[check]\ndataset = 5\nn_test = 10\ncorruptions = []\nmetrics = []\n"),
    ),
    Case(
        "check-spec-not-toml",
        ["check", "--spec", "spec.toml", "--data", "."],
        "not valid toml",
        _write("spec.toml", "[check\n"),
    ),
    Case(
        "check-spec-missing",
        ["check", "--spec", "spec.toml", "--data", "."],
        "missing key",
        _write("spec.toml", "[check]\n"),
    ),
]


@pytest.mark.parametrize("case", FILES, ids=[c.id for c in FILES])
def test_bad_files(case, world, tmp_path, capsys, monkeypatch):
    run_case(case, world, tmp_path, capsys, monkeypatch)


# ----------------------------------------------------------------------------- bad paths

PATHS = [
    Case("train-out-is-file", train_argv("grid.toml"), "not a directory"),
    Case("train-out-dev-null", train_argv("/dev/null"), "not a directory"),
    Case("train-out-below-file", train_argv("grid.toml/sub"), "not a directory"),
    Case("train-out-non-run-dir", train_argv("cc"), "not a run directory"),
    Case("eval-out-is-file", [*EVAL, "--out", "grid.toml"], "not a directory"),
    Case("eval-out-dev-null", [*EVAL, "--out", "/dev/null"], "not a directory"),
    Case("corrupt-out-is-file", [*CORRUPT, "--out", "grid.toml"], "not a directory"),
    Case("report-out-is-file", ["report", "evruns", "-o", "grid.toml"], "not a directory"),
    Case("export-out-is-file", ["export", "evruns", "-o", "grid.toml", "--allow-nonstandard"], "file exists"),
    Case("export-out-dev-null", ["export", "evruns", "-o", "/dev/null", "--allow-nonstandard"], "/dev/null"),
    Case("sweep-grid-missing", ["sweep", "nope.toml"], "does not exist"),
    Case("sweep-grid-is-dir", ["sweep", "cc"], "directory"),
    Case("recipe-missing", train_argv("new", "--recipe", "nope.toml"), "does not exist"),
]


@pytest.mark.parametrize("case", PATHS, ids=[c.id for c in PATHS])
def test_bad_paths(case, world, tmp_path, capsys, monkeypatch):
    run_case(case, world, tmp_path, capsys, monkeypatch)


# ----------------------------------------------------------------------------- traversal attempts

TRAVERSAL = [
    Case(
        "grid-vary-value",
        ["sweep", "grid.toml"],
        "cannot be used in a file name",
        _grid('vary = {amp = ["/../../../../x"]}\n'),
    ),
    Case(
        "grid-vary-slash",
        ["sweep", "grid.toml"],
        "cannot be used in a file name",
        _grid('vary = {amp = ["a/b"]}\n'),
    ),
    Case(
        "grid-vary-nul",
        ["sweep", "grid.toml"],
        "vary.amp holds a control character (U+0000 NUL)",
        _grid('vary = {amp = ["a\\u0000"]}\n'),
    ),
    Case(
        "grid-method",
        ["sweep", "grid.toml"],
        "cannot be used in a file name",
        _grid(replace=('methods = ["plain"]', 'methods = ["../../../x"]')),
    ),
    Case(
        "grid-arch",
        ["sweep", "grid.toml"],
        "cannot be used in a file name",
        _grid(replace=('archs = ["test_tiny"]', 'archs = ["../../x"]')),
    ),
    Case("sweep-archs-flag", ["sweep", "grid.toml", "--archs", "../../x"], "cannot be used in a file name"),
    Case(
        "export-run-id",
        ["export", "evruns", "-o", "exp", "--allow-nonstandard"],
        "cannot be used in a file name",
        _results_column("run_id", "../../../x"),
    ),
    Case(
        "export-run-id-absolute",
        ["export", "evruns", "-o", "exp", "--allow-nonstandard"],
        "cannot be used in a file name",
        _results_column("run_id", "/tmp/x"),
    ),
    Case(
        "report-arch",
        ["report", "evruns", "-o", "rep"],
        "cannot be used in a file name",
        _results_column("arch", "../../../x"),
    ),
    Case(
        "evaluate-checkpoint-run-id", EVAL, "cannot be used in a file name", _config_run_id("../../../../x")
    ),
    Case(
        "export-symlink-out",
        ["export", "evruns", "-o", "exp", "--allow-nonstandard"],
        "outside the output directory",
        _symlink_out,
    ),
]


@pytest.mark.parametrize("case", TRAVERSAL, ids=[c.id for c in TRAVERSAL])
def test_traversal_attempts(case, world, tmp_path, capsys, monkeypatch):
    run_case(case, world, tmp_path, capsys, monkeypatch)
    assert not any(p.name.startswith("x") for p in tmp_path.rglob("x*")), "a traversal target was written"


def test_battery_size():
    """The figure docs/reliability.md reports."""
    assert len(VALUES) + len(FILES) + len(PATHS) + len(TRAVERSAL) >= 80


def test_world_is_sound(world, tmp_path, capsys, monkeypatch):
    """The cases fail for the reason they name: on the untouched world the same commands work."""
    monkeypatch.chdir(world)
    assert json.loads((world / "run" / "config.json").read_text())["run_id"] == "run"
    from robustbench_aux import cli

    assert (
        cli.main(["export", "evruns", "-o", str(tmp_path / "exp"), "--allow-partial", "--allow-nonstandard"])
        == 0
    )
    assert cli.main([*EVAL_C, "--out", str(tmp_path / "ev")]) == 0
