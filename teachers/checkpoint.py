"""`checkpoint:<run dir | model.safetensors>` teachers: a model this toolkit trained.

The safetensors file carries what it takes to rebuild the model (`distill_model`,
`distill_kwargs`) and its input facts (`mean`, `std`, `img_size`, `in_chans`,
`num_classes`), written by the engine at the end of every epoch. A run directory means its
`model.safetensors`; name `ema.safetensors` explicitly to use the EMA weights.

Before it is loaded the file is checked against the `run.json` of its run directory, if
there is one, and against the sha256 it carries itself (`distill.checkpoint.load_weights`):
a corrupt file is an error naming it. A run that is not finished yet (no `summary.json`)
teaches with its last checkpoint, and the teacher's notes say so.
"""

from __future__ import annotations

import json
from pathlib import Path

from distill.checkpoint import (
    REQUIRED_METADATA,
    check_run_file,
    describe_misfit,
    load_weights,
    read_metadata,
)
from distill.errors import UsageError
from distill.registry import TEACHERS
from distill.student import build_student
from distill.teacher import LiveTeacher, TeacherContext, TeacherOptions, live_teacher


def resolve(target: str) -> Path:
    """The weights file a checkpoint target names."""
    path = Path(target)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise UsageError(f"no trained model at '{target}' (expected a run directory holding "
                         "model.safetensors, or the file itself)")
    return path


def check(target: str) -> None:
    if not target:
        raise UsageError("checkpoint: needs a run directory or a .safetensors file")


def check_paths(target: str) -> None:
    path = resolve(target)
    meta = read_metadata(path)
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise UsageError(f"'{path}' was not written by `distill train` (metadata lacks "
                         f"{', '.join(missing)})")


@TEACHERS.register(name="checkpoint", check=check, check_paths=check_paths, weights_file=resolve)
def checkpoint_teacher(target: str, options: TeacherOptions,
                       context: TeacherContext) -> LiveTeacher:
    if options.weights is not None or options.kwargs:
        raise UsageError("teacher: 'checkpoint:' teachers take their weights and builder "
                         "arguments from the run; remove teacher.weights/teacher.kwargs")
    check_paths(target)
    path = resolve(target)
    sha, run = check_run_file(path)  # as its run wrote it
    meta = read_metadata(path)
    model = build_student(meta["distill_model"], **json.loads(meta["distill_kwargs"]))
    state = load_weights(path)
    misfit = describe_misfit(model, state)
    if misfit:
        raise UsageError(f"teacher.name: '{path}' does not match its own metadata ({misfit})")
    model.load_state_dict(state, strict=True)
    chans, size = int(meta["in_chans"]), int(meta["img_size"])
    facts = {"input_size": (chans, size, size), "in_chans": chans,
             "mean": tuple(json.loads(meta["mean"])), "std": tuple(json.loads(meta["std"])),
             "interpolation": meta.get("interpolation", "bicubic")}
    teacher = live_teacher(model, adapter="checkpoint", target=target, options=options,
                           context=context, facts=facts, weights_sha256=sha)
    unfinished = (not run.finished) if run is not None else (
        (path.parent / "recipe.yaml").is_file() and not (path.parent / "summary.json").is_file())
    if unfinished:
        done = f" after epoch {run.epoch}/{run.epochs}" if run is not None and run.epoch else ""
        teacher.notes = (*teacher.notes, f"teacher '{target}': its run in {path.parent} is not "
                         f"finished (no summary.json); it teaches with its last checkpoint{done}")
    return teacher
