"""`timm:<model>` teachers: any timm model, pretrained through timm or from a local file,
and models from timm's own sources, `timm:local-dir:PATH` and `timm:hf-hub:ORG/NAME`.

`pretrained: true` uses timm's own loading (the hub cache when online); `weights: PATH`
loads a safetensors or `.pth` file (read with weights_only=True; an official DeiT/RegNet
checkpoint keeps its weights under `model`). Mean, std and input size come from the
model's `pretrained_cfg` unless the recipe sets them.

`local-dir:PATH` (a folder holding timm's `config.json` and weights: a run of this toolkit,
see `distill.hub`, or anything timm exported) and `hf-hub:ORG/NAME[@REVISION]` go through
`timm.create_model(target, pretrained=True)`: the weights come with the model, so
`teacher.pretrained` is implied (`teacher.weights` replaces them); `hf-hub:` needs the
network, or the model in the local Hugging Face cache.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from distill.checkpoint import file_sha256
from distill.errors import UsageError, first_line
from distill.registry import TEACHERS, suggest
from distill.teacher import LiveTeacher, TeacherContext, TeacherOptions, live_teacher, load_into

__all__ = ["check", "check_paths", "local_weights", "source_of", "timm_teacher", "weights_file"]

LOCAL, HUB = "local-dir", "hf-hub"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?")
# The files timm's `load_state_dict_from_path` looks for in a local folder, in its order.
_PREFERRED = ("model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth")
_EXTENSIONS = (".safetensors", ".pth", ".pth.tar", ".bin")


def source_of(target: str) -> tuple[str | None, str]:
    """(`local-dir` | `hf-hub` | None, the rest): which of timm's sources a target names."""
    source, sep, rest = target.partition(":")
    if sep and source in (LOCAL, HUB):
        return source, rest
    return None, target


def local_weights(folder: str | Path) -> Path | None:
    """The weights file timm loads from a `local-dir:` folder (None when there is none)."""
    folder = Path(folder)
    for name in _PREFERRED:
        if (folder / name).is_file():
            return folder / name
    for ext in _EXTENSIONS:
        found = sorted(folder.glob(f"*{ext}"))
        if found:
            return found[0]
    return None


def check(target: str) -> None:
    import timm

    source, rest = source_of(target)
    if source == LOCAL:
        if not rest:
            raise UsageError("timm:local-dir: needs a folder holding config.json and weights")
        return
    if source == HUB:
        if not _HUB_ID.fullmatch(rest):
            raise UsageError(f"timm:hf-hub: expects a Hugging Face model id 'ORG/NAME' (got "
                             f"'{rest}')")
        return
    if not timm.is_model(target):
        close = suggest(target, timm.list_models())
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(f"unknown timm model '{target}'{hint} (see `distill list teachers "
                         "--source timm PATTERN`)")


def check_paths(target: str) -> None:
    """A `local-dir:` folder holds a config.json naming a timm architecture, and weights."""
    import timm

    source, rest = source_of(target)
    if source != LOCAL:
        return
    cfg_file = Path(rest) / "config.json"
    if not cfg_file.is_file():
        raise UsageError(f"timm:local-dir: no config.json in '{rest}' (a run writes one for a "
                         "student timm can build; see `distill.hub`)")
    try:
        cfg = json.loads(cfg_file.read_text())
        arch = cfg["architecture"] if isinstance(cfg, dict) else None
    except (json.JSONDecodeError, KeyError, OSError):
        arch = None
    if not isinstance(arch, str) or not timm.is_model(arch):
        raise UsageError(f"timm:local-dir: '{cfg_file}' names no timm architecture (got "
                         f"{arch!r})")
    if local_weights(rest) is None:
        raise UsageError(f"timm:local-dir: no weights file in '{rest}' (model.safetensors, "
                         "pytorch_model.bin, …)")


def weights_file(target: str) -> Path | None:
    """The weights file a `local-dir:` target loads (timm's own loading finds the others)."""
    source, folder = source_of(target)
    return local_weights(folder) if source == LOCAL else None


@TEACHERS.register(name="timm", check=check, check_paths=check_paths, weights_file=weights_file)
def timm_teacher(target: str, options: TeacherOptions, context: TeacherContext) -> LiveTeacher:
    import timm

    check(target)
    check_paths(target)
    source, rest = source_of(target)
    kwargs = dict(options.kwargs or {})
    pretrained, weights = options.pretrained, options.weights
    sha = None
    if source is not None:  # the weights come with the model
        try:
            model = timm.create_model(target, pretrained=weights is None, **kwargs)
        except Exception as exc:  # hub errors, a folder timm cannot read: one line
            where = ("it needs the network, or the model in the local Hugging Face cache"
                     if source == HUB else f"from '{rest}'")
            raise UsageError(f"teacher.name: cannot load 'timm:{target}' ({first_line(exc)}); "
                             f"{where}") from None
        if source == LOCAL and weights is None:
            found = local_weights(rest)
            sha = file_sha256(found) if found is not None else None
    else:
        try:
            model = timm.create_model(target, pretrained=pretrained and weights is None, **kwargs)
        except (RuntimeError, OSError) as exc:
            raise UsageError(f"teacher.pretrained: cannot load pretrained weights for "
                             f"'timm:{target}' ({first_line(exc)}); use teacher.weights with a "
                             "local file") from None
    if weights is not None:
        sha = load_into(model, weights, f"timm:{target}")
    defaults = {"in_chans": kwargs["in_chans"]} if "in_chans" in kwargs else {}
    return live_teacher(model, adapter="timm", target=target, options=options,
                        context=context, defaults=defaults, weights_sha256=sha)
