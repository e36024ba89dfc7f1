"""Recipes: a pydantic model tree validated once, before any work.

A recipe is YAML with the sections `data`, `student`, `teacher`, `loss`, `optim`,
`schedule`, `augment`, `run`. Unknown keys are errors. `load_recipe` reads a file,
applies dotted overrides (`optim.lr=1e-3`, typed by the schema) and the shortcuts
(`--teacher`, `--student`, `--loss`), and validates everything, registry names and the fit
between loss and student included. Problems come back together in one `UsageError`, one
line each, naming the dotted field and the value the user wrote.

`schema` holds the sections, `text` the strict, bounded YAML reading, `load` the
overrides and loading, `validate` the pass over a
whole recipe, `resume` a run's recipe read back and compared. A recipe is never changed
in place: `Recipe.updated({...})` returns a validated copy.
"""

from .load import (
    apply_overrides,
    check_paths,
    default_out,
    dump_recipe,
    load_recipe,
    recipe_from_dict,
)
from .resume import RESUME_FREE_FIELDS, load_run_recipe, recipe_diff, resume_changes
from .schema import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    DataConfig,
    LossConfig,
    OptimConfig,
    Recipe,
    RunConfig,
    ScheduleConfig,
    StudentConfig,
    TeacherConfig,
)
from .text import parse_yaml
from .validate import Problem, problems

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RESUME_FREE_FIELDS",
    "AugmentConfig",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "Problem",
    "Recipe",
    "RunConfig",
    "ScheduleConfig",
    "StudentConfig",
    "TeacherConfig",
    "apply_overrides",
    "check_paths",
    "default_out",
    "dump_recipe",
    "load_recipe",
    "load_run_recipe",
    "parse_yaml",
    "problems",
    "recipe_diff",
    "recipe_from_dict",
    "resume_changes",
]
