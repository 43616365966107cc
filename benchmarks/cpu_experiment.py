"""A small real experiment on the CPU: plain vs naive augmentation vs auxiliary training.

Trains each method with the same seed and recipe on the real CIFAR-10 copy, then measures
top-1 accuracy on the first ``--n-test`` test images: clean, under each of the 4 reference
training corruptions (fixed generator seed, so every model sees the same corrupted images), and
under a few CIFAR-C corruptions at severity 3 when ``robustbench_aux.corruptions.corrupt_batch``
is available (skipped and reported as such otherwise). Writes ``results.json`` and ``results.md``
into ``--out``.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/cpu_experiment.py --data ../shared/data \\
        --out runs/cpu_experiment
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from robustbench_aux import cli
from robustbench_aux.checkpoint import load_classifier
from robustbench_aux.corruptions.training import REFERENCE_TRAIN_CORRUPTIONS, build_train_corruption
from robustbench_aux.datasets import load_dataset

CIFAR_C_FEW = ("gaussian_noise", "defocus_blur", "contrast", "fog", "jpeg_compression")
EVAL_SEED = 1234  # corrupted test images are drawn from this seed, the same for every model


@torch.no_grad()
def accuracy(model, x_uint8: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    correct = 0
    for i in range(0, len(y), batch):
        logits = model(x_uint8[i : i + batch].float() / 255.0)
        correct += int((logits.argmax(1) == y[i : i + batch]).sum())
    return correct / len(y)


def corrupted_test_sets(x: torch.Tensor) -> tuple[dict[str, torch.Tensor], str]:
    """name -> uint8 images; plus a note on what was skipped."""
    out = {}
    for spec in REFERENCE_TRAIN_CORRUPTIONS:
        g = torch.Generator().manual_seed(EVAL_SEED)
        out[f"train:{spec}"] = build_train_corruption(spec)(x, g)
    try:
        from robustbench_aux.corruptions import corrupt_batch
    except ImportError:
        return out, "CIFAR-C corruptions skipped: robustbench_aux.corruptions.corrupt_batch is not available"
    for name in CIFAR_C_FEW:
        g = torch.Generator().manual_seed(EVAL_SEED)
        out[f"cifar_c:{name}@3"] = corrupt_batch(x, name, 3, preset="cifar", generator=g)
    return out, ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--arch", default="resnet8")
    p.add_argument("--recipe", default="cpu_demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--methods", default="plain,naive_augmentation,auxiliary")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    out = Path(args.out)
    data = load_dataset("cifar10", args.data, n_test=args.n_test)
    x = torch.from_numpy(np.array(data.test_x)).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.asarray(data.test_y))
    tests, note = corrupted_test_sets(x)
    results = {
        "recipe": args.recipe,
        "arch": args.arch,
        "seed": args.seed,
        "n_test": len(y),
        "note": note,
        "data": data.describe(),
        "runs": {},
    }
    for method in args.methods.split(","):
        run_dir = out / method
        start = time.perf_counter()
        argv_train = [
            "train",
            "--method",
            method,
            "--recipe",
            args.recipe,
            "--arch",
            args.arch,
            "--dataset",
            "cifar10",
            "--data",
            args.data,
            "--seed",
            str(args.seed),
            "--out",
            str(run_dir),
            "--device",
            "cpu",
            "--resume",
        ]
        for o in args.overrides:
            argv_train += ["--set", o]
        if cli.main(argv_train) != 0:
            raise SystemExit(f"training {method} failed")
        model, config = load_classifier(run_dir)
        accs = {"clean": accuracy(model, x, y)}
        accs.update({name: accuracy(model, xc, y) for name, xc in tests.items()})
        train_names = [f"train:{s}" for s in REFERENCE_TRAIN_CORRUPTIONS]
        accs["mean_train_corruptions"] = float(np.mean([accs[n] for n in train_names]))
        c_names = [n for n in accs if n.startswith("cifar_c:")]
        if c_names:
            accs["mean_cifar_c"] = float(np.mean([accs[n] for n in c_names]))
        results["runs"][method] = {
            "acc": accs,
            "wall_s": time.perf_counter() - start,
            "epochs": config.get("epochs"),
        }
        (out / "results.json").write_text(json.dumps(results, indent=2))
    columns = list(next(iter(results["runs"].values()))["acc"])
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for method, r in results["runs"].items():
        lines.append(f"| {method} | " + " | ".join(f"{100 * r['acc'][c]:.2f}" for c in columns) + " |")
    (out / "results.md").write_text("\n".join(lines) + ("\n\n" + note if note else "") + "\n")
    print("\n".join(lines))
    if note:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
