"""Several processes under `torchrun`: PyTorch's own distributed engine, nothing home-made.

`torchrun` sets RANK, LOCAL_RANK, WORLD_SIZE and the rendezvous; each process then joins
one process group (NCCL on GPUs, gloo on CPUs) with a timeout, so a rank that dies or hangs
ends the job with an error instead of a silent wait. Rank r drives the GPU of its local
rank (`cuda:LOCAL_RANK`): global and local ranks differ on every node but the first.
"""

from __future__ import annotations

import datetime
import os
import re
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "Topology",
    "all_gather_object",
    "all_reduce_sum",
    "backend",
    "barrier",
    "broadcast_object",
    "init",
    "patient_group",
    "peer_lost",
    "shutdown",
    "topology",
]

DEFAULT_TIMEOUT_S = 600


class Topology:
    """Where this process stands among the job's processes."""

    def __init__(self, rank: int = 0, local_rank: int = 0, world_size: int = 1,
                 launched: bool = False):
        self.rank, self.local_rank, self.world_size = rank, local_rank, world_size
        self.launched = launched or world_size > 1  # started by torchrun (even as 1 process)

    @property
    def distributed(self) -> bool:
        """Several processes."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and talks to the user."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        from distill.errors import UsageError

        raise UsageError(f"{name}: expected an integer from torchrun, got '{value}'") from None


def topology() -> Topology:
    """This process's ranks, from torchrun's environment (one process alone without it)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    launched = "TORCHELASTIC_RUN_ID" in os.environ  # set by torchrun, even for 1 process
    return Topology(rank, _env_int("LOCAL_RANK", rank), world, launched)


def init(top: Topology, device_type: str) -> None:
    """Join the job's process group (once); NCCL on CUDA, gloo on CPU. A single process
    started by torchrun joins a group of one, so one GPU runs the NCCL path.

    The timeout (DISTILL_DIST_TIMEOUT seconds, default 600) bounds every collective: a peer
    that died or stalls makes the others fail after it, and torchrun then ends the job.
    """
    if not top.launched or dist.is_initialized():
        return
    timeout = datetime.timedelta(seconds=_env_int("DISTILL_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    if device_type == "cuda":
        torch.cuda.set_device(top.local_rank)
        dist.init_process_group("nccl", timeout=timeout,
                                device_id=torch.device("cuda", top.local_rank))
    else:
        dist.init_process_group("gloo", timeout=timeout)


# What gloo and NCCL say when the peer of a collective is gone, or never came.
_LOST = ("Connection closed by peer", "Connection reset by peer", "Timed out waiting",
         "Watchdog caught collective operation timeout", "NCCL communicator was aborted")


def peer_lost(exc: BaseException) -> str | None:
    """The first line of a collective's error raised because another rank died or stalled
    (None for any other error, local ones included, which keeps its traceback)."""
    text = str(exc)
    if isinstance(exc, RuntimeError) and any(s in text for s in _LOST):
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]  # no source path
        return first if len(first) <= 120 else first[:117] + "…"
    return None


def backend() -> str | None:
    """The process group's backend ("nccl", "gloo"); None outside a group."""
    return str(dist.get_backend()) if dist.is_initialized() else None


def shutdown() -> None:
    global _patient
    if dist.is_initialized():
        dist.destroy_process_group()
    _patient = None


DEFAULT_WAIT_S = 24 * 3600
_patient: Any = None


def patient_group() -> Any:
    """A gloo group whose collectives wait up to DISTILL_DIST_WAIT_TIMEOUT seconds (default
    24 h): for ranks that finished their share of uneven work (a cache build deals whole
    shards) and wait for the others. A rank that dies still ends the job at once: torchrun
    stops the others. Every rank must call this at the same point (it is a collective)."""
    global _patient
    if _patient is None and dist.is_initialized():
        wait = _env_int("DISTILL_DIST_WAIT_TIMEOUT", DEFAULT_WAIT_S)
        _patient = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=wait))
    return _patient


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum over ranks (in place); the tensor itself when alone."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj: object) -> object:
    """Rank 0's `obj` on every rank (picklable, small; the object itself when alone)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj: object, *, patient: bool = False) -> list[object]:
    """Every rank's `obj`, in rank order (`[obj]` when alone). `patient`: on
    `patient_group()`, for ranks that may wait long for the others."""
    if not dist.is_initialized():
        return [obj]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj, group=patient_group() if patient else None)
    return out
