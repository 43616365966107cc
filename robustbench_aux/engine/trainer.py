"""The training loop: device-resident uint8 data, batched views, SGD with step decay, resumable.

Reproducibility: the model is initialised under ``torch.manual_seed(seed)``; every data-side
random draw (epoch permutation, crop/flip, corruption parameters) comes from one
``torch.Generator`` on the device whose state is saved in ``last.pt`` after every epoch, together
with the model, the optimizer and the metrics so far. Resuming therefore continues the exact
random stream; on the CPU (deterministic kernels) a resumed run ends with the same weights as an
uninterrupted one.

DDP: every rank holds the whole uint8 training set, draws the same global batch and the same views
(same generator seed), and trains on its slice of it (``batch_size / world_size`` images), so the
data stream does not depend on the number of processes. Metrics are summed over ranks; only
rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from robustbench_aux import lock as run_lock
from robustbench_aux.checkpoint import load_checkpoint, nonfinite_tensors, save_checkpoint
from robustbench_aux.config import (
    RunConfig,
    protocol_deviations,
    resolved_amp,
    resolved_channels_last,
    resolved_sbn_passes,
    resolved_switches,
)
from robustbench_aux.engine import distributed as D
from robustbench_aux.engine.inputs import StepBuffers
from robustbench_aux.engine.setup import build_run, epoch_steps, lr_at_step, step_position
from robustbench_aux.engine.train_output import check_out_dir, check_resumable, write_config, write_metrics
from robustbench_aux.errors import NonFiniteError, UserError
from robustbench_aux.infra.devices import resolve_device
from robustbench_aux.infra.versioning import code_version
from robustbench_aux.rundir import FINAL_PT, LAST_PT, RunDir

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What ``train`` did: the run directory, a status, the epochs it ran and all metrics rows."""

    out: Path
    status: str  # "trained" | "already finished"
    epochs_run: int
    rows: list[dict]
    is_main: bool = True  # False on DDP ranks other than 0 (they print nothing)


class NonFiniteLoss(NonFiniteError):
    """A loss term or the model state became NaN or infinite (the run stops with exit status 3;
    last.pt keeps the last epoch whose parameters and buffers were all finite)."""


def train(
    cfg: RunConfig,
    *,
    data_root: str | Path | None,
    out: str | Path,
    device: str = "auto",
    resume: bool = False,
) -> TrainResult:
    """Train ``cfg`` into the run directory ``out`` (see docs/design.md for its files)."""
    out = Path(out)
    device = resolve_device(device)
    dist = D.init_distributed(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    try:
        check_out_dir(out)
        # one writer per run directory (rank 0 writes; the lock is released however the process ends)
        with run_lock.exclusive(out, "--out") if dist.is_main else contextlib.nullcontext():
            if RunDir(out).final.is_file():
                check_resumable(out, cfg.to_dict(), action="already finished")
                log.info("%s already holds a finished run (final.pt); nothing to do", out)
                return TrainResult(out, "already finished", 0, [], dist.is_main)
            if RunDir(out).last.is_file() and not resume:
                raise UserError(
                    f"{out} holds an unfinished run (last.pt); pass --resume to continue it or choose a new --out"
                )
            with _tf32(cfg.train.tf32 and device.type == "cuda"):
                return _Trainer(cfg, data_root, out, device, dist, resume).run()
    finally:
        D.shutdown(dist)


@contextlib.contextmanager
def _tf32(allow: bool):
    """TF32 matmuls and cuDNN convolutions on or off for the run (torch allows TF32 in cuDNN by
    default: a true fp32 run must switch it off); the previous flags are restored afterwards."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(allow)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


class _Trainer:
    def __init__(
        self, cfg: RunConfig, data_root, out: Path, device: torch.device, dist: D.DistInfo, resume: bool
    ):
        self.cfg, self.out, self.device, self.dist = cfg, out, device, dist
        t = cfg.train
        if t.batch_size % dist.world_size:
            raise UserError(f"batch_size {t.batch_size} does not split over {dist.world_size} processes")
        run = build_run(cfg, data_root, device)
        self.data, self.method, self.model, self.model_kwargs = (
            run.data,
            run.method,
            run.model,
            run.model_kwargs,
        )
        self.channels_last = resolved_channels_last(t, device.type) == "on"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.buffers = StepBuffers(channels_last=self.channels_last)  # the step's batch, reused
        if t.sbn_passes not in ("auto", "single", "per_view"):
            raise UserError(f"sbn_passes must be auto, single or per_view, got {t.sbn_passes!r}")
        self.model.sbn_passes = resolved_sbn_passes(t, device.type)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=t.lr,
            momentum=t.momentum,
            weight_decay=t.weight_decay,
            nesterov=t.nesterov,
            **self._sgd_kernels(t.optimizer_impl, device),
        )
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed)
        self.start_epoch, self.rows = 0, []
        self.config = self._config_dict(run.normalization)
        if resume and RunDir(out).last.is_file():
            self._restore()
        elif resume:
            log.info("--resume: %s has no last.pt; starting from epoch 1", out)
        self.net = self._wrap(self.model)
        # the training set on the device as one uint8 NCHW tensor (50k CIFAR images = 150 MB)
        self.train_x = torch.from_numpy(np.array(self.data.train_x)).permute(0, 3, 1, 2).contiguous()
        self.train_x = self.train_x.to(device)
        # a copy: the labels may be a read-only memory map, which torch.from_numpy would share
        self.train_y = torch.from_numpy(np.array(self.data.train_y, np.int64)).to(device)

    # ------------------------------------------------------------------ setup helpers

    @staticmethod
    def _sgd_kernels(impl: str, device: torch.device) -> dict:
        """SGD keyword arguments for ``train.optimizer_impl`` (the same update, other kernels)."""
        if impl == "default":
            return {}
        if impl == "fused":
            if device.type != "cuda":
                raise UserError("optimizer_impl=fused needs a CUDA device; use default or foreach")
            return {"fused": True}
        if impl in ("foreach", "for_loop"):
            return {"foreach": impl == "foreach"}
        raise AssertionError(impl)  # TrainConfig.validate admits only the four values

    def _config_dict(self, normalization: dict) -> dict:
        cfg = self.cfg.to_dict()
        resolved = resolved_switches(self.cfg, self.device.type)
        speed = ("train.amp", "train.tf32", "train.channels_last")
        return {
            "run_id": self.out.name,
            **{
                k: cfg[k]
                for k in ("method", "arch", "dataset", "seed", "recipe", "recipe_status", "description")
            },
            "num_classes": self.data.num_classes,
            "epochs": self.cfg.train.epochs,
            "normalization": normalization,
            "data": self.data.describe(),
            "code_version": code_version(),
            "train": cfg["train"],
            "model": cfg["model"],
            "options": cfg["options"],
            "model_kwargs": self.model_kwargs,
            "world_size": self.dist.world_size,
            "device": self.device.type,
            "threads": torch.get_num_threads(),  # CPU threads (speed; the last bits of float sums)
            "recipe_source": self.cfg.source,
            # --epochs: the recipe's epoch points rescaled from its epochs (None: not rescaled)
            "schedule_scaling": self.cfg.schedule_scaling,
            # every protocol switch of the recipe's source, resolved for this device, and the ones
            # that differ from the source's value (a contract: reports show them; [] = none)
            "protocol": {k: resolved[k] for k in (*self.cfg.reference, *speed) if k in resolved},
            "deviations": protocol_deviations(self.cfg.reference, resolved),
        }

    def _wrap(self, model):
        net = model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)
        if self.cfg.train.compile:
            mode = self.cfg.train.compile_mode
            net = torch.compile(net, mode=None if mode == "default" else mode)
        return net

    def _restore(self) -> None:
        check_resumable(self.out, self.config)
        path = self.out / LAST_PT
        ckpt = load_checkpoint(path, map_location=self.device)
        missing = [k for k in ("optimizer", "generator", "epoch", "metrics") if k not in ckpt]
        if missing:
            raise UserError(f"{path} cannot be resumed: it lacks {', '.join(missing)}; choose a new --out")
        bad = nonfinite_tensors(ckpt["state_dict"])
        if bad:
            raise UserError(
                f"{path} holds NaN/inf tensors (e.g. {bad[0]}); it cannot be resumed, choose a new --out"
            )
        try:
            self.model.load_state_dict(ckpt["state_dict"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.generator.set_state(ckpt["generator"].cpu())
            self.start_epoch = int(ckpt["epoch"])
            self.rows = list(ckpt["metrics"])
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[-1].strip()[:160]
            raise UserError(
                f"{path} does not match this run's model or optimizer ({type(exc).__name__}: {first}); "
                "choose a new --out"
            ) from None
        log.info("resuming %s after epoch %d of %d", self.out, self.start_epoch, self.cfg.train.epochs)

    def _autocast(self):
        if resolved_amp(self.cfg.train, self.device.type) == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _save(self, name: str, epoch: int) -> None:
        if not self.dist.is_main:
            return
        extra = {}
        if name == LAST_PT:
            extra = {
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "metrics": self.rows,
            }
        save_checkpoint(
            self.out / name,
            arch=self.cfg.arch,
            model_kwargs=self.model_kwargs,
            state_dict=self.model.state_dict(),
            config=self.config,
            epoch=epoch,
            **extra,
        )

    def _check_state(self, name: str, epoch: int) -> None:
        """Before writing ``name``: stop if a parameter or buffer is NaN/inf (last.pt keeps the last
        finite epoch; save_checkpoint would refuse the write anyway)."""
        bad = nonfinite_tensors(self.model.state_dict())
        if self.dist.enabled:  # every rank stops together
            flag = torch.tensor(float(bool(bad)), device=self.device)
            D.all_reduce_sum(flag, self.dist)
            bad = bad or (["another rank's model"] if flag.item() else [])
        if bad:
            kept = self.rows[-1]["epoch"] if self.rows else 0
            raise NonFiniteLoss(
                f"the model state became NaN or infinite in epoch {epoch} ({len(bad)} tensor(s), e.g. "
                f"{', '.join(bad[:3])}); training stopped without writing {name}, "
                f"{RunDir(self.out).last} keeps the last finite epoch ({kept}); lower the learning rate "
                "(--set lr=...) or warm it up (--set warmup_epochs=1)"
            )

    # ------------------------------------------------------------------ the loop

    def run(self) -> TrainResult:
        """Train from ``start_epoch`` to the end, checkpointing after every epoch."""
        t = self.cfg.train
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_config(self.out, self.config)
            write_metrics(self.out, self.rows)
            if self.start_epoch == 0:
                self._save(LAST_PT, 0)  # a good checkpoint exists before the first step
        if "unverified" in self.cfg.recipe_status:
            log.warning("recipe %s is UNVERIFIED: %s", self.cfg.recipe, self.cfg.description)
        log.info(
            "training %s / %s on %s (%d images, %d classes) for %d epochs on %s",
            self.cfg.method,
            self.cfg.arch,
            self.cfg.dataset,
            len(self.train_y),
            self.data.num_classes,
            t.epochs,
            self.device,
        )
        for epoch in range(self.start_epoch, t.epochs):
            row = self._epoch(epoch)
            self._check_state(LAST_PT, epoch + 1)
            self.rows.append(row)
            self._save(LAST_PT, epoch + 1)
            if self.dist.is_main:
                write_metrics(self.out, self.rows)
            log.info(
                "epoch %d/%d  loss %.4f  train_acc %.4f  lr %.4g  %.0f img/s",
                epoch + 1,
                t.epochs,
                row["loss"],
                row["train_acc"],
                row["lr"],
                row["images_per_s"],
            )
        self._check_state(FINAL_PT, t.epochs)
        self._save(FINAL_PT, t.epochs)
        D.barrier(self.dist)
        return TrainResult(self.out, "trained", t.epochs - self.start_epoch, self.rows, self.dist.is_main)

    def _epoch(self, epoch: int) -> dict:
        t, dist = self.cfg.train, self.dist
        self._epoch_index = epoch
        self.net.train()
        n = len(self.train_y)
        # "dataset enlargement" methods train on (k + 1) * n items per epoch: item i is view i // n of image i % n
        mult = self.method.epoch_multiplier()
        # items trained this epoch: all n * mult, or a fresh random subset (step_budget = as_plain)
        items = self.method.epoch_items(n)
        batch = min(t.batch_size, items - items % dist.world_size)
        steps = epoch_steps(items, batch, t.drop_last, dist.world_size)
        lr = lr_at_step(t, epoch, 0, steps, warmup=False)  # the scheduled lr (metrics column)
        perm = torch.randperm(n * mult, generator=self.generator, device=self.device)[:items]
        sums: dict[str, torch.Tensor] = {}
        correct = torch.zeros((), device=self.device)
        start = time.perf_counter()
        bar = tqdm(
            range(steps),
            desc=f"epoch {epoch + 1}/{t.epochs}",
            leave=False,
            disable=None if dist.is_main else True,
        )
        seen = images = 0  # items (training images or enlarged-dataset items) and views trained on
        graphs = t.compile and t.compile_mode == "reduce-overhead"
        self._bad = None  # the first non-finite step of this epoch, kept on the device (finite_check=epoch)
        for step in bar:
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at_step(t, epoch, step, steps)
            idx = perm[step * batch : (step + 1) * batch]
            # the last batch may be partial: each rank takes its share (sizes differ by at most one)
            lo, hi = dist.rank * len(idx) // dist.world_size, (dist.rank + 1) * len(idx) // dist.world_size
            seen += len(idx)
            kinds = {"kinds": idx // n} if mult > 1 else {}
            src = idx % n
            views = self.method.views(self.buffers.gather(self.train_x, src), self.generator, **kinds)
            images += len(idx) * len(views)
            y = self.train_y[src[lo:hi]]
            # each view converted to [0, 1] on its own (methods may mix uint8 and float views, AugMix)
            # straight into the reused input buffer: no per-step float copies, concatenation or
            # layout copy (engine/inputs.py); it is rewritten only after this step's backward
            inputs = self.buffers.assemble(views, lo, hi)
            with self._autocast():
                result = self.method.loss(self.net, inputs, len(views), y, step_position(epoch, step, steps))
            if t.finite_check == "step":
                self._check_finite(result, epoch, step)
            else:
                self._note_finite(result, step)
            self.optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                sums["loss"] = sums.get("loss", 0) + result.loss.detach().float()
                for k, v in result.terms.items():
                    sums[k] = sums.get(k, 0) + v.float()
                correct += (result.logits.argmax(1) == y).sum()
            if bar.disable and dist.is_main and t.log_every and (step + 1) % t.log_every == 0:
                log.info("epoch %d step %d/%d loss %.4f", epoch + 1, step + 1, steps, result.loss.item())
        if self._bad is not None:
            self._raise_first_bad(epoch)
        seconds = time.perf_counter() - start
        names = list(sums)
        totals = torch.stack([sums[k] for k in names] + [correct.float()])
        D.all_reduce_sum(totals, dist)
        totals = totals.tolist()
        # the scheduled lr at the epoch's first and last step (they differ when a milestone falls inside it)
        row = {"epoch": epoch + 1, "lr": lr, "lr_last": lr_at_step(t, epoch, steps - 1, steps, warmup=False)}
        # losses: mean over steps and ranks; accuracy over every clean training image seen
        row.update({k: v / (steps * dist.world_size) for k, v in zip(names, totals)})
        row["train_acc"] = totals[-1] / seen
        row.update(self.method.epoch_info(step_position(epoch, steps - 1, steps)))  # at the last step
        row["steps"] = steps
        row["images"] = images  # every view counted (an auxiliary step trains on k + 1 per image)
        row["images_per_s"] = seen / seconds
        row["seconds"] = seconds
        return row

    @staticmethod
    def _loss_values(result) -> tuple[list[str], torch.Tensor]:
        names = list(result.terms) + ["loss"]
        values = torch.stack(
            [v.detach().float() for v in result.terms.values()] + [result.loss.detach().float()]
        )
        return names, values

    def _note_finite(self, result, step: int) -> None:
        """Record the first step with a non-finite loss term without reading anything to the host
        (no synchronisation inside the epoch); :meth:`_raise_first_bad` reads it once at the end.
        Training after a non-finite step changes nothing written: the epoch then stops before any
        checkpoint, with the message the per-step check would have given."""
        names, values = self._loss_values(result)
        if self._bad is None or self._bad[0] != names:
            if self._bad is not None:  # the loss terms changed shape: settle what is pending first
                self._raise_first_bad(self._epoch_index)
            self._bad = (
                names,
                torch.full((), -1, dtype=torch.long, device=values.device),
                torch.zeros_like(values),
            )
        _, first, saved = self._bad
        new = (~torch.isfinite(values)).any() & (first < 0)
        first.copy_(torch.where(new, torch.full_like(first, step), first))
        saved.copy_(torch.where(new, values, saved))

    def _raise_first_bad(self, epoch: int) -> None:
        names, first, saved = self._bad
        bad = (first >= 0).float()
        if self.dist.enabled:
            D.all_reduce_sum(bad, self.dist)  # every rank stops together
        if not bad.item():
            return
        step = int(first.item())
        if step < 0:  # another rank saw it
            raise NonFiniteLoss(
                f"non-finite loss at epoch {epoch + 1} on another process; training stopped "
                f"and {RunDir(self.out).last} keeps the last good epoch"
            )
        values = saved.tolist()
        i = next(j for j, v in enumerate(values) if not np.isfinite(v))
        self._non_finite(epoch, step, names[i], values[i])

    def _non_finite(self, epoch: int, step: int, name: str, value: float) -> None:
        raise NonFiniteLoss(
            f"non-finite loss at epoch {epoch + 1}, step {step + 1}: term {name!r} = {value}; "
            f"training stopped and {RunDir(self.out).last} keeps the last good epoch "
            f"({self.rows[-1]['epoch'] if self.rows else 0}); lower the learning rate (--set lr=...) "
            "or warm it up (--set warmup_epochs=1)"
        )

    def _check_finite(self, result, epoch: int, step: int) -> None:
        """Stop with a UserError naming the step and the first non-finite loss term."""
        names, values = self._loss_values(result)
        bad = (~torch.isfinite(values)).float()
        if self.dist.enabled:
            D.all_reduce_sum(bad, self.dist)  # every rank stops together
        if bad.any().item():
            i = int(bad.nonzero()[0])
            self._non_finite(epoch, step, names[i], values[i].item())
