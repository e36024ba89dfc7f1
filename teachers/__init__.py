"""Teachers: live models from timm, torchvision, a run of this toolkit, or a user's
`module:callable`, ensembles of those (`ensemble:SPEC+SPEC`), and logit caches, each one
file registered in `TEACHERS` under its prefix with its `AdapterFacts`.

`build_teacher(spec, context=..., options=...)` turns a spec such as `timm:regnety_160`
(parsed once, by `parse_teacher`) into a `Teacher` (see `teachers.base`).
"""

from __future__ import annotations

from typing import Any

from distill.registry import TEACHERS

from . import ensemble as _ensemble  # noqa: F401  (registers `ensemble:`)
from .base import LiveTeacher, StudentInput, Teacher, TeacherContext, TeacherOptions, TeacherSpec
from .spec import TeacherRef, parse_teacher

__all__ = ["LiveTeacher", "StudentInput", "Teacher", "TeacherContext", "TeacherOptions",
           "TeacherRef", "TeacherSpec", "build_teacher", "parse_teacher"]


def build_teacher(spec: str | TeacherRef, *, student: StudentInput | None = None,
                  context: TeacherContext | None = None, options: TeacherOptions | None = None,
                  **option_fields: Any) -> Teacher:
    """Build the teacher a spec names. `context` (or just `student`) says what the run is;
    `options` (or their fields as keywords: `weights=`, `kwargs=`, `input_size=`, …) are
    the recipe's `teacher.*` facts."""
    ref = parse_teacher(spec) if isinstance(spec, str) else spec
    if context is None:
        if student is None:
            raise TypeError("build_teacher needs context= or student=")
        context = TeacherContext(student)
    if options is None:
        options = TeacherOptions(**option_fields)
    elif option_fields:
        raise TypeError("pass options= or option fields, not both")
    return TEACHERS.build(ref.adapter, ref.target, options, context)
