"""A run folder is a timm model folder: `config.json` in timm's hub layout.

Beside `model.safetensors` (timm's key names), a run writes `config.json` as timm's own
`save_config_for_hf` does: `architecture`, `num_classes`, `num_features`, `model_args`
(what `timm.create_model` needs to build the same module: the student's `timm_kwargs`) and
`pretrained_cfg` (`input_size`, `mean`, `std`, `interpolation`, `crop_pct`, `classifier`,
…, taken from the run's data section). Then, with timm alone:

    model = timm.create_model("local-dir:runs/x", pretrained=True).eval()

builds the student with its weights; in eval mode it gives the logits `distill eval`
computes (a DeiT⚗ averages its two heads, as timm's distilled DeiT does). This is also the
layout the Hugging Face Hub serves to `timm.create_model("hf-hub:ORG/NAME")`, so a run
folder uploads as it is (`hf upload ORG/NAME runs/x`).

Only a student with a timm equivalent (`model.timm_model`: the DeiT students and every
`timm:<model>`) gets a `config.json`; others (`cifar_resnet8`, a plugin's student) have
none, and `timm_config` returns None for them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from distill.checkpoint import atomic_write_text

__all__ = ["CONFIG", "timm_config", "write_config"]

CONFIG = "config.json"

# Facts of timm's own config for the architecture that describe the module, not the
# weights it was published with (those — url, hub id, tag, license — do not apply).
_ARCH_KEYS = ("fixed_input_size", "first_conv", "classifier", "crop_mode")


def _arch_cfg(architecture: str) -> dict[str, Any]:
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(architecture)
    except Exception:  # an architecture timm registers without a default config
        cfg = None
    return cfg.to_dict() if cfg is not None else {}


def _num_features(model: nn.Module, args: dict[str, Any]) -> int | None:
    n = getattr(model, "num_features", None)
    if isinstance(n, int):
        return n
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return head.in_features
    n = args.get("embed_dim")
    return n if isinstance(n, int) else None


def _classifier(model: nn.Module, arch: dict[str, Any]) -> str | list[str] | None:
    names = arch.get("classifier")
    if names is None:
        own = getattr(model, "pretrained_cfg", None) or {}
        names = own.get("classifier")
    if names is None and isinstance(getattr(model, "head", None), nn.Module):
        names = ("head", "head_dist") if getattr(model, "head_dist", None) is not None else "head"
    return list(names) if isinstance(names, (tuple, list)) else names


def timm_config(model: nn.Module, data: Any) -> dict[str, Any] | None:
    """The `config.json` of `model` trained on `data` (a recipe's data section), or None
    for a student timm cannot build."""
    architecture = getattr(model, "timm_model", "")
    if not architecture:
        return None
    args = json.loads(json.dumps(dict(getattr(model, "timm_kwargs", {}) or {})))
    arch = _arch_cfg(architecture)
    pretrained_cfg: dict[str, Any] = {k: arch[k] for k in _ARCH_KEYS if arch.get(k) is not None}
    pretrained_cfg.update(
        input_size=[data.in_chans, data.img_size, data.img_size],
        interpolation=data.interpolation,
        crop_pct=data.crop_pct,
        crop_mode=pretrained_cfg.get("crop_mode", "center"),
        mean=list(data.mean),
        std=list(data.std),
        num_classes=data.num_classes,
        classifier=_classifier(model, arch),
    )
    if pretrained_cfg["classifier"] is None:
        pretrained_cfg.pop("classifier")
    return {
        "architecture": architecture,
        "num_classes": data.num_classes,
        "num_features": _num_features(model, args),
        "model_args": args,
        "pretrained_cfg": pretrained_cfg,
    }


def write_config(folder: str | Path, model: nn.Module, data: Any) -> Path | None:
    """Write `folder/config.json` atomically; None (nothing written) for a student timm
    cannot build."""
    cfg = timm_config(model, data)
    if cfg is None:
        return None
    path = Path(folder) / CONFIG
    atomic_write_text(path, json.dumps(cfg, indent=2) + "\n")
    return path
