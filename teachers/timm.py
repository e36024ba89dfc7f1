"""`timm:<model>` teachers: any timm model, pretrained through timm or from a local file.

`pretrained: true` uses timm's own loading (the hub cache when online); `weights: PATH`
loads a safetensors or `.pth` file (read with weights_only=True; an official DeiT/RegNet
checkpoint keeps its weights under `model`). Mean, std and input size come from the
model's `pretrained_cfg` unless the recipe sets them.
"""

from __future__ import annotations

from distill.errors import UsageError
from distill.registry import TEACHERS, suggest

from ._live import live, load_into
from .base import LiveTeacher, TeacherContext, TeacherOptions


def check(target: str) -> None:
    import timm

    if not timm.is_model(target):
        close = suggest(target, timm.list_models())
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(f"unknown timm model '{target}'{hint} (see `distill list teachers "
                         "--source timm PATTERN`)")


@TEACHERS.register(name="timm", check=check)
def timm_teacher(target: str, options: TeacherOptions, context: TeacherContext) -> LiveTeacher:
    import timm

    check(target)
    kwargs = dict(options.kwargs or {})
    pretrained, weights = options.pretrained, options.weights
    try:
        model = timm.create_model(target, pretrained=pretrained and weights is None, **kwargs)
    except (RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"teacher.pretrained: cannot load pretrained weights for "
                         f"'timm:{target}' ({first}); use teacher.weights with a local file"
                         ) from None
    sha = load_into(model, weights, f"timm:{target}") if weights is not None else None
    defaults = {"in_chans": kwargs["in_chans"]} if "in_chans" in kwargs else {}
    return live(model, adapter="timm", target=target, options=options, context=context,
                defaults=defaults, weights_sha256=sha)
