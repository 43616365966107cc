"""Calibration under corruption: hand-computed values (docs/metrics.md's worked example), the edge
cases, the device path in float32 under autocast, and evaluation keeping accuracy bit-identical."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_runs import TinyEvalCNN, save_tiny_run, write_cifar_c

from robustbench_aux.evaluation import evaluate, evaluate_run, read_results
from robustbench_aux.evaluation.predict import image_scores, predict_labels, predict_scores
from robustbench_aux.metrics.calibration import (
    CALIBRATION_COLUMNS,
    N_BINS,
    bin_index,
    block_calibration,
    bootstrap_ece_blocks,
    calibration_errors,
    calibration_frame,
    calibration_summary,
    reliability,
    scores_from_probabilities,
)
from robustbench_aux.metrics.tidy import ACCURACY_COLUMNS, block_rows, check_table

# docs/metrics.md, "Worked example": four images, three classes
EXAMPLE_P = np.array([[0.90, 0.05, 0.05], [0.88, 0.10, 0.02], [0.20, 0.70, 0.10], [0.50, 0.30, 0.20]])
EXAMPLE_Y = np.array([0, 1, 1, 2])


def _example():
    correct = EXAMPLE_P.argmax(1) == EXAMPLE_Y
    return correct, scores_from_probabilities(EXAMPLE_P, EXAMPLE_Y)


def test_worked_example_by_hand():
    correct, scores = _example()
    assert correct.tolist() == [True, False, True, False]
    m = block_calibration(correct, scores)
    # bins (of 15): 0.90 and 0.88 in (13/15, 14/15] (acc 0.5, conf 0.89), 0.70 in (10/15, 11/15],
    # 0.50 in (7/15, 8/15]
    assert m["ece"] == pytest.approx(0.5 * 0.39 + 0.25 * 0.30 + 0.25 * 0.50, abs=1e-6)  # 0.395
    assert m["rmsce"] == pytest.approx(math.sqrt(0.5 * 0.39**2 + 0.25 * 0.30**2 + 0.25 * 0.50**2), abs=1e-6)
    nll = -(math.log(0.90) + math.log(0.10) + math.log(0.70) + math.log(0.20)) / 4
    assert m["nll"] == pytest.approx(nll, abs=1e-6)  # 1.0935
    brier = (0.015 + 1.5848 + 0.14 + 0.98) / 4
    assert m["brier"] == pytest.approx(brier, abs=1e-6)  # 0.67995
    rel = reliability(correct, scores[:, 0])
    assert rel["n"].tolist() == [0] * 7 + [1, 0, 0, 1, 0, 0, 2, 0]
    assert rel["acc"].isna().sum() == N_BINS - 3  # empty bins: no accuracy, and they add nothing


def test_bins_are_right_closed_and_one_falls_in_the_last():
    assert bin_index(np.array([1.0, 14 / 15 + 1e-9, 0.5, 1e-6])).tolist() == [14, 14, 7, 0]
    edges = np.linspace(0, 1, N_BINS + 1)
    assert bin_index(edges[1:]).tolist() == list(range(N_BINS))  # an edge belongs to the bin below it


def test_all_correct_and_confident_is_perfectly_calibrated():
    p = np.eye(3)[[0, 1, 2, 1]]
    m = block_calibration(np.ones(4, bool), scores_from_probabilities(p, [0, 1, 2, 1]))
    assert m == {"ece": 0.0, "rmsce": 0.0, "nll": 0.0, "brier": 0.0}
    # all correct at confidence 0.8: one bin, accuracy 1, confidence 0.8
    p = np.array([[0.8, 0.1, 0.1]] * 5)
    m = block_calibration(np.ones(5, bool), scores_from_probabilities(p, [0] * 5))
    assert m["ece"] == pytest.approx(0.2) and m["rmsce"] == pytest.approx(0.2)
    assert m["nll"] == pytest.approx(-math.log(0.8)) and m["brier"] == pytest.approx(0.06)


def test_one_hot_confident_wrong_from_logits():
    logits = torch.tensor([[100.0, 0.0, 0.0], [0.0, 100.0, 0.0]])
    labels = torch.tensor([1, 2])
    scores = image_scores(logits, labels).numpy()
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores[:, 0], 1.0)
    np.testing.assert_allclose(scores[:, 1], 100.0, rtol=1e-6)  # −ln p_y = 100 (finite: from log-softmax)
    np.testing.assert_allclose(scores[:, 2], 2.0, atol=1e-6)  # the largest Brier score
    m = block_calibration(np.zeros(2, bool), scores)
    assert m["ece"] == pytest.approx(1.0) and m["rmsce"] == pytest.approx(1.0)
    assert m["brier"] == pytest.approx(2.0) and m["nll"] == pytest.approx(100.0)
    # from probabilities exactly one-hot on the wrong class, the NLL is infinite, never 0
    assert (
        block_calibration(np.zeros(1, bool), scores_from_probabilities(np.eye(3)[[0]], [1]))["nll"]
        == math.inf
    )


def test_empty_block_and_missing_scores_are_nan_not_zero():
    assert all(math.isnan(v) for v in calibration_errors(np.zeros(0, bool), np.zeros(0)))
    m = block_calibration(np.ones(3, bool), None)
    assert set(m) == set(CALIBRATION_COLUMNS) and all(math.isnan(v) for v in m.values())


def test_device_scores_match_the_definition_and_stay_float32_under_autocast():
    torch.manual_seed(0)
    logits = torch.randn(64, 10) * 4
    labels = torch.randint(0, 10, (64,))
    ref = scores_from_probabilities(torch.softmax(logits.double(), 1).numpy(), labels.numpy())
    np.testing.assert_allclose(image_scores(logits, labels).numpy(), ref, rtol=1e-5, atol=1e-6)
    low = logits.to(torch.bfloat16)  # what a bf16 forward returns: scored in float32 from those logits
    got = image_scores(low, labels)
    assert got.dtype == torch.float32
    ref = scores_from_probabilities(torch.softmax(low.double(), 1).numpy(), labels.numpy())
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_predict_scores_predictions_equal_predict_labels(cifar10, precision):
    torch.manual_seed(2)
    model = TinyEvalCNN(10).eval()
    x, y = cifar10.test_x[:70], cifar10.test_y[:70].astype(np.int64)
    labels = predict_labels(model, x, batch_size=16, device="cpu", precision=precision)
    pred, scores = predict_scores(model, x, y, batch_size=16, device="cpu", precision=precision)
    assert np.array_equal(pred, labels)
    assert scores.shape == (70, 3) and scores.dtype == np.float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        t = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).float() / 255
        logits = model(t.contiguous(memory_format=torch.channels_last))
    ref = scores_from_probabilities(torch.softmax(logits.double(), 1).numpy(), y)
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-5)


def test_bootstrap_ece_with_the_identity_resample_is_the_ece():
    correct, scores = _example()
    blocks_c = {("a", 1): correct, ("b", 1): correct[::-1].copy()}
    blocks_s = {("a", 1): scores, ("b", 1): scores}
    got = bootstrap_ece_blocks(blocks_c, blocks_s, np.arange(4)[None, :])
    want = np.mean([block_calibration(c, s)["ece"] for c, s in zip(blocks_c.values(), blocks_s.values())])
    assert got[0] == pytest.approx(want)
    twice = bootstrap_ece_blocks(blocks_c, blocks_s, np.array([[0, 0, 2, 2]]))
    assert twice[0] == pytest.approx(np.mean([0.5 * 0.1 + 0.5 * 0.3, 0.5 * 0.9 + 0.5 * 0.7]))


def test_old_tables_read_as_not_recorded(tmp_path):
    counts = [("clean", 0, 4, 2), ("fog", 1, 4, 1)]
    table = block_rows({"run_id": "r", "method": "plain", "seed": 0}, counts)
    old = table[list(ACCURACY_COLUMNS)].copy()  # a results.csv written before calibration existed
    checked = check_table(old)
    assert all(checked[c].isna().all() for c in CALIBRATION_COLUMNS)
    s = calibration_summary(checked)
    assert s["blocks_recorded"] == 0 and s["ece"]["clean"] is None and s["nll"]["mean_15"] is None
    frame = calibration_frame(checked)
    assert frame["clean_ece"].isna().all() and (frame["calibration_blocks_recorded"] == 0).all()


def test_evaluation_records_calibration_and_keeps_accuracy_bit_identical(tmp_path, cifar10, cifar10_root):
    n = 40
    cdir = write_cifar_c(tmp_path / "c", cifar10.test_x[:n], cifar10.test_y[:n], ("fog", "contrast"))
    run = save_tiny_run(tmp_path / "run", seed=4)
    res = evaluate_run(run, cdir, data_root=cifar10_root, n=n, device="cpu")
    t, summary = read_results(run / "eval")
    # accuracy: what the argmax-only path gives, block by block, written exactly as before
    from robustbench_aux.checkpoint import find_checkpoint, load_classifier
    from robustbench_aux.datasets import CifarCReader

    net, _ = load_classifier(find_checkpoint(run), device="cpu")
    reader = CifarCReader(cdir)
    counts = [("clean", 0, n, int((predict_labels(net, cifar10.test_x[:n]) == cifar10.test_y[:n]).sum()))]
    for c in ("fog", "contrast"):
        for s in range(1, 6):
            b = reader.block(c, s, n)
            counts.append((c, s, n, int((predict_labels(net, b.images) == b.labels).sum())))
    old = block_rows(t.iloc[0][["run_id", "dataset", "method", "arch", "seed"]].to_dict(), counts)
    old["label"] = t["label"].iloc[0]
    cols = list(ACCURACY_COLUMNS)
    assert t[cols].to_csv(index=False, float_format="%.6f") == old[cols].to_csv(
        index=False, float_format="%.6f"
    )
    # calibration: present for every block, in range, equal to the stored per-image scores' metrics
    assert t[list(CALIBRATION_COLUMNS)].notna().all().all()
    assert ((t["ece"] >= 0) & (t["ece"] <= 1) & (t["brier"] >= 0) & (t["brier"] <= 2)).all()
    clean = t[t["corruption"] == "clean"].iloc[0]
    want = block_calibration(res.correct[("clean", 0)], res.scores[("clean", 0)])
    assert clean["ece"] == pytest.approx(want["ece"], abs=1e-6)
    assert summary["calibration"]["blocks_recorded"] == 11
    assert summary["calibration"]["nll"]["clean"] == pytest.approx(want["nll"], abs=1e-6)


def test_resume_from_blocks_stored_before_calibration(tmp_path, cifar10, cifar10_root):
    n = 30
    cdir = write_cifar_c(tmp_path / "c", cifar10.test_x[:n], cifar10.test_y[:n], ("fog",))
    run = save_tiny_run(tmp_path / "run", seed=1)
    first = evaluate_run(run, cdir, data_root=cifar10_root, n=n, device="cpu")
    for f in (run / "eval" / "per_image").glob("fog_s*.*.npy"):  # as an older version left them
        f.unlink()
    assert len(list((run / "eval" / "per_image").glob("fog_s*.npy"))) == 5  # correctness kept
    again = evaluate_run(run, cdir, data_root=cifar10_root, n=n, device="cpu")
    assert again.summary["timing"]["images_evaluated_now"] == 0  # nothing recomputed
    t = again.table
    assert t["acc"].tolist() == first.table["acc"].tolist()
    assert t.loc[t.corruption == "fog", "ece"].isna().all()  # not recorded, never 0
    assert t.loc[t.corruption == "clean", "ece"].notna().all()
    cal = again.summary["calibration"]
    assert cal["blocks_recorded"] == 1 and cal["ece"]["mean_15"] is None
    written = pd.read_csv(run / "eval" / "results.csv")
    assert written.loc[written.corruption == "fog", "nll"].isna().all()


def test_any_module_api_has_calibration_columns(cifar10):
    torch.manual_seed(0)
    model = TinyEvalCNN(10).eval()
    res = evaluate(model, dataset=(cifar10.test_x[:20], cifar10.test_y[:20]), device="cpu")
    assert res.table[list(CALIBRATION_COLUMNS)].notna().all().all()
    assert res.scores[("clean", 0)].shape == (20, 3)
