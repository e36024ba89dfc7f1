"""The training engine: one recipe in, one run directory out.

Run directory: `recipe.yaml` (resolved), `metrics.jsonl`, `state.pt` (optimizer, EMA, step;
for `--resume`), `model.safetensors` (student, timm key names and rebuild metadata),
`ema.safetensors` with EMA on, and at the end `summary.json`; `run.json` lists them with
their sha256 (see `rundir`), checked before `--resume` reads any. Every file but
`metrics.jsonl` is written atomically (temporary file, fsync, rename); `metrics.jsonl` is
appended and fsynced line by line. A checkpoint is taken after each epoch. Epoch e's data order, augmentation,
mixing and dropout draw from seeds derived from (seed, e), so a run resumed after a kill
reaches on CPU the same weights as one never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.checkpoint import (
    load_state,
    state_bytes,
    weights_bytes,
    weights_metadata,
)
from distill.data import Batch, Data, Mixer, augment_batch, build_data, derive_seed
from distill.errors import OptionError, RunError, UsageError
from distill.hub import write_config
from distill.losses import build as build_loss
from distill.readers import read_json
from distill.recipe import Recipe, check_paths, dump_recipe
from distill.registry import LOSSES
from distill.teacher import Teacher, TeacherRef

from . import dist, interrupt
from .evaluate import evaluate_model, evaluate_teacher
from .optim import EMA, LRSchedule, build_optimizer, peak_lr
from .report import LogReporter, MetricsLog, Reporter
from .rundir import RunDir, stopped_note
from .runtime import Runtime, autocast, resolve_runtime
from .setup import build_student_for, build_teacher_for, check_teacher

__all__ = [
    "TrainResult", "train", "train_step",
]


@dataclass
class TrainResult:
    out: Path
    summary: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)


def train_step(model: nn.Module, loss_fn: nn.Module, teacher: Any,
               optimizer: torch.optim.Optimizer, batch: Batch, rt: Runtime,
               clip_grad: float | None = None) -> dict[str, torch.Tensor]:
    """One optimizer step on a batch already on the device (and mixed, if mixing is on):
    teacher targets, student forward, loss, backward, step. Returns the loss and its parts.
    `distill speed` times this very function."""
    x = batch.images
    if rt.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(rt.device, rt.dtype):
        t_logits = teacher.targets(batch) if teacher is not None else None
        parts = loss_fn.parts(model(x), batch.labels, t_logits)
    optimizer.zero_grad(set_to_none=True)
    parts["loss"].backward()
    if clip_grad is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    optimizer.step()
    return parts


class _Trainer:
    def __init__(self, recipe: Recipe, out: Path, rt: Runtime, reporter: Reporter,
                 run_dir: RunDir | None = None):
        self.recipe, self.out, self.rt, self.reporter = recipe, out, rt, reporter
        self.run_dir = run_dir or RunDir(out, "new")
        self.run_dir.write = rt.main  # rank 0 writes; every rank holds the same weights
        r = recipe
        self.teacher: Teacher | None = None
        if r.teacher.name is not None and LOSSES.facts(r.loss.name).needs_teacher:
            self.teacher = build_teacher_for(r, rt)
        elif r.teacher.name is not None:
            reporter.note(f"loss '{r.loss.name}' uses no teacher: '{r.teacher.name}' is not built")
        for text in self.teacher.notes if self.teacher is not None else ():
            reporter.note(text)  # what a teacher wants the user to know
        # A cached teacher checks itself against the data and attaches its rows to it here.
        prepare = self.teacher.prepare if self.teacher is not None else None
        self.data: Data = build_data(r.data, r.augment, r.run.seed,
                                     pin_memory=rt.device.type == "cuda", prepare=prepare,
                                     num_replicas=rt.world_size, rank=rt.rank)
        self.steps_per_epoch = len(self.data.train_loader)
        if self.steps_per_epoch == 0:
            raise UsageError(f"data.batch_size: {r.data.batch_size} leaves no full batch")
        self.model = build_student_for(r, rt, reporter)
        self.loss_fn = build_loss(r.loss.name, alpha=r.loss.alpha, tau=r.loss.tau,
                                  smoothing=0.0 if r.augment.mixing else r.loss.smoothing,
                                  target=r.loss.target, kl_reduction=r.loss.kl_reduction)
        self.mixer = Mixer.from_recipe(r) if r.augment.mixing else None
        self.lr_peak = peak_lr(r.optim, r.data.batch_size * rt.world_size)
        self.optimizer = build_optimizer(self.model, r.optim, self.lr_peak, rt.device)
        self.schedule = LRSchedule(r.schedule, self.lr_peak, self.steps_per_epoch)
        self.ema = EMA(self.model, r.run.ema_decay) if r.run.ema else None
        # Under torchrun the step runs through DistributedDataParallel (gradients averaged
        # over ranks); `self.model` stays the plain module that is saved and evaluated.
        step_model: nn.Module = self.model
        if rt.backend is not None:
            from torch.nn.parallel import DistributedDataParallel

            step_model = DistributedDataParallel(
                self.model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
        self.step_model = torch.compile(step_model) if r.run.compile else step_model
        self.reduce = dist.all_reduce_sum if rt.backend is not None else None
        self.metrics = MetricsLog(out / "metrics.jsonl", enabled=rt.main)
        self.epoch = 0  # next epoch to run
        self.step = 0  # optimizer steps done
        self.history: list[dict[str, Any]] = []
        self.saved_epoch: int | None = None  # epochs in the last checkpoint on disk

    # -- checkpoint --------------------------------------------------------------------
    def save(self) -> None:
        if not self.rt.main:  # rank 0 writes; every rank holds the same weights
            return
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "history": json.dumps(self.history),
        }
        meta = weights_metadata(self.model, self.recipe, self.epoch)
        blobs = {"model.safetensors": weights_bytes(self.model.state_dict(), meta)}
        if self.ema is not None:
            blobs["ema.safetensors"] = weights_bytes(self.ema.state_dict(), meta)
        blobs["state.pt"] = state_bytes(state)  # last: it marks the epoch as done
        # timm's hub layout beside model.safetensors: `timm.create_model("local-dir:RUN")`.
        write_config(self.out, self.model, self.recipe.data)  # the same every epoch
        # Each file listed in run.json as pending, written, then recorded (see `rundir`).
        self.run_dir.write_files(blobs, epoch=self.epoch)
        self.saved_epoch = self.epoch

    def load(self, path: Path) -> None:
        state = load_state(path)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            self.epoch, self.step = int(state["epoch"]), int(state["step"])
            self.history = json.loads(state.get("history", "[]"))
        except (KeyError, RuntimeError, ValueError) as exc:
            raise UsageError(f"{path}: does not match this recipe's model ({exc})") from None
        self.saved_epoch = self.epoch
        self.metrics.truncate_after(self.epoch - 1)

    # -- loop --------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, Any]:
        rt, r, epoch = self.rt, self.recipe, self.epoch
        torch.manual_seed(derive_seed(r.run.seed, "epoch", epoch))  # dropout, drop path
        self.model.train()
        sums: dict[str, torch.Tensor] = {}
        count, seen, window_seen, window_start = 0, 0, 0, time.perf_counter()
        epoch_start, check_every = window_start, 1 if rt.device.type == "cpu" else r.run.log_every
        nonfinite = torch.zeros((), dtype=torch.bool, device=rt.device)
        augment = self.data.train.augment  # data.pipeline: tensor (None: pil)
        with interrupt.deferred():  # the loader's workers start here
            batches = self.data.epoch(epoch)
        for i, batch in enumerate(batches):
            batch = augment_batch(batch.to(rt.device), augment, rt.device)
            x, y = batch.images, batch.labels
            if self.mixer is not None:
                x, y, lam = self.mixer(x, y, epoch, i, rt.rank)
                batch = batch._replace(images=x, labels=y, lam=lam)
            # once: the teacher's outputs on the first batch (shape, finite) before trusting them
            check_teacher(self.teacher, batch, r.data.num_classes, rt=rt, name=r.teacher.name)
            lr = self.schedule.apply(self.optimizer, epoch, i)  # the epoch, not self.step
            parts = train_step(self.step_model, self.loss_fn, self.teacher, self.optimizer,
                               batch, rt, r.optim.clip_grad)
            if self.ema is not None:
                self.ema.update()
            self.step += 1
            count += 1
            seen += x.shape[0]
            for key, value in parts.items():
                value = value.detach()
                sums[key] = sums[key] + value if key in sums else value
            nonfinite |= ~torch.isfinite(parts["loss"].detach())
            if (i + 1) % check_every == 0:
                self._check_finite(nonfinite, parts["loss"], i)
            if (i + 1) % r.run.log_every == 0:
                now = time.perf_counter()
                row = {"kind": "step", "epoch": epoch, "step": self.step, "lr": lr,
                       **{k: v.item() / count for k, v in sums.items()},
                       "images_per_s": (seen - window_seen) / (now - window_start)}
                window_seen, window_start = seen, now  # images/s of this window only
                self.metrics.write(row)
                self.reporter.step(row)
            self.reporter.advance(epoch, i + 1)
            interrupt.check()  # a Ctrl-C that a fork hook or finalizer swallowed
        self._check_finite(nonfinite, parts["loss"], self.steps_per_epoch - 1)
        if rt.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - epoch_start
        if self.reduce is not None:  # the epoch's mean loss over every rank's batches
            keys = sorted(sums)
            total = self.reduce(torch.stack([sums[k].float() for k in keys]))
            sums = {k: total[i] / rt.world_size for i, k in enumerate(keys)}
        return {"train_" + k: v.item() / max(count, 1) for k, v in sums.items()} | {
            "lr": lr, "train_images": seen, "train_seconds": seconds,
            "train_images_per_s": seen * self.rt.world_size / seconds}

    def _check_finite(self, flag: torch.Tensor, loss: torch.Tensor, i: int) -> None:
        if bool(flag):
            raise RunError(
                f"loss became {loss.item()} in epoch {self.epoch} (step {i + 1} of the epoch); "
                f"the run stopped. The last good checkpoint (after epoch {self.epoch - 1}) is "
                f"intact in {self.out}; lower optim.lr or set optim.clip_grad and --resume"
                if self.epoch > 0 else
                f"loss became {loss.item()} in epoch 0 (step {i + 1}); the run stopped before "
                "any checkpoint. Lower optim.lr or set optim.clip_grad")

    def evaluate(self) -> dict[str, Any]:
        res = evaluate_model(self.model, self.data.val_loader, self.rt.device, self.rt.dtype,
                             self.rt.channels_last, self.reduce)
        out = {k: v for k, v in res.items() if k.startswith("top1")}
        out["eval_images_per_s"] = res["images_per_s"]
        if self.ema is not None:
            ema = evaluate_model(self.ema.module, self.data.val_loader, self.rt.device,
                                 self.rt.dtype, self.rt.channels_last, self.reduce)
            out["ema_top1"] = ema["top1"]
        return out

    def run(self) -> dict[str, Any]:
        r = self.recipe
        self.reporter.start(epochs=r.schedule.epochs, start_epoch=self.epoch,
                            steps_per_epoch=self.steps_per_epoch,
                            info=self.rt.summary() | {"lr": self.lr_peak})
        start = time.perf_counter()
        train_images, train_seconds = 0, 0.0
        while self.epoch < r.schedule.epochs:
            row = {"kind": "epoch", "epoch": self.epoch} | self.train_epoch()
            train_images += row["train_images"]
            train_seconds += row["train_seconds"]
            last = self.epoch + 1 == r.schedule.epochs
            if last or (self.epoch + 1) % r.run.eval_every == 0:
                row |= self.evaluate()
            self.metrics.write(row)
            self.history.append(row)
            self.reporter.epoch(row)
            self.epoch += 1
            self.save()
        return self.summarize(time.perf_counter() - start, train_images, train_seconds)

    def summarize(self, wall: float, images: int, seconds: float) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        final = ({k: v for k, v in last.items() if k.startswith(("top1", "ema_top1", "eval_"))}
                 if "top1" in last else self.evaluate())
        summary: dict[str, Any] = dict(final)
        summary["teacher"] = self.recipe.teacher.name if self.teacher is not None else None
        if self.teacher is not None and self.teacher.val_top1 is not None:
            summary["teacher_top1"] = self.teacher.val_top1  # e.g. a cache's build measured it
        elif self.teacher is not None and not TeacherRef.of(self.recipe.teacher).cached:
            t = evaluate_teacher(self.teacher, self.data.val_loader, self.rt.device, self.rt.dtype,
                                 self.reduce)
            summary["teacher_top1"] = t["top1"]
        summary |= {
            "student": self.recipe.student.name,
            "loss": self.recipe.loss.name,
            "params": sum(p.numel() for p in self.model.parameters()),
            "epochs": self.recipe.schedule.epochs,
            "train_size": len(self.data.train),
            "train_images_per_s": (images * self.rt.world_size / seconds) if seconds
            else _mean_rate(self.history),
            "wall_time_s": wall,
            "world_size": self.rt.world_size,
        } | self.rt.summary()
        interrupt.check()  # a swallowed Ctrl-C: not finished, --resume completes it
        self.run_dir.write_files({"summary.json": (json.dumps(summary, indent=2) + "\n").encode()},
                                 finished=True)
        return summary


def _mean_rate(history: list[dict[str, Any]]) -> float:
    rates = [h["train_images_per_s"] for h in history if "train_images_per_s" in h]
    return sum(rates) / len(rates) if rates else math.nan


def train(recipe: Recipe, *, resume: bool = False, reporter: Reporter | None = None,
          check_files: bool = True) -> TrainResult:
    """Train `recipe` into `recipe.run.out`. With `resume`, continue the run found there."""
    reporter = reporter or LogReporter()
    if recipe.run.out is None:
        raise UsageError("run.out: no output directory (pass --out or set run.out)")
    if check_files:
        check_paths(recipe)
    out = Path(recipe.run.out)
    # Only a new or empty directory or a run of ours; checked before anything is written.
    run_dir = RunDir.for_training(out, recipe, resume=resume)
    if run_dir.done:  # changes no file
        summary = read_json(out / "summary.json")
        reporter.note(f"the run in {out} is finished (summary.json); nothing to do")
        reporter.finish(summary)
        return TrainResult(out, summary, run_dir.history())
    epochs = recipe.schedule.epochs
    trainer: _Trainer | None = None
    try:
        rt = resolve_runtime(recipe, distributed="train")
        if not rt.main:
            reporter = LogReporter()  # rank 0 reports for the job
        trainer = _Trainer(recipe, out, rt, reporter, run_dir)  # bad input fails here
        trainer.saved_epoch = run_dir.epoch
        dist.barrier()  # every rank has read the run directory before rank 0 writes to it
        if rt.main:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OptionError("run.out", f"cannot create '{out}' ({exc.strerror or exc})"
                                  ) from None
        state_path = run_dir.checkpoint(resume)
        if state_path is not None:
            trainer.load(state_path)
            reporter.note(f"resuming {out} after epoch {trainer.epoch - 1} (step {trainer.step})")
            if run_dir.kind == "legacy":
                reporter.note(f"{out} has no run.json (a run of an earlier version): its files "
                              "are taken as they are and checked from now on")
        else:
            if resume:
                reporter.note(f"no checkpoint in {out}; starting a new run")
            trainer.metrics.truncate_after(-1)  # lines of a run killed before its first checkpoint
        # run.json: the files found, checked above; stale temporaries of run files deleted.
        run_dir.start(run_dir.found, trainer.saved_epoch, epochs)
        run_dir.write_files({"recipe.yaml": dump_recipe(recipe).encode()})
        summary = trainer.run()
    except KeyboardInterrupt as exc:  # the CLI says how to continue
        interrupt.clear()
        done = trainer.saved_epoch if trainer is not None else run_dir.epoch
        exc.distill_stopped = stopped_note(out, done, epochs)  # type: ignore[attr-defined]
        raise
    reporter.finish(summary)
    return TrainResult(out, summary, trainer.history)

