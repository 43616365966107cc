"""Evaluation: the one-call API on any nn.Module, run directories, resume after a kill, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_runs import CIFAR10_NORM, TinyEvalCNN, save_tiny_run, write_cifar_c

from robustbench_aux.cli import main
from robustbench_aux.evaluation import Normalized, evaluate, evaluate_run, load_per_image, read_results
from robustbench_aux.evaluation import api as eval_api
from robustbench_aux.metrics import COLUMNS

N = 50  # images per block: enough to exercise every path, fast on 2 cores


@pytest.fixture(scope="module")
def cifar_c(cifar10, tmp_path_factory):
    d = tmp_path_factory.mktemp("cifar10c")
    return write_cifar_c(
        d, cifar10.test_x[:N], cifar10.test_y[:N], ("gaussian_noise", "contrast", "speckle_noise")
    )


@pytest.fixture()
def run_dir(tmp_path):
    return save_tiny_run(tmp_path / "run", seed=3)


def _reference_accuracy(model, x, y):
    with torch.no_grad():
        t = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).float() / 255
        return float((model(t).argmax(1).numpy() == y).mean())


def test_api_on_any_module(cifar10, cifar_c):
    torch.manual_seed(0)
    model = TinyEvalCNN(10).eval()
    res = evaluate(
        model, dataset=(cifar10.test_x[:80], cifar10.test_y[:80]), corruptions_dir=cifar_c, device="cpu"
    )
    t = res.table
    assert list(t.columns) == list(COLUMNS)
    assert len(t) == 1 + 3 * 5
    assert t.iloc[0][["corruption", "severity", "n"]].tolist() == ["clean", 0, 80]
    assert t.loc[t.corruption != "clean", "n"].eq(N).all()  # the CIFAR-C blocks hold 50 images
    assert t.iloc[0]["acc"] == pytest.approx(
        _reference_accuracy(model, cifar10.test_x[:80], cifar10.test_y[:80])
    )
    from robustbench_aux.datasets import CifarCReader

    b = CifarCReader(cifar_c).block("contrast", 4)
    row = t[(t.corruption == "contrast") & (t.severity == 4)].iloc[0]
    assert row["acc"] == pytest.approx(_reference_accuracy(model, b.images, b.labels))
    assert row["category"] == "digital"
    s = res.summary
    assert s["n_corruptions_15"] == 2 and s["n_corruptions_19"] == 3
    assert s["provenance"]["corruptions"]["provenance"] == "generated"
    assert s["provenance"]["corruptions"]["labels_match_test_set"] is True
    assert set(res.correct) == {(c, sv) for c, sv in zip(t.corruption, t.severity, strict=True)}


def test_the_three_steps_with_eval_options(cifar10, cifar_c):
    """plan_evaluation takes the shared options as one EvalOptions; the plan lists its corruption
    benchmarks; run_blocks + finish_evaluation give what evaluate gives."""
    torch.manual_seed(0)
    model = TinyEvalCNN(10).eval()
    data = (cifar10.test_x[:N], cifar10.test_y[:N])
    options = eval_api.EvalOptions(device="cpu", corruptions=["contrast"], severities=(2, 3), batch_size=16)
    plan = eval_api.plan_evaluation(model, data, cifar_c, options)
    assert [b.name for b in plan.benchmarks] == ["cifar-c"]
    assert plan.benchmark("cifar-c-bar") is None
    assert plan.blocks == [("clean", 0), ("contrast", 2), ("contrast", 3)]
    done = eval_api.run_blocks(plan)
    stepwise = eval_api.finish_evaluation(plan, done, started=0.0)
    once = evaluate(
        model, data, cifar_c, device="cpu", corruptions=["contrast"], severities=(2, 3), batch_size=16
    )
    pd.testing.assert_frame_equal(stepwise.table, once.table)
    assert stepwise.summary["provenance"]["corruptions"] == once.summary["provenance"]["corruptions"]


def test_evaluate_refuses_an_unknown_keyword(cifar10):
    with pytest.raises(TypeError, match="batchsize"):
        evaluate(TinyEvalCNN(10).eval(), (cifar10.test_x[:5], cifar10.test_y[:5]), batchsize=8)


def test_clean_only_without_corruptions(cifar10):
    torch.manual_seed(0)
    model = TinyEvalCNN(10).eval()
    res = evaluate(model, dataset=(cifar10.test_x[:30], cifar10.test_y[:30]), device="cpu", batch_size=7)
    assert res.table[["corruption", "severity", "n"]].values.tolist() == [["clean", 0, 30]]
    assert res.summary["mean_acc_15"] is None and res.summary["n_corruptions_15"] == 0
    assert res.summary["clean_acc"] == pytest.approx(
        _reference_accuracy(model, cifar10.test_x[:30], cifar10.test_y[:30])
    )


def test_explicit_normalization_for_foreign_models(cifar10):
    torch.manual_seed(1)
    inner = TinyEvalCNN(10, mean=(0, 0, 0), std=(1, 1, 1)).eval()  # expects normalized input
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    own = TinyEvalCNN(10, mean=mean, std=std).eval()
    own.load_state_dict({**inner.state_dict(), "mean": own.mean, "std": own.std})
    data = (cifar10.test_x[:64], cifar10.test_y[:64])
    a = evaluate(inner, dataset=data, normalization=(mean, std), device="cpu")
    b = evaluate(own, dataset=data, device="cpu")
    assert np.array_equal(a.correct[("clean", 0)], b.correct[("clean", 0)])
    assert a.summary["provenance"]["explicit_normalization"]["mean"] == list(mean)
    wrapped = Normalized(inner, mean, std)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(wrapped(x), own(x), atol=1e-6)


def test_run_directory_outputs(run_dir, cifar10_root, cifar_c):
    res = evaluate_run(run_dir, cifar_c, data_root=cifar10_root, n=N, device="cpu")
    table, summary = read_results(run_dir / "eval")
    pd.testing.assert_frame_equal(table, res.table, check_dtype=False)
    assert table["run_id"].unique().tolist() == ["plain-test_eval_cnn-s3"]
    assert table.loc[0, "n"] == N and table["seed"].eq(3).all()
    assert summary["clean_acc"] == pytest.approx(table.loc[0, "acc"])
    assert summary["mean_acc_15"] == pytest.approx(
        table[table.corruption.isin(["gaussian_noise", "contrast"])].acc.mean()
    )
    assert summary["mce"] == pytest.approx(1 - summary["mean_acc_15"])
    p = summary["provenance"]
    assert p["data"]["copy"] == "CIFAR-10 (JPEG-q75 copy)"
    assert p["corruptions"]["preset"] == "cifar" and p["corruptions"]["provenance"] == "generated"
    assert set(p["corruptions"]["verified_sha256"]) == {"gaussian_noise", "contrast", "speckle_noise"}
    assert p["run_normalization"] == CIFAR10_NORM  # statistics come from the run, recorded as used
    assert p["code_version"].startswith("0.1.0") and len(p["checkpoint_sha256"]) == 64
    ci = summary["bootstrap_95"]["clean_acc"]
    assert ci["low"] <= summary["clean_acc"] <= ci["high"]
    per_image = load_per_image(run_dir / "eval")
    assert len(per_image) == 16 and per_image[("clean", 0)].shape == (N,)


def test_reference_run_gives_normalized_mce(tmp_path, cifar10_root, cifar_c, monkeypatch):
    ref = save_tiny_run(tmp_path / "plain", seed=0)
    evaluate_run(ref, cifar_c, data_root=cifar10_root, n=N, device="cpu")
    other = save_tiny_run(tmp_path / "other", seed=1, method="augmix")
    writes = []
    real_write = eval_api.write_results
    monkeypatch.setattr(eval_api, "write_results", lambda *a: writes.append(a[2]) or real_write(*a))
    res = evaluate_run(other, cifar_c, data_root=cifar10_root, n=N, device="cpu", reference=ref)
    assert len(writes) == 1 and writes[0]["reference_run"] == "plain-test_eval_cnn-s0"  # written once
    s = json.loads((other / "eval" / "summary.json").read_text())
    assert s["reference_run"] == "plain-test_eval_cnn-s0"
    assert s["mce_normalized"] == pytest.approx(res.summary["mce_normalized"])
    same = evaluate_run(ref, cifar_c, data_root=cifar10_root, n=N, device="cpu", reference=ref)
    assert same.summary["mce_normalized"] == pytest.approx(1.0)


def test_resume_after_kill_gives_the_same_csv(tmp_path, cifar10_root, cifar_c, monkeypatch):
    a = save_tiny_run(tmp_path / "a", seed=5)
    b = save_tiny_run(tmp_path / "b", seed=5)
    evaluate_run(a, cifar_c, data_root=cifar10_root, n=N, device="cpu")  # uninterrupted

    real = eval_api.predict_scores
    calls = {"n": 0}

    def dies_after_six_blocks(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt  # what a Ctrl-C or kill mid-block leaves behind
        return real(*args, **kwargs)

    monkeypatch.setattr(eval_api, "predict_scores", dies_after_six_blocks)
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(b, cifar_c, data_root=cifar10_root, n=N, device="cpu")
    stored = list((b / "eval" / "per_image").glob("*.npy"))
    assert len([f for f in stored if "." not in f.stem]) == 6  # correctness of 6 blocks
    assert len([f for f in stored if f.stem.endswith(".confidence")]) == 6  # and their calibration
    assert not (b / "eval" / "results.csv").exists()

    calls["n"] = -100  # no more interruptions; count the blocks computed on resume
    res = evaluate_run(b, cifar_c, data_root=cifar10_root, n=N, device="cpu")
    assert calls["n"] == -100 + 10  # only the 10 unfinished blocks of 16 were computed
    assert res.summary["timing"]["images_evaluated_now"] == 10 * N
    assert (a / "eval" / "results.csv").read_text() == (b / "eval" / "results.csv").read_text()


def test_changed_weights_are_not_mixed_with_old_blocks(tmp_path, cifar10_root, cifar_c):
    from robustbench_aux.errors import UserError

    run = save_tiny_run(tmp_path / "r", seed=0)
    evaluate_run(run, cifar_c, data_root=cifar10_root, n=N, device="cpu")
    before = (run / "eval" / "results.csv").read_text()
    save_tiny_run(run, seed=1)  # retrained: new weights in the same run directory
    with pytest.raises(UserError, match="different evaluation.*--restart"):
        evaluate_run(run, cifar_c, data_root=cifar10_root, n=N, device="cpu")
    assert (run / "eval" / "results.csv").read_text() == before  # nothing lost
    evaluate_run(run, cifar_c, data_root=cifar10_root, n=N, device="cpu", restart=True)
    assert (run / "eval" / "results.csv").read_text() != before


def test_checkpoint_file_writes_beside_it_or_to_out(tmp_path, cifar10_root, cifar_c):
    run = save_tiny_run(tmp_path / "r", seed=0)
    loose = tmp_path / "weights.pt"
    loose.write_bytes((run / "final.pt").read_bytes())
    evaluate_run(loose, cifar_c, data_root=cifar10_root, n=N, device="cpu", corruptions=["contrast"])
    assert (tmp_path / "weights_eval" / "results.csv").is_file()
    out = tmp_path / "elsewhere"
    evaluate_run(loose, cifar_c, data_root=cifar10_root, n=N, device="cpu", out=out, severities=[1, 5])
    assert len(pd.read_csv(out / "results.csv")) == 1 + 3 * 2


def test_cli_evaluate(run_dir, cifar10_root, cifar_c, capsys):
    rc = main(
        [
            "evaluate",
            str(run_dir),
            "--corruptions",
            str(cifar_c),
            "--data",
            str(cifar10_root),
            "--n",
            str(N),
            "--device",
            "cpu",
            "--corruption-names",
            "gaussian_noise,contrast",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "clean_acc" in out and "mean_acc_15" in out and str(run_dir / "eval") in out
    written = pd.read_csv(run_dir / "eval" / "results.csv")
    assert len(written) == 11
    assert {"ece", "rmsce", "nll", "brier"} <= set(written.columns) and written["ece"].notna().all()
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    ece = summary["calibration"]["ece"]
    assert f"ECE        {ece['clean']:.4f} / {ece['mean_15']:.4f}" in out
    assert "11 of 11 blocks recorded" in out


def test_cli_evaluate_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--help"])
    assert exc.value.code == 0
    assert "--corruptions" in capsys.readouterr().out


KILLED_RUN = """
import sys
sys.path.insert(0, {tests!r})
from fixtures_runs import register_test_model
register_test_model()
from robustbench_aux.cli import main
args = ["evaluate", {run!r}, "--corruptions", {cdir!r}, "--data", {data!r}, "--n", "{n}", "--device", "cpu"]
sys.exit(main(args))
"""


def test_resume_after_sigkill(tmp_path, cifar10_root, cifar_c):
    """A real SIGKILL of a CLI evaluation mid-way; the rerun gives the uninterrupted CSV."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    slow = save_tiny_run(tmp_path / "slow", seed=2, delay_s=0.15)  # 0.15 s per block: room to kill mid-way
    ref = save_tiny_run(tmp_path / "ref", seed=2)  # same weights, no delay: the uninterrupted result
    code = KILLED_RUN.format(
        tests=str(Path(__file__).parent), run=str(slow), cdir=str(cifar_c), data=str(cifar10_root), n=N
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    blocks = slow / "eval" / "per_image"
    deadline = time.time() + 60

    def finished() -> int:  # correctness files (the calibration quantities beside them are <block>.<q>.npy)
        return len([f for f in blocks.glob("*.npy") if "." not in f.stem])

    while time.time() < deadline and finished() < 4 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = finished()
    assert 4 <= done < 16, f"kill landed after {done} blocks"
    assert not (slow / "eval" / "results.csv").exists()

    res = evaluate_run(slow, cifar_c, data_root=cifar10_root, n=N, device="cpu")
    assert res.summary["timing"]["images_evaluated_now"] == (16 - done) * N
    evaluate_run(ref, cifar_c, data_root=cifar10_root, n=N, device="cpu")
    assert (slow / "eval" / "results.csv").read_text() == (ref / "eval" / "results.csv").read_text()
