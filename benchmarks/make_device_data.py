"""Copy a subset of the CIFAR-10 array layout small enough to travel to a GPU machine.

python benchmarks/make_device_data.py OUT_DIR [--data ../shared/data] [--n-train 6000] [--n-test 10000]

10,000 test images make the GPU check's generation and evaluation the full CIFAR-100-C size (48 MB in all).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustbench_aux.datasets import load_dataset, write_array_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--n-test", type=int, default=10000)
    a = p.parse_args()
    d = load_dataset("cifar10", a.data, n_train=a.n_train, n_test=a.n_test)
    target = write_array_dir(Path(a.out) / "cifar10", d)
    print(f"wrote {len(d.train_y)} train / {len(d.test_y)} test images to {target}")


if __name__ == "__main__":
    main()
