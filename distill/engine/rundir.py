"""The run folder as `train` finds it, and what it may do there: the engine's policy over
the run folder's format (`distill.checkpoint.run_files`).

What `train` accepts as `--out` (`RunDir.open`): a path that does not exist, an empty
directory, or a run of this toolkit: a directory holding `run.json`, or (a run of an earlier
version, without one) a directory holding `recipe.yaml` and nothing but run file names.
Anything else is refused before any file is touched.

What it does there (`RunDir.for_training`): a run that has begun (a checkpoint, a summary)
is continued only with `--resume`, and only with the recipe it was started with; a run
that never reached its first checkpoint starts again; every file the run lists is checked
first; a finished run is left as it is. A run of an earlier version is taken as it is and
checked from its next checkpoint on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.checkpoint import RUN_FILES, RUN_MANIFEST, RunFiles, is_run_temporary
from distill.errors import OptionError, few
from distill.recipe import Recipe, load_run_recipe, resume_changes

__all__ = ["RunDir", "stopped_note"]

# The files whose presence says a run has begun: a checkpoint, or its summary.
_STARTED = ("state.pt", "model.safetensors", "summary.json")


@dataclass
class RunDir(RunFiles):
    """A run folder as `train` found it (`kind`: "new", "run" or "legacy"), the writer of
    its `run.json` (`RunFiles`), and the rules of what `train` may do there.

    `started`: the run has begun (a checkpoint or a summary; a run killed before its first
    checkpoint has not). `found`: the files there, each checked against `run.json`."""

    started: bool = False
    found: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- what --out may be --------------------------------------------------------------
    @classmethod
    def open(cls, out: Path) -> RunDir:
        """Classify `out`; refuse (naming `run.out`) anything but a new or empty directory
        or a run of this toolkit."""
        if str(out).strip() == "":
            raise OptionError("run.out", "empty path; name a new or empty directory")
        if out.exists() and not out.is_dir():
            raise OptionError("run.out", f"'{out}' is a file, not a directory; choose a new "
                              "or empty directory")
        if not out.exists():
            return cls(out, "new")
        try:
            names = sorted(p.name for p in out.iterdir())
        except OSError as exc:
            raise OptionError("run.out", f"cannot read '{out}' ({exc.strerror or exc})") from None
        if RUN_MANIFEST in names:
            return cls.load(out)
        if all(is_run_temporary(n) for n in names):  # empty, or a start killed at once
            return cls(out, "new")
        # A run of an earlier version: its resolved recipe and at least one checkpoint file
        # (a folder holding only a recipe.yaml may be the user's own: not ours to overwrite).
        if ("recipe.yaml" in names and {"state.pt", "model.safetensors"} & set(names)
                and all(n in RUN_FILES or is_run_temporary(n) for n in names)):
            return cls(out, "legacy", finished="summary.json" in names)
        raise OptionError("run.out", f"'{out}' is not empty and holds no run of this toolkit "
                          f"(it holds {few(names)}); choose a new or empty directory")

    # -- what train may do there ----------------------------------------------------------
    @classmethod
    def for_training(cls, out: Path, recipe: Recipe, *, resume: bool) -> RunDir:
        """`out` as `train` may use it for `recipe`, checked before anything is written:
        only a new or empty directory or a run of ours (`open`); a run that has begun only
        with `resume`, and only with the recipe it was started with; every file it lists
        as the run wrote it (a finished run needs no `state.pt` any more)."""
        run_dir = cls.open(out)
        # A run of ours that never reached its first checkpoint (refused by a check of its
        # first batch, or killed) holds nothing to keep: it starts again, with this recipe.
        run_dir.started = run_dir.finished or any((out / n).exists() for n in _STARTED)
        if run_dir.kind != "new" and run_dir.started and not resume:
            raise OptionError("run.out", f"'{out}' already holds a run; pass --resume to "
                              "continue it or choose another --out")
        run_dir.found = run_dir.verify(optional=("state.pt",) if run_dir.finished else ())
        prior = out / "recipe.yaml"
        if resume and run_dir.started and prior.exists():
            changed = resume_changes(load_run_recipe(prior), recipe)
            if changed:
                raise OptionError("resume", f"the recipe differs from the run in '{out}' at "
                                  f"{', '.join(changed)}; resume with the same recipe or use "
                                  "another --out")
        return run_dir

    @property
    def done(self) -> bool:
        """A finished run with its summary: `train` changes no file of it."""
        return self.finished and (self.out / "summary.json").is_file()

    def checkpoint(self, resume: bool) -> Path | None:
        """The training state a run continues from: its `state.pt`, when resuming."""
        path = self.out / "state.pt"
        return path if resume and path.exists() else None


def stopped_note(out: Path, epoch: int | None, epochs: int) -> str:
    """What an interrupted run leaves: the words the CLI prints before the resume command."""
    if epoch is None or epoch <= 0:
        return f"the run in {out} stopped before its first checkpoint"
    return f"the run in {out} stopped; its last checkpoint is after epoch {epoch}/{epochs}"
