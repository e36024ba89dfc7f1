"""Building a teacher from its spec, through the registry: the one front door (as timm's
`create_model`), whatever adapter the spec names, a plug-in's included."""

from __future__ import annotations

from typing import Any

from distill.registry import TEACHERS

from .contract import StudentInput, Teacher, TeacherContext, TeacherOptions
from .grammar import TeacherRef, parse_teacher

__all__ = ["build_teacher"]


def build_teacher(spec: str | TeacherRef, *, student: StudentInput | None = None,
                  context: TeacherContext | None = None, options: TeacherOptions | None = None,
                  **option_fields: Any) -> Teacher:
    """Build the teacher a spec names. `context` (or just `student`) says what the run is;
    `options` (or their fields as keywords: `weights=`, `kwargs=`, `input_size=`, …) are
    the recipe's `teacher.*` facts. A teacher of members has its members checked first
    (`TeacherRef.check`): each a known live teacher, itself of no members."""
    ref = parse_teacher(spec) if isinstance(spec, str) else spec
    if context is None:
        if student is None:
            raise TypeError("build_teacher needs context= or student=")
        context = TeacherContext(student)
    if options is None:
        options = TeacherOptions(**option_fields)
    elif option_fields:
        raise TypeError("pass options= or option fields, not both")
    if ref.members:
        ref.check()
    return TEACHERS.build(ref.adapter, ref.target, options, context)
