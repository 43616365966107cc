"""CPU speed switches of the training step, each measured before/after in one run.

    nice -n 5 python benchmarks/cpu_speed.py --arch resnet8 --data DIR [--reps 9] [--switches all]

For each switch and method (plain, auxiliary; ``--recipe reference`` steps as the engine runs them
on the CPU: batch 128, fp32, selective BN as per-view passes) two steps are built from the same
seed, "before" (the baseline: 1 intra-op thread, NCHW, torch's default SGD kernels, eager) and
"after" (the baseline with the one switch changed), and timed **alternately** call by call
(before, after, before, ...; ``--reps`` each, after two warm-ups), so a change in the machine's
load hits both alike; the table gives the medians and their ratio (speed-up = before / after).

Each switch's numerics are checked in the same run: both steps are rebuilt from the same seed,
``--check-steps`` steps are trained each way, and every parameter and buffer is compared
(``identical``: bit for bit; else the largest absolute difference).

Switches:

- ``threads2``: 2 intra-op threads instead of 1 (``torch.set_num_threads``);
- ``channels_last``: the model and its input batch in channels_last memory format (``train.channels_last``);
- ``foreach``: SGD's foreach kernels (``train.optimizer_impl = foreach``) instead of the CPU's per-parameter loop;
- ``compile``: ``torch.compile`` of the model (inductor; needs a C++ compiler) (``train.compile``);
- ``single_pass``: selective BN in one pass over all views instead of per-view passes (``train.sbn_passes``);
- ``bf16``: the forward pass under bf16 autocast, as the trainer runs it with ``train.amp = bf16``
  (``--combined bf16,channels_last`` times it with channels_last, the pair issue-free CPUs with
  bf16 units speed up most).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_profile import count_flops, load_images  # noqa: E402

from robustbench_aux.engine.inputs import StepBuffers  # noqa: E402
from robustbench_aux.methods import build_method  # noqa: E402
from robustbench_aux.models import build_model  # noqa: E402


@dataclass(frozen=True)
class Setting:
    threads: int = 1
    channels_last: bool = False
    optimizer_impl: str = "default"
    compile: bool = False
    sbn_passes: str = "per_view"
    amp: str = "off"


SWITCHES = {
    "threads2": {"threads": 2},
    "channels_last": {"channels_last": True},
    "foreach": {"optimizer_impl": "foreach"},
    "compile": {"compile": True},
    "single_pass": {"sbn_passes": "single"},
    "bf16": {"amp": "bf16"},
}


def build_step(arch: str, method_name: str, setting: Setting, images: torch.Tensor, seed: int = 0):
    """(step, model): the engine's CPU step under ``setting``, from ``seed``."""
    torch.set_num_threads(setting.threads)
    method = build_method(method_name)
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=10, **method.model_kwargs()).train()
    if setting.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.sbn_passes = setting.sbn_passes
    kernels = {} if setting.optimizer_impl == "default" else {"foreach": setting.optimizer_impl == "foreach"}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, **kernels)
    net = torch.compile(model) if setting.compile else model
    gen = torch.Generator().manual_seed(seed)
    buffers = StepBuffers(channels_last=setting.channels_last)
    batch = images.shape[0]
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(1))

    def step():
        torch.set_num_threads(setting.threads)
        views = method.views(images, gen)
        inputs = buffers.assemble(views, 0, batch)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=setting.amp == "bf16"):
            out = method.loss(net, inputs, len(views), y, 0)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    return step, model


def compare_state(a: torch.nn.Module, b: torch.nn.Module) -> tuple[bool, float]:
    sa, sb = a.state_dict(), b.state_dict()
    identical, worst = True, 0.0
    for k in sa:
        x, y = sa[k], sb[k]
        if not torch.equal(x, y):
            identical = False
            worst = max(worst, (x.double() - y.double()).abs().max().item())
    return identical, worst


def time_pair(before, after, reps: int) -> tuple[float, float]:
    for _ in range(2):
        before()
        after()
    tb, ta = [], []
    for _ in range(reps):
        for fn, times in ((before, tb), (after, ta)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(tb), 1e3 * statistics.median(ta)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet8")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--check-steps", type=int, default=3)
    p.add_argument("--methods", default="plain,auxiliary")
    p.add_argument("--switches", default="all", help=f"comma list of {', '.join(SWITCHES)}, or all")
    p.add_argument("--combined", default="", help="also time the baseline against these switches together")
    p.add_argument("--data", help="data root holding cifar10/ (real images; default random pixels)")
    args = p.parse_args(argv)
    images = load_images(args.data, args.batch)
    names = list(SWITCHES) if args.switches == "all" else args.switches.split(",")
    rows = []
    base = Setting()
    trials = [(n, replace(base, **SWITCHES[n])) for n in names]
    if args.combined:
        combo = {}
        for n in args.combined.split(","):
            combo.update(SWITCHES[n])
        trials.append(("+".join(args.combined.split(",")), replace(base, **combo)))
    flops = {m: count_flops(args.arch, m, args.batch, images) for m in args.methods.split(",")}
    for name, setting in trials:
        for method in args.methods.split(","):
            if setting.sbn_passes == "single" and method == "plain":
                continue  # plain training has one view: nothing to switch
            ident, worst = True, 0.0
            if args.check_steps:
                sb, mb = build_step(args.arch, method, base, images)
                sa, ma = build_step(args.arch, method, setting, images)
                for _ in range(args.check_steps):
                    sb()
                    sa()
                ident, worst = compare_state(mb, ma)
            before = build_step(args.arch, method, base, images)[0]
            after = build_step(args.arch, method, setting, images)[0]
            tb, ta = time_pair(before, after, args.reps)
            gflops = args.batch * flops[method] / ta / 1e6
            rows.append((name, method, tb, ta, tb / ta, gflops, ident, worst))
            print(
                f"{name:>14} {method:>9}: before {tb:8.1f} ms  after {ta:8.1f} ms  speed-up {tb / ta:5.2f}x  "
                f"({gflops:.1f} GFLOP/s)  {'identical' if ident else f'max |diff| {worst:.2e}'}",
                flush=True,
            )
    print(
        f"\n{args.arch}, batch {args.batch}, medians of {args.reps} alternated calls, "
        f"weights compared after {args.check_steps} steps\n"
    )
    print("| switch | method | before ms | after ms | speed-up | after: GFLOP/s | weights after the steps |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, method, tb, ta, r, g, ident, worst in rows:
        cell = "bit-identical" if ident else f"max abs diff {worst:.1e}"
        print(f"| `{name}` | {method} | {tb:,.1f} | {ta:,.1f} | {r:.2f}x | {g:.1f} | {cell} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
