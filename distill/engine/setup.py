"""Assembling a run's parts from a recipe: device and precision, student, teacher."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from distill.checkpoint import describe_misfit, load_weights
from distill.errors import UsageError
from distill.recipe import Recipe
from teachers.base import Teacher, is_convnet

__all__ = ["Runtime", "build_student_for", "build_teacher_for", "is_convnet", "resolve_runtime"]


@dataclass
class Runtime:
    """Where and how a run computes."""

    device: torch.device
    dtype: torch.dtype | None  # autocast dtype; None for fp32
    channels_last: bool
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None  # the torchrun process group's ("nccl", "gloo"), if joined

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes the run's files and reports."""
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        name = (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                else f"{cpu_name()} ({torch.get_num_threads()} threads)")
        return {"device": self.device.type, "device_name": name,
                "precision": "bf16" if self.dtype == torch.bfloat16 else "fp32",
                "torch": torch.__version__} | ({"dist_backend": self.backend}
                                               if self.backend is not None else {})


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_runtime(recipe: Recipe, *, distributed: str | None = None) -> Runtime:
    """Device, precision and place among torchrun's processes. `distributed` names the
    command when it runs under torchrun with several processes (it joins the process
    group); commands that run in one process only refuse torchrun."""
    from . import dist

    run = recipe.run
    top = dist.topology()
    if top.distributed and distributed is None:
        raise UsageError(f"torchrun with {top.world_size} processes: this command runs in one "
                         "process (only `distill train` and `distill cache build` use several); run "
                         "it without torchrun")
    if run.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("run.device: 'cuda' requested but no CUDA device is available")
    cuda = run.device == "cuda" or (run.device == "auto" and torch.cuda.is_available())
    if cuda and top.launched and top.local_rank >= torch.cuda.device_count():
        raise UsageError(f"torchrun: local rank {top.local_rank} has no GPU (this node has "
                         f"{torch.cuda.device_count()}); lower --nproc-per-node")
    device = torch.device("cuda", top.local_rank) if cuda and top.launched else \
        torch.device("cuda" if cuda else "cpu")
    if run.precision == "bf16" or (run.precision == "auto" and device.type == "cuda"):
        dtype = torch.bfloat16
    else:
        dtype = None
    if run.threads is not None:
        torch.set_num_threads(run.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if distributed is not None:
        dist.init(top, device.type)
    return Runtime(device=device, dtype=dtype, channels_last=False, world_size=top.world_size,
                   rank=top.rank, local_rank=top.local_rank, backend=dist.backend())


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
