"""The student contract: building a student by name, and what a name is before building it.

A student is an `nn.Module` whose training forward returns `(cls_logits, dist_logits)`
(a distillation token) or `cls_logits` (a class token only), and whose eval forward returns
the average of its heads' logits. Registered students (`distill.registry.STUDENTS`: the
built-in `students` package, or a third party's) declare their `StudentFacts` there; any
timm model is a student as `timm:<model>`.

`build_student(name, **kwargs)` is the one way the engine makes a student;
`student_facts(name)` says what a name is (distilled or not, its family, its shape check,
how it adapts a foreign state dict) without building it.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from distill.errors import UsageError
from distill.registry import STUDENTS, StudentFacts, suggest

__all__ = ["TIMM_PREFIX", "build_student", "check_kwargs", "student_facts"]

TIMM_PREFIX = "timm:"


def student_facts(name: str) -> StudentFacts:
    """Facts about a student name; an unknown name raises with the closest names."""
    if name.startswith(TIMM_PREFIX):
        import timm

        model = name[len(TIMM_PREFIX):]
        if not timm.is_model(model):
            close = suggest(model, timm.list_models())
            hint = f"; did you mean {', '.join(repr(TIMM_PREFIX + c) for c in close)}?" if close else ""
            raise UsageError(f"unknown timm model '{model}'{hint}")
        return StudentFacts(distilled="distilled" in model, family="timm")
    return STUDENTS.facts(name)


def build_student(name: str, **kwargs: Any) -> nn.Module:
    """Build a student. Registered names go through `STUDENTS`; `timm:<model>` through timm.

    Every student gets `distill_model` and `distill_kwargs` (how to build it again); a
    student timm can load also has `timm_model` and `timm_kwargs`.
    """
    info = student_facts(name)
    if info.family == "timm":
        import timm

        try:
            model = timm.create_model(name[len(TIMM_PREFIX):], pretrained=False, **kwargs)
        except TypeError as exc:
            if "img_size" not in str(exc) or "img_size" not in kwargs:
                raise
            kwargs = {k: v for k, v in kwargs.items() if k != "img_size"}  # a convnet: any size
            model = timm.create_model(name[len(TIMM_PREFIX):], pretrained=False, **kwargs)
        if info.distilled and hasattr(model, "set_distilled_training"):
            model.set_distilled_training(True)
        model.timm_model = name[len(TIMM_PREFIX):]
        model.timm_kwargs = {k: v for k, v in kwargs.items() if not k.endswith("_rate")}
    else:
        check_kwargs(name, kwargs)
        model = STUDENTS.build(name, **kwargs)
    model.distill_model = name
    model.distill_kwargs = dict(kwargs)
    return model


def check_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments a registered student does not take, without building it.

    A builder that forwards `**kwargs` to a class names that class in its `signature` tag.
    """
    if name.startswith(TIMM_PREFIX):
        return  # timm's model classes take **kwargs; timm itself reports the bad ones
    target = STUDENTS.facts(name).signature or STUDENTS.get(name)
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    bad = sorted(set(kwargs) - set(params))
    if bad:
        raise UsageError(
            f"student '{name}' does not accept {', '.join(repr(b) for b in bad)} "
            f"(accepts: {', '.join(k for k in params if k != 'self')})")
