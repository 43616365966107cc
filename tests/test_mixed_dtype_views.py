"""Regression: methods whose views mix uint8 and float tensors (AugMix) must train on [0, 1] inputs.

Before the fix the engine concatenated the views first, so the uint8 clean view became float 0..255
while the AugMix views were in [0, 1]: training looked fine, but the model was at chance in eval.
"""

import numpy as np
import torch

from robustbench_aux.checkpoint import load_classifier
from robustbench_aux.cli import main
from robustbench_aux.datasets import load_dataset


def test_augmix_model_is_accurate_in_eval_mode(tmp_path):
    out = tmp_path / "augmix"
    assert (
        main(
            [
                "train",
                "--method",
                "augmix",
                "--recipe",
                "smoke",
                "--arch",
                "test_tiny",
                "--dataset",
                "synthetic10",
                "--out",
                str(out),
                "--device",
                "cpu",
                "--epochs",
                "3",
                "--n-train",
                "1024",
            ]
        )
        == 0
    )
    model, _ = load_classifier(out)
    d = load_dataset("synthetic10", n_test=500)
    x = torch.from_numpy(np.asarray(d.test_x)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        acc = float((model(x).argmax(1).numpy() == d.test_y).mean())
    assert acc > 0.4, acc  # chance is 0.1; a correct run reaches about 0.65
