"""The teacher contract, in the core as timm keeps `parse_model_name` and `create_model` in
its factory while model families only register: adapters (`teachers/`, or a third
party's) register in `distill.registry.TEACHERS` and are known only through it.

- `contract`: `Teacher` (what the engine reads), `TeacherIdentity` (who a teacher is: the
  logit cache keys on it), `TeacherOptions` and `TeacherContext` (what an adapter is
  handed), `StudentInput`;
- `grammar`: the spec `<adapter>:<target>`, parsed once (`parse_teacher`) into a
  `TeacherRef`, which reads the adapter's registered facts;
- `members`: the grammar of a teacher of members (`ensemble:0.7*timm:a+0.3*timm:b`), the
  members' own options, and the recipe's list form;
- `factory`: `build_teacher(spec, …)`, through the registry;
- `live`: `LiveTeacher`, a model run as a teacher, and the steps model-backed adapters
  share (`live_teacher`, `load_into`, `probe_classes`).
"""

from .contract import StudentInput, Teacher, TeacherContext, TeacherIdentity, TeacherOptions
from .factory import build_teacher
from .grammar import CACHE, NO_TEACHER, TeacherRef, parse_teacher
from .live import (
    LiveTeacher,
    expected_input,
    fixed_input_size,
    infer_classes,
    is_convnet,
    live_teacher,
    load_into,
    model_io,
    probe_classes,
)
from .members import ENSEMBLE, Member, MemberOptions, compose_members, members_of, parse_members

__all__ = [
    "CACHE",
    "ENSEMBLE",
    "NO_TEACHER",
    "LiveTeacher",
    "Member",
    "MemberOptions",
    "StudentInput",
    "Teacher",
    "TeacherContext",
    "TeacherIdentity",
    "TeacherOptions",
    "TeacherRef",
    "build_teacher",
    "compose_members",
    "expected_input",
    "fixed_input_size",
    "infer_classes",
    "is_convnet",
    "live_teacher",
    "load_into",
    "members_of",
    "model_io",
    "parse_members",
    "parse_teacher",
    "probe_classes",
]
