"""Assembling a run's parts from a recipe: the student and the teacher, on the runtime; and
the check a teacher passes before it is trusted (`check_teacher`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.checkpoint import describe_misfit, load_weights
from distill.data.replay import preserved_rngs
from distill.errors import DistillError, UsageError
from distill.recipe import Recipe
from distill.student import build_student, student_facts
from distill.teacher import (
    LiveTeacher,
    StudentInput,
    Teacher,
    TeacherContext,
    TeacherOptions,
    TeacherRef,
    build_teacher,
    expected_input,
    is_convnet,
)

from .runtime import Runtime, autocast

__all__ = ["build_student_for", "build_teacher_for", "check_teacher"]


def build_student_for(recipe: Recipe, rt: Runtime, reporter: Any = None) -> nn.Module:
    """The recipe's student on the run's device, initialised from `student.init` if set
    (a foreign state dict fitted by the student's `StudentFacts.adapt_state` where it
    declares one, else by the built model's own `adapt_state(state)` method where it has
    one, as a `DeiT` does: its position embedding resampled to its grid, …)."""
    s = recipe.student
    torch.manual_seed(recipe.run.seed)
    model = build_student(s.name, **recipe.student_kwargs())
    if s.init is not None:
        state = load_weights(s.init)
        notes: list[str] = []
        adapt = _state_adapter(s.name, model)
        if adapt is not None:
            state, notes = adapt(state)
        misfit = describe_misfit(model, state, allow_missing=("head.", "head_dist."))
        if misfit:
            how = "" if adapt is not None else (
                "; a student fits a foreign state dict through the `adapt_state` fact of its "
                "StudentFacts, or its model's `adapt_state(state)` method, and this one has "
                "neither")
            raise UsageError(f"student.init: '{s.init}' does not fit '{s.name}' ({misfit}{how})")
        model.load_state_dict(state, strict=False)
        if reporter is not None:
            reporter.note(f"student initialised from {s.init}" +
                          (f" ({'; '.join(notes)})" if notes else ""))
    channels_last = recipe.run.channels_last
    if channels_last is None:
        channels_last = rt.device.type == "cuda" and is_convnet(model)
    rt.channels_last = bool(channels_last)
    model = model.to(rt.device)
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _state_adapter(name: str, model: nn.Module) -> Any:
    """How `student.init`'s state dict is fitted to `model`: `state -> (state, notes)`, from
    the student's `adapt_state` fact, else the model's own `adapt_state` method; or None."""
    fact = student_facts(name).adapt_state
    if fact is not None:
        return lambda state: fact(state, model)
    method = getattr(model, "adapt_state", None)
    return method if callable(method) else None


def build_teacher_for(recipe: Recipe, rt: Runtime, *, live: bool = False) -> Teacher:
    """The recipe's teacher, placed on the run's device (channels_last for convnets on CUDA
    unless `run.channels_last` says otherwise, compiled with `run.compile`); its logit cache
    when the recipe reads one (`teacher.cache`, or a `cache:` adapter), unless `live`."""
    t, d = recipe.teacher, recipe.data
    ref = TeacherRef.of(t, live=live)
    if ref is None:
        raise UsageError("teacher.name: this run has no teacher")
    if live and ref.cached:
        raise UsageError(f"teacher.name: a live teacher is needed here, not a cache (got "
                         f"'{t.name}'); name the teacher: timm:<model>, checkpoint:<run>, …")
    student = StudentInput(mean=tuple(d.mean), std=tuple(d.std), in_chans=d.in_chans,
                           img_size=d.img_size, num_classes=d.num_classes)
    from distill.data import derive_seed

    torch.manual_seed(derive_seed(recipe.run.seed, "teacher"))  # a random teacher is reproducible
    teacher = build_teacher(ref, context=TeacherContext(student, recipe, rt.world_size,
                                                        rt.device),
                            options=TeacherOptions.of(t))
    return teacher.place(rt.device, channels_last=recipe.run.channels_last,
                         compile=recipe.run.compile)


def check_teacher(teacher: Teacher | None, batch: Any, num_classes: int, *,
                  rt: Runtime | None = None, name: str | None = None) -> None:
    """Check a teacher's outputs on a first batch before they are trusted; once per teacher
    (`teacher.checked`), so the engine may call it before every step at no cost.

    The outputs (`teacher.targets(batch)`, under the run's autocast and
    `torch.inference_mode()`, every random generator restored: nothing the run computes
    changes) must be a B × `num_classes` tensor of finite numbers; a model that refuses its
    input (a timm ViT asserting its image size, a shape clash) is named with
    `teacher.input_size` and what the model takes where it says. Each problem is one
    `UsageError` naming the teacher (`name`, e.g. the recipe's `teacher.name`; by default
    its identity's `adapter:name`). A cached teacher (its rows come with the batch) is not
    run: its outputs were checked when its cache was built."""
    if teacher is None or teacher.checked or getattr(batch, "cached", None) is not None:
        return
    what = f"'{name or _spec_name(teacher)}'"
    x = batch.images
    shape = "×".join(map(str, x.shape[1:]))
    device = x.device
    dtype = rt.dtype if rt is not None else None
    try:
        out = _outputs(teacher, batch, device, dtype)
    except (torch.OutOfMemoryError, DistillError):
        raise
    except Exception as exc:  # the model refuses its input: an assert, a shape clash
        raise UsageError(_refusal(teacher, what, shape, exc)) from None
    n = x.shape[0]
    if not isinstance(out, torch.Tensor):
        raise UsageError(f"teacher.name: {what} returns {type(out).__name__} for {n} images, "
                         f"expected a ({n}, {num_classes}) tensor of logits")
    if out.ndim != 2 or tuple(out.shape) != (n, num_classes):
        raise UsageError(f"teacher.name: {what} returns shape {tuple(out.shape)} for {n} "
                         f"{shape} images, expected ({n}, {num_classes}): one row of "
                         "data.num_classes logits per image")
    finite = torch.isfinite(out)
    if not bool(finite.all()):
        nan = int(torch.isnan(out).sum())
        inf = int(out.numel() - int(finite.sum()) - nan)
        hint = "check its weights (teacher.weights) and its input (teacher.mean/std)"
        if dtype is not None and bool(torch.isfinite(_outputs(teacher, batch, device, None)
                                                     ).all()):
            hint = (f"it is finite in fp32 but not in {str(dtype).split('.')[-1]}: set "
                    "run.precision: fp32")
        raise UsageError(f"teacher.name: {what} returns NaN/inf on the first batch ({nan} NaN, "
                         f"{inf} inf of {out.numel()} outputs for {n} {shape} images); {hint}")
    teacher.checked = True


def _outputs(teacher: Teacher, batch: Any, device: torch.device,
             dtype: torch.dtype | None) -> Any:
    """The teacher's outputs on `batch`, drawing from no random generator of the run."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), preserved_rngs(), torch.inference_mode(), \
            autocast(device, dtype):
        return teacher.targets(batch)


def _refusal(teacher: Teacher, what: str, shape: str, exc: BaseException) -> str:
    """One line: the teacher refused the first batch; what it was given, what it takes."""
    text = str(exc).strip()
    reason = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    given, takes = f"{shape} images", None
    if isinstance(teacher, LiveTeacher):
        given = "×".join(map(str, teacher.input_size)) + " images"
        takes = expected_input(teacher.model)
    return (f"teacher.input_size: {what} refuses its input on the first batch ({reason}); it "
            f"was given {given}" + (f", the model takes {takes}" if takes else "")
            + "; set teacher.input_size to the size the model takes")


def _spec_name(teacher: Teacher) -> str:
    try:
        identity = teacher.identity
    except Exception:  # a teacher without an identity yet is named by its type
        return type(teacher).__name__
    return f"{identity.adapter}:{identity.name}"
