"""Where a CPU training step's time goes, and how much arithmetic it is (plain vs auxiliary).

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/cpu_profile.py --arch resnet8 [--data DIR] [--reps 15]
    python benchmarks/cpu_profile.py --flops-only --archs resnet8,resnet18

Three tables, for ``--recipe reference`` steps as the engine runs them on the CPU (batch 128,
fp32, NCHW, selective BN as per-view passes, torch's default SGD kernels):

1. **FLOPs** (``torch.utils.flop_counter.FlopCounterMode``): one step's forward + backward, every
   view and head, per training image, plain vs auxiliary, and their ratio. Only the operations the
   counter knows (convolutions, matmuls, linear layers) are counted; BN, ReLU, pooling and the
   training corruptions are not arithmetic it counts.
2. **Parts of the step**, each timed on its own (median of ``--reps`` calls, the parts alternated
   call by call so a change in machine load hits all of them alike): the view transforms
   (crop/flip, blur, noise, colour jitter, rotation), the assembly of the float batch, the
   backbone's forward + backward over all views (per-view passes, with selective BN's save/restore
   of the running statistics; and without it, so the difference is selective BN's own cost), the
   auxiliary heads' forward + backward on fixed features, the primary head and the loss terms,
   ``zero_grad`` + SGD, and the whole step; "rest" = whole step minus the parts (Python and
   dispatch between them).
3. **torch.profiler**: self CPU time per operator over ``--profile-steps`` whole steps, the top
   operators, and the share of the step spent in scopes named after the parts.

The machine may be shared with other processes: read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from robustbench_aux.engine.inputs import StepBuffers
from robustbench_aux.methods import build_method
from robustbench_aux.methods.crop_flip import apply_crop_flip, draw_crop_flip
from robustbench_aux.models import build_model
from robustbench_aux.models.selective_bn import multi_pass_reference


def make_step(arch: str, method_name: str, batch: int, images: torch.Tensor, seed: int = 0):
    """The engine's CPU step for ``method_name`` (as ``engine/trainer.py`` runs it), as a closure,
    with the pieces the part timings need."""
    method = build_method(method_name)  # the options' defaults are the reference recipe's
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=10, **method.model_kwargs()).train()
    model.sbn_passes = "per_view"  # the engine's CPU default
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    buffers = StepBuffers()
    x = images[:batch].contiguous()
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(1))

    def step():
        with torch.profiler.record_function("part: views"):
            views = method.views(x, gen)
        with torch.profiler.record_function("part: assemble"):
            inputs = buffers.assemble(views, 0, batch)
        with torch.profiler.record_function("part: forward + loss"):
            out = method.loss(model, inputs, len(views), y, 0)
        with torch.profiler.record_function("part: optimizer"):
            opt.zero_grad(set_to_none=True)
        with torch.profiler.record_function("part: backward"):
            out.loss.backward()
        with torch.profiler.record_function("part: optimizer"):
            opt.step()
        return out

    return step, method, model, opt, x, y, gen, buffers


def count_flops(arch: str, method_name: str, batch: int, images: torch.Tensor) -> float:
    """Forward + backward FLOPs of one step per training image."""
    step, method, model, opt, x, y, gen, buffers = make_step(arch, method_name, batch, images)
    views = method.views(x, gen)
    inputs = buffers.assemble(views, 0, batch)
    with FlopCounterMode(display=False) as counter:
        out = method.loss(model, inputs, len(views), y, 0)
        out.loss.backward()
    return counter.get_total_flops() / batch


def _median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def method_parts(arch: str, name: str, batch: int, images: torch.Tensor) -> tuple[dict, int]:
    """The parts of one ``name`` step as callables (see the module doc), and the number of views."""
    step, method, model, opt, x, y, gen, buffers = make_step(arch, name, batch, images)
    parts: dict[str, callable] = {}
    crop = lambda: apply_crop_flip(x, draw_crop_flip(batch, gen, x.device), 4)  # noqa: E731
    parts["view: crop/flip (per view)"] = crop
    transforms = method._view_transforms()
    for spec, t in zip(method.corruption_specs(), transforms):
        parts[f"view: {spec}"] = lambda t=t: t(x, gen)
    views = method.views(x, gen)
    parts["assemble float batch"] = lambda: buffers.assemble(views, 0, batch)
    inputs = buffers.assemble(views, 0, batch).clone()
    k = len(views)
    chunks = list(inputs.chunk(k))
    grad_feats = None

    def backbone(restore=True):
        nonlocal grad_feats
        model.zero_grad(set_to_none=True)
        if k == 1:
            feats = [model.features(inputs)]
        else:
            feats = multi_pass_reference(
                model.backbone, chunks, lambda m, i, v: model.features(v), restore=restore
            )
        f = torch.cat(feats)
        if grad_feats is None:
            grad_feats = torch.randn_like(f)
        f.backward(grad_feats)

    parts["backbone fwd+bwd (all views)"] = backbone
    if k > 1:
        parts["backbone fwd+bwd, no SBN restore"] = lambda: backbone(restore=False)
    with torch.no_grad():
        feats = model.features(inputs[:batch])
    feat_views = [feats.clone().requires_grad_(True) for _ in range(k)]

    def heads():
        model.zero_grad(set_to_none=True)
        zs = [h(f) for h, f in zip(model.aux_heads, feat_views[1:])]
        torch.autograd.backward([z.sum() for z in zs])

    def primary_and_loss():
        model.zero_grad(set_to_none=True)
        z0 = model.primary_head(feat_views[0])
        if k == 1:
            loss = F.cross_entropy(z0, y)
        else:
            zs = [z0] + [torch.randn(batch, 10, requires_grad=True) for _ in range(k - 1)]
            ces = [F.cross_entropy(z, y) for z in zs]
            target = F.softmax(z0.detach(), 1)
            isd = [-(target * F.log_softmax(z, 1)).sum(1).mean() for z in zs[1:]]
            loss = ces[0] + 0.05 * sum(ces[1:]) + 0.05 * sum(isd)
        loss.backward()

    if k > 1:
        parts["auxiliary heads fwd+bwd"] = heads
    parts["primary head + loss terms fwd+bwd"] = primary_and_loss
    step()  # momentum buffers exist from here on

    def optimizer():
        for q in model.parameters():
            if q.grad is None:
                q.grad = torch.zeros_like(q)
        opt.step()

    parts["SGD step"] = optimizer
    parts["whole step"] = step
    return parts, k


def part_timings(arch: str, batch: int, images: torch.Tensor, reps: int) -> dict[str, dict[str, float]]:
    """Median ms of each part, plain and auxiliary (see the module doc)."""
    out = {}
    for name in ("plain", "auxiliary"):
        parts, k = method_parts(arch, name, batch, images)
        times = {p: [] for p in parts}
        for fn in parts.values():  # warm-up
            fn()
        for _ in range(reps):
            for p, fn in parts.items():
                start = time.perf_counter()
                fn()
                times[p].append(time.perf_counter() - start)
        med = {p: _median_ms(t) for p, t in times.items()}
        med["view: crop/flip (all views)"] = med["view: crop/flip (per view)"] * k
        out[name] = med
    return out


def profile_table(arch: str, batch: int, images: torch.Tensor, steps: int, top: int) -> dict:
    """torch.profiler over ``steps`` whole steps per method: top operators by self CPU time, and
    the time inside each ``part:`` scope."""
    from torch.profiler import ProfilerActivity, profile

    result = {}
    for name in ("plain", "auxiliary"):
        step = make_step(arch, name, batch, images)[0]
        for _ in range(2):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        avg = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in avg)
        ops = sorted((e for e in avg if not e.key.startswith("part:")), key=lambda e: -e.self_cpu_time_total)
        scopes = {e.key: e.cpu_time_total for e in avg if e.key.startswith("part:")}
        calls = sum(e.count for e in avg if not e.key.startswith("part:"))
        result[name] = {
            "total_ms_per_step": total / 1e3 / steps,
            "ops_per_step": calls / steps,
            "top": [(e.key, e.self_cpu_time_total / 1e3 / steps, e.count // steps) for e in ops[:top]],
            "scopes_ms_per_step": {k: v / 1e3 / steps for k, v in scopes.items()},
        }
    return result


def load_images(data: str | None, n: int) -> torch.Tensor:
    if data:
        from robustbench_aux.datasets import load_dataset

        arr = np.array(load_dataset("cifar10", data).train_x[:n])
    else:
        arr = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet8")
    p.add_argument("--archs", default="resnet8,resnet18", help="architectures of the FLOP table")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--profile-steps", type=int, default=5)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", help="data root holding cifar10/ (real images; default random pixels)")
    p.add_argument("--flops-only", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    images = load_images(args.data, args.batch)

    print(f"## FLOPs per training image (forward + backward, every view; batch {args.batch})\n")
    print("| arch | plain MFLOP | auxiliary MFLOP | auxiliary / plain |")
    print("|---|---:|---:|---:|")
    flops = {}
    for arch in args.archs.split(","):
        f_plain = count_flops(arch, "plain", args.batch, images)
        f_aux = count_flops(arch, "auxiliary", args.batch, images)
        flops[arch] = (f_plain, f_aux)
        print(f"| {arch} | {f_plain / 1e6:,.1f} | {f_aux / 1e6:,.1f} | {f_aux / f_plain:.2f}x |")
    if args.flops_only:
        return 0

    print(
        f"\n## Parts of one step ({args.arch}, batch {args.batch}, {args.threads} thread(s); "
        f"median of {args.reps}, parts alternated)\n"
    )
    parts = part_timings(args.arch, args.batch, images, args.reps)
    names = list(dict.fromkeys([*parts["auxiliary"], *parts["plain"]]))
    print("| part | plain ms | auxiliary ms | share of the auxiliary step |")
    print("|---|---:|---:|---:|")
    whole = parts["auxiliary"]["whole step"]
    summed = (
        "view: crop/flip (all views)",
        "view: blur",
        "view: noise",
        "view: contrast",
        "view: rotation",
        "assemble float batch",
        "backbone fwd+bwd (all views)",
        "auxiliary heads fwd+bwd",
        "primary head + loss terms fwd+bwd",
        "SGD step",
    )
    for name in names:
        pl, au = parts["plain"].get(name), parts["auxiliary"].get(name)
        cell = lambda v: "–" if v is None else f"{v:,.1f}"  # noqa: E731
        share = "" if au is None or name == "view: crop/flip (per view)" else f"{100 * au / whole:.0f} %"
        print(f"| {name} | {cell(pl)} | {cell(au)} | {share} |")
    for m in ("plain", "auxiliary"):
        rest = parts[m]["whole step"] - sum(parts[m].get(n, 0.0) for n in summed)
        parts[m]["rest"] = rest
    print(
        f"| rest (whole step minus the parts) | {parts['plain']['rest']:,.1f} | "
        f"{parts['auxiliary']['rest']:,.1f} | {100 * parts['auxiliary']['rest'] / whole:.0f} % |"
    )
    ratio = parts["auxiliary"]["whole step"] / parts["plain"]["whole step"]
    f_plain, f_aux = flops.get(args.arch) or (
        count_flops(args.arch, "plain", args.batch, images),
        count_flops(args.arch, "auxiliary", args.batch, images),
    )
    print(
        f"\nauxiliary / plain step time {ratio:.2f}x (FLOP ratio {f_aux / f_plain:.2f}x); effective "
        f"GFLOP/s: plain {args.batch * f_plain / parts['plain']['whole step'] / 1e6:.1f}, auxiliary "
        f"{args.batch * f_aux / parts['auxiliary']['whole step'] / 1e6:.1f}"
    )

    print(f"\n## torch.profiler: self CPU time per operator, ms per step ({args.profile_steps} steps)\n")
    prof = profile_table(args.arch, args.batch, images, args.profile_steps, args.top)
    for m, r in prof.items():
        print(
            f"**{m}**: {r['total_ms_per_step']:,.1f} ms per step in {r['ops_per_step']:,.0f} operator calls; "
            + ", ".join(f"{k[6:]} {v:,.1f}" for k, v in r["scopes_ms_per_step"].items())
            + "\n"
        )
        print("| operator | ms per step | calls per step |")
        print("|---|---:|---:|")
        for key, ms, count in r["top"]:
            print(f"| `{key}` | {ms:,.2f} | {count} |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
