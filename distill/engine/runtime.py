"""Where and how a run computes: device, precision, threads, place among torchrun's
processes (`resolve_runtime`), and bf16 autocast where the runtime asks for it."""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from typing import Any

import torch

from distill.errors import UsageError
from distill.recipe import Recipe

__all__ = ["Runtime", "autocast", "cpu_name", "resolve_runtime"]


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

    def summary(self) -> dict[str, Any]:
        """The device, its name, the precision and torch's version (for summaries)."""
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


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """bf16 autocast where asked for; a no-op in fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
