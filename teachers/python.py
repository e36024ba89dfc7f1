"""`python:<module>:<callable>` teachers: a user's own model factory.

The callable is called with `teacher.kwargs` and returns an `nn.Module` mapping images to
logits. Its inputs are taken to look like the student's (same mean/std and size) unless
the module carries a timm-style `pretrained_cfg` or the recipe sets `teacher.mean`,
`teacher.std`, `teacher.input_size`. `teacher.weights` is loaded into it when given.
"""

from __future__ import annotations

import importlib
import importlib.util

from torch import nn

from distill.errors import UsageError
from distill.registry import TEACHERS
from distill.teacher import LiveTeacher, TeacherContext, TeacherOptions, live_teacher, load_into


def _split(target: str) -> tuple[str, str]:
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise UsageError(f"expected 'python:<module>:<callable>', got 'python:{target}'")
    return module, attr


def check(target: str) -> None:
    module, _ = _split(target)
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise UsageError(f"python: module '{module}' is not importable")


@TEACHERS.register(name="python", check=check)
def python_teacher(target: str, options: TeacherOptions, context: TeacherContext) -> LiveTeacher:
    module_name, attr = _split(target)
    check(target)
    module = importlib.import_module(module_name)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UsageError(f"python: '{module_name}' has no callable '{attr}'")
    model = fn(**dict(options.kwargs or {}))
    if not isinstance(model, nn.Module):
        raise UsageError(f"python: '{target}' returned {type(model).__name__}, not an nn.Module")
    weights, student = options.weights, context.student
    sha = load_into(model, weights, f"python:{target}") if weights is not None else None
    defaults = {"input_size": (student.in_chans, student.img_size, student.img_size),
                "mean": student.mean, "std": student.std}
    return live_teacher(model, adapter="python", target=target, options=options,
                        context=context, defaults=defaults, weights_sha256=sha)
