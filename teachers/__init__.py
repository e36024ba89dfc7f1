"""Teachers: live models from timm, torchvision, a run of this toolkit, or a user's
`module:callable`, each one file registered in `TEACHERS` under its prefix.

`build_teacher(name, student=..., **options)` turns a spec string such as
`timm:regnety_160` into a `Teacher` (see `teachers.base`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.registry import TEACHERS

from .base import LiveTeacher, StudentInput, Teacher, TeacherSpec

__all__ = ["LiveTeacher", "StudentInput", "Teacher", "TeacherSpec", "build_teacher"]


def build_teacher(name: str, *, student: StudentInput, pretrained: bool = False,
                  weights: Path | None = None, kwargs: dict[str, Any] | None = None,
                  mean: Any = None, std: Any = None, input_size: int | None = None,
                  interpolation: str | None = None) -> Teacher:
    """Build the teacher named by a spec string `<adapter>:<target>`."""
    adapter, _, target = name.partition(":")
    return TEACHERS.build(adapter, target=target, student=student, pretrained=pretrained,
                          weights=weights, kwargs=kwargs or {}, mean=mean, std=std,
                          input_size=input_size, interpolation=interpolation)
