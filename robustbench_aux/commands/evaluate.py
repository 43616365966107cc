"""``robustbench-aux evaluate``: clean and CIFAR-C accuracy and calibration of a run, a checkpoint or any model.

Evaluates the clean test set of the run's dataset and every (corruption, severity) block of the
CIFAR-C directory, batched on the device, and writes ``<run>/eval/results.csv`` (tidy long table)
and ``<run>/eval/summary.json``; beside each block's accuracy, its ECE, RMS calibration error, NLL and
Brier score (docs/metrics.md). Finished blocks are kept in ``<run>/eval/per_image/`` (and their
per-image calibration scores beside them, ``<block>.confidence.npy``, ``.nll.npy``, ``.brier.npy``): rerunning
the same command after a kill continues where it stopped.

Any other model: ``--model PKG.MODULE:FACTORY`` (with ``--weights FILE``, ``--model-arg KEY=VALUE``),
``--model FILE.pt2`` (torch.export) or ``FILE.pt`` (TorchScript), or ``--model
robustbench:cifar100/<name>`` (needs the robustbench package), with ``--dataset``; it is written
like a run into ``--out`` (default runs/external/<name>): config.json plus eval/.
"""

from __future__ import annotations

import argparse

from robustbench_aux.datasets.loading import ENV_VAR
from robustbench_aux.errors import UserError, comma_list


def _severities(text: str) -> list[int]:
    try:
        return [int(t) for t in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"severities must be integers 1..5 separated by commas, got {text!r}"
        ) from None


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run (or checkpoint) on the clean test set and a CIFAR-C directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", nargs="?", help="run directory (holding final.pt or last.pt) or a checkpoint file")
    g = p.add_argument_group("any other model (instead of RUN)")
    g.add_argument(
        "--model",
        metavar="SPEC",
        help="PKG.MODULE:FACTORY (e.g. torchvision.models:resnet18), FILE.pt2 (torch.export), "
        "FILE.pt (TorchScript) or robustbench:<cifar10|cifar100>/<name>",
    )
    g.add_argument("--weights", metavar="FILE", help="state dict loaded into the factory's model (strict)")
    g.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument of the factory (repeatable), e.g. num_classes=10",
    )
    g.add_argument(
        "--normalize",
        metavar="MEAN,STD|none",
        default="none",
        help="input statistics the model expects: none (images in [0, 1], the default), cifar10, cifar100, "
        "imagenet, or six numbers MEAN_R,MEAN_G,MEAN_B,STD_R,STD_G,STD_B",
    )
    g.add_argument(
        "--dataset", help="test set of the model: cifar10, cifar100 or synthetic<K> (needed with --model)"
    )
    g.add_argument("--name", help="run id of the model's results (default: the factory or file name)")
    p.add_argument(
        "--corruptions",
        metavar="DIR",
        action="append",
        help="CIFAR-C directory (published or generated layout) or CIFAR-C-bar directory (corrupt --preset "
        "cifar10-c-bar); repeat it to evaluate one of each in one run; omit for the clean test set only",
    )
    p.add_argument("--data", help=f"data root holding the clean test set (default: ${ENV_VAR}, then ./data)")
    p.add_argument("--n", type=int, help="evaluate only the first N images of every block (default: all)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument(
        "--threads", type=int, help="CPU threads (default: torch's, i.e. $OMP_NUM_THREADS or all cores)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per forward pass (default: 256 on CPU; on CUDA sized to the device memory, 1024 per "
        "16 GiB in 1024-8192); halved and retried when a batch runs out of CUDA memory",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="autocast precision of the forward pass (default: fp32)",
    )
    p.add_argument(
        "--corruption-names",
        type=comma_list,
        metavar="A,B",
        help="only these corruptions (default: all present)",
    )
    p.add_argument(
        "--severities",
        type=_severities,
        default=[1, 2, 3, 4, 5],
        metavar="1,2,..",
        help="severities to evaluate (default: 1,2,3,4,5)",
    )
    p.add_argument(
        "--reference",
        metavar="RUN",
        help="an evaluated run (e.g. plain training of the same "
        "architecture and seed) for normalized and relative mCE in the summary",
    )
    p.add_argument(
        "--out", help="evaluation directory (default: <run>/eval, or <checkpoint>_eval/ beside a file)"
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard stored blocks of a different evaluation in the output directory",
    )
    p.add_argument(
        "--no-verify", action="store_true", help="skip checking CIFAR-C files against manifest sha256"
    )
    p.set_defaults(func=run)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


MODEL_ONLY = ("weights", "model_arg", "dataset", "name")


def _num(x, digits: int = 4) -> str:
    return "not recorded" if x is None else f"{x:.{digits}f}"


def _calibration_lines(cal: dict | None) -> list[str]:
    """The summary's calibration as printed lines: clean and the 15-corruption mean per metric."""
    if not cal:
        return ["  calibration  not recorded"]
    recorded = f"{cal['blocks_recorded']} of {cal['blocks']} blocks recorded"
    lines = [f"  calibration  clean / mean over the 15 ({cal['n_bins']} bins; {recorded})"]
    for key, name in (("ece", "ECE"), ("rmsce", "RMS cal."), ("nll", "NLL"), ("brier", "Brier")):
        m = cal[key]
        lines.append(f"    {name:<10} {_num(m['clean'])} / {_num(m['mean_15'])}")
    return lines


def _evaluate_model(args: argparse.Namespace, common: dict):
    from robustbench_aux.evaluation.external import evaluate_external, parse_model_args, parse_normalization

    if args.reference:
        raise UserError("--reference goes with a run of this suite, not with --model")
    if not args.dataset:
        raise UserError("--model needs --dataset (cifar10, cifar100 or synthetic<K>): the test set to use")
    return evaluate_external(
        args.model,
        args.dataset,
        args.corruptions,
        out=args.out,
        name=args.name,
        weights=args.weights,
        model_args=parse_model_args(args.model_arg),
        normalization=parse_normalization(args.normalize),
        data_root=args.data,
        **common,
    )


def run(args: argparse.Namespace) -> int:
    from robustbench_aux.errors import UserError
    from robustbench_aux.evaluation import evaluate_run
    from robustbench_aux.infra.devices import set_threads

    set_threads(args.threads)
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    bad = [s for s in args.severities if not 1 <= s <= 5]
    if bad:
        raise UserError(f"--severities must be in 1..5, got {bad[0]}")

    common = dict(
        n=args.n,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        corruptions=args.corruption_names,
        severities=args.severities,
        restart=args.restart,
        verify=not args.no_verify,
    )
    if (args.run is None) == (args.model is None):
        raise UserError("give either a RUN (directory or checkpoint) or --model SPEC, not both or neither")
    if args.model is not None:
        res = _evaluate_model(args, common)
    else:
        given = [f"--{k.replace('_', '-')}" for k in MODEL_ONLY if getattr(args, k)]
        if given or args.normalize not in ("none", None):
            raise UserError(f"{', '.join(given) or '--normalize'} go(es) with --model, not with a RUN")
        res = evaluate_run(
            args.run, args.corruptions, data_root=args.data, out=args.out, reference=args.reference, **common
        )
    s = res.summary
    c = s["provenance"]["corruptions"]
    seed = f"seed {s['seed']}, " if s["seed"] >= 0 else ""
    print(f"{s['run_id']}  ({s['label']}, {s['arch']}, {seed}{s['dataset']})")
    print(f"  clean_acc    {_pct(s['clean_acc'])}  (n={s['n_clean']})")
    if c.get("provenance"):
        print(f"  mean_acc_15  {_pct(s['mean_acc_15'])}  ({s['n_corruptions_15']}/15 corruptions present)")
        print(f"  mean_acc_19  {_pct(s['mean_acc_19'])}  ({s['n_corruptions_19']}/19 corruptions present)")
        print(f"  mCE          {_pct(s['mce'])}  (unnormalized, CIFAR convention)")
        if s.get("mce_normalized") is not None:
            print(f"  mCE_norm     {100 * s['mce_normalized']:.2f} %  vs {s['reference_run']}")
        preset = c.get("preset") or "unknown"
        print(f"  corruptions  {c['provenance']} ({preset} preset), n={s['n_per_block']} per block")
    bar = s.get("c_bar")
    if bar:
        print(
            f"  C-bar mean   {_pct(bar['mean_acc'])}  ({bar['n_corruptions']}/10 CIFAR-C-bar corruptions), "
            f"mCE {_pct(bar['mce'])}"
        )
    for line in _calibration_lines(s.get("calibration")):
        print(line)
    ips = s["timing"].get("images_per_second")
    speed = f", {ips:,.0f} images/s" if ips else ""
    print(f"  wrote {res.out_dir}/results.csv and summary.json ({s['timing']['seconds']:.1f} s{speed})")
    return 0
