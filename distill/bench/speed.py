"""`distill speed`: training steps timed in one process, on one model, batch and precision.

Arms, each a fresh student (same seed) with its own optimizer and its own teacher:

- `none`:  the student alone (`none` loss on its class head);
- `live`:  our step with the live teacher (`engine.train.train_step`, what `distill train`
           runs: bf16 autocast, fused AdamW and channels_last convnet teachers on CUDA);
- `cache`: the same step with the teacher's outputs replayed from the cache format: rows
           encoded by the recipe's store, copied from host memory each step as a loader
           delivers them, decoded by the store (what `CachedTeacher.targets` does);
- `timm`:  timm's own `timm.task.TokenDistillationTask` around timm's DeiT (same
           architecture and drop path) and the same teacher module as `live` builds, with
           timm's AdamW (`create_optimizer_v2`, fused on CUDA as ours), the recipe's
           distillation target and temperature: the outside reference;
- `data`:  (only when asked for: `--arms data`) the training loader alone: finished device
           batches, ready for the step (read, collated, moved, augmented on the device with
           `data.pipeline: tensor`, mixed with mixup/cutmix on), as `distill train` makes
           them; its `images_per_s` compares with the step arms' in one run.

For the step arms the batch lives on the device: data loading is not timed (the cache's row reads happen in
loader workers; `benchmarks/cache_overhead.py` times them). Warm-up steps (and compilation)
are excluded; the arms' timed blocks of `steps` steps run round-robin, `repeats` rounds,
synchronised on CUDA only at block ends; images/s is an arm's median block. Peak memory is
what the arm adds to CUDA's allocator peak while it is built and warmed up (weights,
optimizer state, teacher, activations); on a CPU none is reported. FLOPs per step (2 per
multiply-add) are counted once by `torch.utils.flop_counter` on an eager step (student
forward and backward, teacher forward); MFU divides the achieved rate by the device's bf16
dense peak where it is known.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from distill.cache.store import StoreFormat
from distill.data import Batch
from distill.engine import Runtime, build_student_for, build_teacher_for, resolve_runtime
from distill.engine.optim import build_optimizer, peak_lr
from distill.engine.runtime import autocast
from distill.engine.train import train_step
from distill.errors import OptionError, UsageError
from distill.losses import build as build_loss
from distill.recipe import Recipe
from distill.student import build_student
from distill.teacher import TeacherRef

from .cells import student_for

__all__ = ["ARMS", "EXTRA_ARMS", "RATIOS", "SpeedArm", "device_peak_tflops", "measure_speed", "speed_recipe",
           "timm_task"]

ARMS = ("none", "live", "cache", "timm")  # timed by default
EXTRA_ARMS = ("data",)  # timed when asked for

# bf16 dense tensor-core peaks (TFLOP/s) from the vendors' data sheets.
_PEAKS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("A100", 312.0),
          ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0))

# The ratios reported: (numerator arm, denominator arm). The goals we hold them to are the
# benchmarks' business (`benchmarks/speed_goals.py`), not the library's.
RATIOS = (("cache", "none"), ("live", "timm"), ("live", "none"))


def device_peak_tflops(rt: Runtime) -> float | None:
    """The device's bf16 dense peak, where we know it (None on CPU or unknown GPUs)."""
    if rt.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(rt.device)
    return next((peak for key, peak in _PEAKS if key in name), None)


@dataclass
class SpeedArm:
    name: str
    images_per_s: float | None = None
    step_ms: float | None = None
    blocks_images_per_s: list[float] = field(default_factory=list)
    peak_mem_mb: float | None = None
    flops_per_step: float | None = None
    tflops: float | None = None
    mfu: float | None = None
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "name"}


class _Replayed:
    """The cached teacher's per-step work: rows from host memory, decoded by the store."""

    def __init__(self, store: StoreFormat, rows: dict[str, torch.Tensor], num_classes: int,
                 tau: float, device: torch.device):
        self.store, self.num_classes, self.tau, self.device = store, num_classes, tau, device
        pin = device.type == "cuda"
        self.rows = {k: (v.pin_memory() if pin else v) for k, v in rows.items()}

    def targets(self, batch: Batch) -> torch.Tensor:
        rows = {k: v.to(self.device, non_blocking=True) for k, v in self.rows.items()}
        return self.store.decode(rows, self.num_classes, self.tau)


def speed_recipe(recipe: Recipe, batch_size: int | None) -> Recipe:
    """The recipe with a distilled student (the `token` loss's), as timm's task needs."""
    student = student_for("token", recipe.student.name)
    if student is None:
        raise UsageError(f"student.name: '{recipe.student.name}' has no counterpart with a "
                         "distillation token; `distill speed` times token distillation")
    named = TeacherRef.of(recipe.teacher, live=True)
    if named is None or named.cached:
        raise UsageError(f"teacher.name: `distill speed` needs a live teacher to time (got "
                         f"'{recipe.teacher.name}'); pass --teacher timm:<model>, …")
    return recipe.updated({"data.batch_size": batch_size or recipe.data.batch_size,
                           "student.name": student, "loss.name": "token",
                           "teacher.cache": None})


def timm_task(recipe: Recipe, rt: Runtime, lr: float) -> tuple[Any, Any, Any]:
    """timm's DeiT (same architecture), its TokenDistillationTask and its AdamW."""
    import timm
    from timm.optim import create_optimizer_v2
    from timm.task import TokenDistillationTask

    ours = build_student(recipe.student.name, **recipe.student_kwargs())
    if not getattr(ours, "timm_model", ""):
        raise UsageError(f"'{recipe.student.name}' has no timm equivalent")
    torch.manual_seed(recipe.run.seed)
    model = timm.create_model(ours.timm_model, pretrained=False, **ours.timm_kwargs,
                              drop_path_rate=recipe.student.drop_path_rate or 0.0)
    model.pretrained_cfg = dict(model.pretrained_cfg, mean=tuple(recipe.data.mean),
                                std=tuple(recipe.data.std))
    model = model.to(rt.device)
    teacher = build_teacher_for(recipe, rt, live=True)  # as ours gets it (channels_last…)
    inner = getattr(teacher, "model", None)
    if not isinstance(inner, nn.Module):
        raise UsageError("the teacher exposes no module for timm's task")
    identity = teacher.identity
    d = recipe.data
    if tuple(identity.input_size) != (d.in_chans, d.img_size, d.img_size):
        c, h, w = identity.input_size
        raise UsageError(f"the teacher eats {c}×{h}×{w} images and the student "
                         f"{d.in_chans}×{d.img_size}×{d.img_size}; timm's task does not adapt")
    inner.pretrained_cfg = dict(getattr(inner, "pretrained_cfg", {}) or {},
                                mean=tuple(identity.mean), std=tuple(identity.std))
    task = TokenDistillationTask(
        model, inner, criterion=nn.CrossEntropyLoss(label_smoothing=recipe.loss.smoothing),
        distill_type=recipe.loss.target, temperature=recipe.loss.tau,
        task_loss_weight=1.0 - recipe.loss.alpha, device=rt.device, verbose=False)
    if recipe.run.compile:
        task.compile()
    task.train()
    fused = recipe.optim.fused if recipe.optim.fused is not None else rt.device.type == "cuda"
    opt = create_optimizer_v2(model, "adamw", lr=lr, weight_decay=recipe.optim.weight_decay,
                              **({"fused": True} if fused else {}))  # as ours: fused on CUDA
    return task, model, opt


def _count_flops(step: Callable[[], None]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def _free(rt: Runtime) -> None:
    gc.collect()
    if rt.device.type == "cuda":
        torch.cuda.empty_cache()


def measure_speed(recipe: Recipe, *, batch_size: int | None = None, steps: int = 20,
                  warmup: int = 5, repeats: int = 5, arms: tuple[str, ...] = ARMS,
                  store: str | None = None, note: Callable[[str], None] = lambda s: None
                  ) -> dict[str, Any]:
    """Time each arm; returns the arms and their ratios, with the setting.

    Every arm is built (and warmed up) in turn, its memory measured as it is; then the
    timed blocks run round-robin, one block of each arm per round, so that a drift of the
    machine (clocks, heat, a neighbour) falls on every arm alike."""
    for a in arms:
        if a not in ARMS + EXTRA_ARMS:
            raise OptionError("arms", f"unknown arm '{a}' (arms: "
                              f"{', '.join(ARMS + EXTRA_ARMS)})")
    for name, value in (("steps", steps), ("repeats", repeats),
                        ("batch_size", 1 if batch_size is None else batch_size)):
        if value < 1:
            raise OptionError(name, f"must be at least 1, got {value}")
    if warmup < 0:
        raise OptionError("warmup", f"must be at least 0, got {warmup}")
    r = speed_recipe(recipe, batch_size)
    rt = resolve_runtime(r)
    d = r.data
    fmt = StoreFormat.parse(store or ("full" if r.loss.target == "soft" else "hard"),
                            d.num_classes)
    gen = torch.Generator().manual_seed(r.run.seed)
    images = torch.randn(d.batch_size, d.in_chans, d.img_size, d.img_size, generator=gen)
    labels = torch.randint(0, d.num_classes, (d.batch_size,), generator=gen)
    batch = Batch(images, labels, torch.arange(d.batch_size)).to(rt.device)
    lr = peak_lr(r.optim, d.batch_size)
    peak = device_peak_tflops(rt)
    teacher = build_teacher_for(r, rt, live=True)  # the cache's rows, then let go
    with torch.inference_mode(), autocast(rt.device, rt.dtype):
        rows = fmt.encode(teacher.targets(batch), r.loss.tau)
    del teacher
    # FLOPs are counted on an eager step: a compiled one hides its kernels from the counter.
    eager = r.updated({"run.compile": False})
    results: dict[str, SpeedArm] = {name: SpeedArm(name) for name in arms}
    steps_of: dict[str, Callable[[], None]] = {}
    for name, arm in results.items():
        try:
            arm.flops_per_step = (0.0 if name == "data" else  # no model: no FLOPs counted
                                  _count_flops(_arm_step(name, eager, rt, batch, rows, fmt, lr)))
            _free(rt)
            before = torch.cuda.memory_allocated(rt.device) if rt.device.type == "cuda" else 0
            if rt.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(rt.device)
            note(f"{name}: build and warm-up")
            step = _arm_step(name, r, rt, batch, rows, fmt, lr)
            for _ in range(warmup):
                step()
            _sync(rt)
            if rt.device.type == "cuda":  # what this arm adds: weights, state, activations
                arm.peak_mem_mb = (torch.cuda.max_memory_allocated(rt.device) - before) / 2**20
            steps_of[name] = step
        except UsageError as exc:
            arm.skipped = str(exc)
            note(f"{name}: skipped ({exc})")
    for rep in range(repeats):
        for name, step in steps_of.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            _sync(rt)
            results[name].blocks_images_per_s.append(
                steps * d.batch_size / (time.perf_counter() - t0))
        note(f"round {rep + 1}/{repeats}: " + ", ".join(
            f"{k} {results[k].blocks_images_per_s[-1]:.1f}" for k in steps_of) + " img/s")
    for name in steps_of:
        arm = results[name]
        arm.images_per_s = statistics.median(arm.blocks_images_per_s)
        arm.step_ms = 1000.0 * d.batch_size / arm.images_per_s
        if name != "data":
            arm.tflops = arm.flops_per_step * arm.images_per_s / d.batch_size / 1e12
            arm.mfu = arm.tflops / peak if peak else None
    return _report(r, rt, results, fmt, peak, steps=steps, warmup=warmup, repeats=repeats)


def _sync(rt: Runtime) -> None:
    if rt.device.type == "cuda":
        torch.cuda.synchronize(rt.device)


def _arm_step(name: str, r: Recipe, rt: Runtime, batch: Batch,
              rows: dict[str, torch.Tensor], fmt: StoreFormat, lr: float
              ) -> Callable[[], None]:
    """One training step of arm `name`, with everything it needs built for it alone."""
    if name == "data":
        return _data_step(r, rt)
    if name == "timm":
        task, model, opt = timm_task(r, rt, lr)

        def timm_step() -> None:
            with autocast(rt.device, rt.dtype):
                loss = task(batch.images, batch.labels)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return timm_step
    model = build_student_for(r, rt)
    step_model = torch.compile(model) if r.run.compile else model
    loss_fn = build_loss("none" if name == "none" else r.loss.name, alpha=r.loss.alpha,
                         tau=r.loss.tau, smoothing=r.loss.smoothing, target=r.loss.target,
                         kl_reduction=r.loss.kl_reduction)
    opt = build_optimizer(model, r.optim, lr, rt.device)
    source = (None if name == "none" else build_teacher_for(r, rt, live=True) if name == "live"
              else _Replayed(fmt, rows, r.data.num_classes, r.loss.tau, rt.device))

    def ours() -> None:
        train_step(step_model, loss_fn, source, opt, batch, rt, r.optim.clip_grad)

    return ours


def _data_step(r: Recipe, rt: Runtime) -> Callable[[], None]:
    """One finished training batch on the device, as `_Trainer.train_epoch` makes it: the
    training loader's next batch (epoch after epoch), moved, augmented (tensor pipeline) and
    mixed (mixup/cutmix on)."""
    from distill.data import Mixer, augment_batch, build_data

    data = build_data(r.data, r.augment, r.run.seed, pin_memory=rt.device.type == "cuda")
    mixer = Mixer.from_recipe(r) if r.augment.mixing else None
    augment = data.train.augment

    def batches() -> Any:
        epoch = 0
        while True:
            for step, batch in enumerate(data.epoch(epoch)):
                yield epoch, step, batch
            epoch += 1

    source = batches()

    def data_step() -> None:
        epoch, step, batch = next(source)
        batch = augment_batch(batch.to(rt.device), augment, rt.device)
        if mixer is not None:
            mixer(batch.images, batch.labels, epoch, step, rt.rank)

    return data_step


def _report(r: Recipe, rt: Runtime, arms: dict[str, SpeedArm], fmt: StoreFormat,
            peak: float | None, **setting: Any) -> dict[str, Any]:
    rate = {k: a.images_per_s for k, a in arms.items() if a.images_per_s}
    ratios = {f"{num}_vs_{den}": rate[num] / rate[den] if num in rate and den in rate else None
              for num, den in RATIOS}
    return {
        "device": rt.summary(), "peak_tflops": peak,
        "student": r.student.name, "student_kwargs": dict(r.student.kwargs),
        "teacher": r.teacher.name, "batch_size": r.data.batch_size,
        "image_size": r.data.img_size, "compile": r.run.compile, "store": str(fmt),
        **setting, "arms": {k: a.as_dict() for k, a in arms.items()}, "ratios": ratios,
    }
