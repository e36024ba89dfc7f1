"""Assembling a run's parts from a recipe: the student and the teacher, on the runtime."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.checkpoint import describe_misfit, load_weights
from distill.errors import UsageError
from distill.recipe import Recipe
from teachers.base import Teacher, is_convnet

from .runtime import Runtime

__all__ = ["build_student_for", "build_teacher_for"]


def build_student_for(recipe: Recipe, rt: Runtime, reporter: Any = None) -> nn.Module:
    """The recipe's student on the run's device, initialised from `student.init` if set."""
    from students import DeiT, adapt_deit_state, build_student

    s = recipe.student
    torch.manual_seed(recipe.run.seed)
    model = build_student(s.name, **recipe.student_kwargs())
    if s.init is not None:
        state = load_weights(s.init)
        notes: list[str] = []
        if isinstance(model, DeiT):
            state, notes = adapt_deit_state(state, model)
        misfit = describe_misfit(model, state, allow_missing=("head.", "head_dist."))
        if misfit:
            raise UsageError(f"student.init: '{s.init}' does not fit '{s.name}' ({misfit})")
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


def build_teacher_for(recipe: Recipe, rt: Runtime, *, live: bool = False) -> Teacher:
    """The recipe's teacher, placed on the run's device (channels_last for convnets on CUDA
    unless `run.channels_last` says otherwise, compiled with `run.compile`); its logit cache
    when the recipe reads one (`teacher.cache`, or a `cache:` adapter), unless `live`."""
    from teachers import StudentInput, TeacherContext, TeacherOptions, TeacherRef, build_teacher

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
    teacher = build_teacher(ref, context=TeacherContext(student, recipe, rt.world_size),
                            options=TeacherOptions.of(t))
    return teacher.place(rt.device, channels_last=recipe.run.channels_last,
                         compile=recipe.run.compile)
