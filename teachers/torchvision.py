"""`torchvision:<model>` teachers: torchvision's classification models.

`pretrained: true` asks torchvision for the model's default weights (downloaded or from the
torch hub cache); `weights: PATH` loads a local file. Inputs are ImageNet-normalised at
the crop size of the chosen weights (224 when unknown), unless the recipe says otherwise.
"""

from __future__ import annotations

from distill.errors import UsageError, first_line
from distill.registry import TEACHERS, suggest
from distill.teacher import LiveTeacher, TeacherContext, TeacherOptions, live_teacher, load_into


def _classification_models() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def check(target: str) -> None:
    names = _classification_models()
    if target not in names:
        close = suggest(target, names)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(f"unknown torchvision model '{target}'{hint}")


@TEACHERS.register(name="torchvision", check=check)
def torchvision_teacher(target: str, options: TeacherOptions,
                        context: TeacherContext) -> LiveTeacher:
    import torchvision.models as tvm

    check(target)
    weights = options.weights
    use_default = options.pretrained and weights is None
    try:
        model = tvm.get_model(target, weights="DEFAULT" if use_default else None,
                              **dict(options.kwargs or {}))
    except (RuntimeError, OSError, ValueError) as exc:
        raise UsageError(f"teacher: cannot build 'torchvision:{target}' ({first_line(exc)})"
                         ) from None
    sha = load_into(model, weights, f"torchvision:{target}") if weights is not None else None
    crop = 224
    if use_default:
        tfm = tvm.get_model_weights(target).DEFAULT.transforms()
        crop = int(getattr(tfm, "crop_size", [224])[0])
    defaults = {"input_size": (3, crop, crop), "interpolation": "bilinear"}
    return live_teacher(model, adapter="torchvision", target=target, options=options,
                        context=context, defaults=defaults, weights_sha256=sha)
