"""Weights and training state on disk: atomic writes, safetensors, safe `.pth` loading.

Every file this toolkit writes goes through `atomic_write`: a temporary file in the same
directory, fsync, rename, fsync of the directory. A crash (SIGKILL included) leaves
either the old file or the new one, never half of one. Weights are safetensors; the
training state (optimizer, scheduler step, EMA) is a `.pt` read back with
`torch.load(weights_only=True)`, so no pickle from disk is ever executed.

A temporary file is named `.{name}.{8 hex digits}.tmp` after the file it replaces
(`temporary_target` reads the name back): a writer clearing what a killed run left behind
deletes only temporaries of its own file names, never another `*.tmp`. A weights file
carries the sha256 of its tensors and metadata under `distill_sha256` (`weights_sha256`),
checked by `load_weights`: a truncated or altered file is an error naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from distill.errors import UsageError, few, first_line

__all__ = [
    "FORMAT",
    "REQUIRED_METADATA",
    "SHA256_KEY",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "describe_misfit",
    "file_sha256",
    "load_state",
    "load_weights",
    "read_metadata",
    "save_state",
    "save_weights",
    "state_bytes",
    "state_dict_sha256",
    "temporary_target",
    "weights_bytes",
    "weights_metadata",
    "weights_sha256",
]

_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "module")

# The weights file's own metadata (safetensors header): how to rebuild the model and what
# it takes as input. `weights_metadata` writes it; `checkpoint:` teachers read it back.
FORMAT = "deit-distill/1"
REQUIRED_METADATA = ("distill_model", "distill_kwargs", "mean", "std", "img_size", "in_chans")
# The metadata key of a weights file's own checksum (tensors and the rest of the metadata).
SHA256_KEY = "distill_sha256"

_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.tmp")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary sibling of `path`; on success fsync it and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # a fresh name; created 0666 less the umask, as open() would create `path`
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def temporary_target(name: str) -> str | None:
    """The file a temporary named `name` was to replace, if `atomic_write` made that name."""
    m = _TEMPORARY.fullmatch(name)
    return m.group("name") if m else None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows it
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """A hash of a state dict's names, dtypes, shapes and values (order independent)."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def weights_sha256(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> str:
    """The checksum a weights file records under `SHA256_KEY`: its tensors (names, dtypes,
    shapes, values) and every other metadata entry."""
    meta = {k: v for k, v in metadata.items() if k != SHA256_KEY}
    text = state_dict_sha256(state) + json.dumps(meta, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def weights_bytes(state: Mapping[str, torch.Tensor],
                  metadata: Mapping[str, Any] | None = None) -> bytes:
    """A safetensors file's bytes; metadata values that are not str become JSON, and the
    file's checksum is added under `SHA256_KEY`."""
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()
            if k != SHA256_KEY}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta[SHA256_KEY] = weights_sha256(tensors, meta)
    return save(tensors, metadata=meta)


def save_weights(path: str | Path, state: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, Any] | None = None) -> None:
    """Write a safetensors file atomically (see `weights_bytes`)."""
    atomic_write_bytes(path, weights_bytes(state, metadata))


def weights_metadata(model: torch.nn.Module, recipe: Any, epoch: int) -> dict[str, Any]:
    """What a run's safetensors file says about itself: how to rebuild the model (its
    `distill_model`/`distill_kwargs`, and `timm_model`/`timm_kwargs` where timm can build
    it), what it eats (`mean`, `std`, `img_size`, `in_chans`, `num_classes`,
    `interpolation`) and after which epoch it was written."""
    d = recipe.data
    meta: dict[str, Any] = {
        "format": FORMAT,
        "distill_model": getattr(model, "distill_model", recipe.student.name),
        "distill_kwargs": getattr(model, "distill_kwargs", {}),
        "mean": list(d.mean),
        "std": list(d.std),
        "img_size": str(d.img_size),
        "in_chans": str(d.in_chans),
        "num_classes": str(d.num_classes),
        "interpolation": d.interpolation,
        "epoch": str(epoch),
    }
    if getattr(model, "timm_model", ""):
        meta["timm_model"] = model.timm_model
        meta["timm_kwargs"] = model.timm_kwargs
    return meta


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a safetensors file (empty when it has none)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise UsageError(f"{path}: not a readable safetensors file ({exc})") from None


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or from a `.pth`/`.pt` read with weights_only=True.

    Official DeiT and RegNet checkpoints keep their weights under `model`; DDP-trained
    ones prefix names with `module.`. Both are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = dict(fh.metadata() or {})
                state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as exc:
            raise UsageError(f"{path}: not a readable safetensors file ({exc})") from None
        if SHA256_KEY in meta and weights_sha256(state, meta) != meta[SHA256_KEY]:
            raise UsageError(f"{path}: corrupt: its tensors or metadata differ from the sha256 "
                             "recorded when it was written; not loaded")
        return state
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError and friends: refuse, never execute
        first = first_line(exc)
        raise UsageError(f"{path}: cannot be read safely with weights_only=True ({first})") from None
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UsageError(f"{path}: holds no state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def describe_misfit(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                    allow_missing: tuple[str, ...] = ()) -> str | None:
    """Why `state` does not load into `model` (missing, unexpected, wrong shapes), or None.

    Keys starting with one of `allow_missing` may be absent (heads left at random init).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(allow_missing)]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in state
              if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = [f"{what} {few(keys)}" for what, keys in
             (("missing", missing), ("unexpected", unexpected), ("shape", shapes)) if keys]
    return "; ".join(parts) or None


def state_bytes(state: dict[str, Any]) -> bytes:
    """The training state as `torch.save` writes it (tensors and plain containers only)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write the training state atomically."""
    atomic_write_bytes(path, state_bytes(state))


def load_state(path: str | Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"{path}: unreadable training state ({type(exc).__name__}: {exc})") from None
