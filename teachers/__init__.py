"""Teacher adapters, one file per source, each registered in `distill.registry.TEACHERS`
under its prefix with its `AdapterFacts`: `timm`, `torchvision`, `checkpoint` (a run of
this toolkit), `python` (a user's `module:callable`), `cache` (outputs on disk) and
`ensemble` (several teachers combined).

The contract they keep, the spec grammar and `build_teacher` are the core's
(`distill.teacher`); an adapter is handed its options and imports nothing above the
core's contracts and formats. Those names are re-exported here for older imports
(`TeacherSpec` is `TeacherIdentity`'s former name).
"""

from __future__ import annotations

from distill.teacher import (
    LiveTeacher,
    StudentInput,
    Teacher,
    TeacherContext,
    TeacherIdentity,
    TeacherOptions,
    TeacherRef,
    build_teacher,
    parse_teacher,
)

TeacherSpec = TeacherIdentity

__all__ = ["LiveTeacher", "StudentInput", "Teacher", "TeacherContext", "TeacherIdentity",
           "TeacherOptions", "TeacherRef", "TeacherSpec", "build_teacher", "parse_teacher"]
