"""Evidence folders: the packed per-image format, export, and reports rendered from evidence alone.

The end-to-end part (reproduce reusing committed evidence, recomputing the page's tests and the
training curves from a real pipeline's evidence) is in tests/test_evidence_reproduce.py.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixtures_runs import write_fixture_run

from robustbench_aux.catalog import CLEAN, SEVERITIES
from robustbench_aux.cli import main
from robustbench_aux.errors import UserError
from robustbench_aux.evaluation import evidence
from robustbench_aux.evaluation.store import block_name
from robustbench_aux.infra.hashing import sha256_file

CORRUPTIONS = ("gaussian_noise", "shot_noise", "contrast", "defocus_blur", "fog")


def random_blocks(rng, sizes):
    keys = [(CLEAN, 0)] + [(c, s) for c in CORRUPTIONS for s in SEVERITIES]
    return {k: rng.random(sizes[i % len(sizes)]) < 0.6 for i, k in enumerate(keys)}


def test_packed_round_trip_any_length_and_same_bytes(tmp_path):
    rng = np.random.default_rng(0)
    correct = random_blocks(rng, [1, 7, 8, 9, 100, 0, 13])
    extras = {"confidence": {k: rng.random(len(v)).astype(np.float32) for k, v in correct.items()}}
    path = evidence.write_packed(tmp_path / "a.npz", evidence.PerImage(correct, extras))
    back = evidence.read_packed(path)
    assert set(back.correct) == set(correct)
    for k, v in correct.items():
        assert back.correct[k].dtype == np.bool_ and np.array_equal(back.correct[k], v)
        assert np.allclose(back.extras["confidence"][k], extras["confidence"][k], atol=1e-3)
    # the same arrays give the same file (a re-export of an unchanged run changes nothing in git)
    again = evidence.write_packed(tmp_path / "b.npz", evidence.PerImage(correct, extras))
    assert sha256_file(path) == sha256_file(again)
    # readable with numpy alone, as the module docstring describes
    with np.load(path, allow_pickle=False) as z:
        assert str(z["format"]) == evidence.PACKED_FORMAT
        names, n = list(z["blocks"]), z["n"]
        i = names.index("gaussian_noise_s3")
        start = int(((n[:i] + 7) // 8).sum())
        bits = np.unpackbits(z["correct"][start : start + (int(n[i]) + 7) // 8], count=int(n[i]))
        assert np.array_equal(bits.astype(bool), correct[("gaussian_noise", 3)])


def test_extra_quantities_leave_correctness_unchanged(tmp_path):
    rng = np.random.default_rng(1)
    correct = random_blocks(rng, [50])
    plain = evidence.pack(evidence.PerImage(correct))
    extras = {q: {k: rng.random(50) for k in correct} for q in ("confidence", "nll")}
    more = evidence.pack(evidence.PerImage(correct, extras))
    for key in ("format", "blocks", "n", "correct"):
        assert np.array_equal(plain[key], more[key])
    assert more["extra_nll"].dtype == np.float16 and len(more["extra_nll"]) == 50 * len(correct)
    with pytest.raises(ValueError, match="cover every block"):
        evidence.pack(evidence.PerImage(correct, {"nll": {(CLEAN, 0): np.zeros(50)}}))


def test_damaged_packed_file_is_one_line_error(tmp_path):
    path = tmp_path / "p.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="unreadable") as exc:
        evidence.read_packed(path)
    assert "\n" not in str(exc.value)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("blocks.npy", b"")
    with pytest.raises(UserError):
        evidence.read_packed(path)


def fixture_runs(root: Path, n: int = 120) -> list[Path]:
    runs = [
        write_fixture_run(root, label, "resnet18", seed, n=n, corruptions=CORRUPTIONS)
        for label in ("plain", "auxiliary", "naive_augmentation")
        for seed in (0, 1, 2)
    ]
    for r in runs:  # a checkpoint and a float per-image quantity, as a real run has
        (r / "final.pt").write_bytes(b"checkpoint bytes")
        for c, s in [(CLEAN, 0)] + [(c, s) for c in CORRUPTIONS for s in SEVERITIES]:
            np.save(
                r / "eval" / "per_image" / f"{block_name(c, s)}.confidence.npy", np.full(n, 0.5, np.float32)
            )
    return runs


def csv_tables(report: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(report.glob("*.csv"))}


def test_report_from_evidence_alone_gives_the_same_tables(tmp_path, capsys):
    runs = fixture_runs(tmp_path / "runs")
    assert main(["report", str(tmp_path / "runs"), "-o", str(tmp_path / "from_runs")]) == 0
    ev = ["export-evidence", str(tmp_path / "runs"), "-o", str(tmp_path / "ev")]
    assert main([*ev, "--extras", "confidence"]) == 0
    out = capsys.readouterr().out
    assert out.count("wrote ") == len(runs) + 1  # the report, then one line per evidence folder
    folders = sorted((tmp_path / "ev").iterdir())
    assert [f.name for f in folders] == sorted(r.name for r in runs)
    for f in folders:
        files = sorted(str(p.relative_to(f)) for p in f.rglob("*") if p.is_file())
        assert files == [
            "config.json",
            "eval/per_image.npz",
            "eval/results.csv",
            "eval/summary.json",
            "evidence.json",
            "metrics.csv",
        ]
        manifest = json.loads((f / "evidence.json").read_text())
        assert manifest["extras"] == ["confidence"] and manifest["blocks"] == 1 + 5 * len(CORRUPTIONS)
    # a new machine: no run directories
    for r in runs:
        for p in sorted(r.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    args = ["report", *map(str, folders), "-o", str(tmp_path / "from_evidence")]
    assert main(args) == 0
    a, b = csv_tables(tmp_path / "from_runs"), csv_tables(tmp_path / "from_evidence")
    assert a == b and "significance.csv" in a and len(a) >= 9
    # the folder holding them stands for all of them, like a sweep's output folder
    assert main(["report", str(tmp_path / "ev"), "-o", str(tmp_path / "again")]) == 0
    assert csv_tables(tmp_path / "again") == a


def test_changed_missing_or_incomplete_evidence_is_refused(tmp_path, capsys):
    run = fixture_runs(tmp_path / "runs")[0]
    folder = evidence.export(run, tmp_path / "ev" / run.name)
    results = folder / "eval" / "results.csv"
    results.write_text(results.read_text().replace("0.", "0.9", 1))
    assert main(["report", str(folder), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not match its sha256" in err and "results.csv" in err
    evidence.export(run, folder)  # refreshed from its run: readable again
    assert main(["report", str(folder), "-o", str(tmp_path / "r")]) == 0
    (folder / "evidence.json").unlink()  # an interrupted export
    assert main(["report", str(folder), "-o", str(tmp_path / "r")]) == 2
    assert "incomplete evidence folder" in capsys.readouterr().err


def test_export_refuses_another_run_and_unevaluated_runs(tmp_path):
    plain, aux = fixture_runs(tmp_path / "runs")[0], fixture_runs(tmp_path / "runs")[3]
    folder = evidence.export(plain, tmp_path / "ev" / "x")
    assert json.loads((folder / "evidence.json").read_text())["extras"] == []  # only when asked for
    with pytest.raises(UserError, match="has no per-image 'nll'.*it has confidence"):
        evidence.export(plain, tmp_path / "ev" / "z", extras=["nll"])
    before = sha256_file(folder / "eval" / "per_image.npz")
    with pytest.raises(UserError, match="evidence of another run"):
        evidence.export(aux, folder)
    assert sha256_file(folder / "eval" / "per_image.npz") == before and evidence.is_complete(folder)
    (plain / "eval" / "per_image" / "fog_s2.npy").unlink()
    with pytest.raises(UserError, match="fog_s2 are missing"):
        evidence.export(plain, tmp_path / "ev" / "y")
    (plain / "eval" / "summary.json").unlink()
    with pytest.raises(UserError, match="not a trained and evaluated run"):
        evidence.export(plain, tmp_path / "ev" / "y")


def test_config_difference_compares_identity_only():
    a = {"method": "auxiliary", "seed": 0, "train": {"epochs": 8, "amp": "bf16"}, "code_version": "x"}
    assert evidence.config_difference(a, {**a, "code_version": "y", "device": "cuda"}) is None
    assert evidence.config_difference(a, {**a, "train": {"epochs": 8}}) is None  # a key added later
    assert (
        evidence.config_difference(a, {**a, "train": {"epochs": 8, "amp": "off"}})
        == "train.amp ('bf16' vs 'off')"
    )
    assert evidence.config_difference(a, {**a, "seed": 1}) == "seed (0 vs 1)"
