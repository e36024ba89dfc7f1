"""One generic registry of named parts, and its four instances.

A part registers with a decorator; its name defaults to the function's name, and its
facts — typed data, one dataclass per kind of part (`StudentFacts`, `LossFacts`, …) — are
declared once, beside it, as the decorator's arguments or a class's `facts` attribute:

    @STUDENTS.register(distilled=True, family="deit", adapt_state=adapt_deit_state)
    def deit_tiny_distilled_patch16_224(**kwargs): ...

    STUDENTS.build("deit_tiny_distilled_patch16_224", num_classes=10)
    STUDENTS.facts("deit_tiny_distilled_patch16_224").distilled   # True

A part registered without facts (a plugin's bare callable) gets its kind's defaults; a
fact the kind does not know is an error at registration.

The built-in parts live in modules the registry imports on first use, so importing
`distill.registry` stays cheap and has no dependency on the parts. The lists of those
modules below are the one place the core names its built-in plug-in packages, `teachers`
and `students`: everywhere else it knows them only through the registry, as it knows a
third party's. Third-party packages add
parts through the entry-point groups `distill.teachers`, `distill.students`,
`distill.losses` and `distill.datasets`: an entry point naming a module is imported (its
decorators register), one naming a callable is registered under the entry point's name.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, Literal, TypeVar

from distill.errors import UsageError

__all__ = [
    "DATASETS",
    "LOSSES",
    "STUDENTS",
    "TEACHERS",
    "AdapterFacts",
    "DatasetFacts",
    "Entry",
    "LossFacts",
    "Registry",
    "RegistryError",
    "StudentFacts",
    "suggest",
]

_log = logging.getLogger(__name__)


class RegistryError(UsageError, LookupError):
    """An unknown or duplicate name."""


F = TypeVar("F")


@dataclass(frozen=True)
class Entry(Generic[F]):
    """A registered part: its name, the callable that builds it, and its typed facts."""

    name: str
    fn: Callable[..., Any]
    facts: F
    source: str = ""


@dataclass(frozen=True)
class StudentFacts:
    """What a student name stands for, known before building it.

    `shape_problem(kwargs)`: what the builder would refuse with these arguments (the
    recipe's `student_kwargs()`), in words, found without building it; None if it builds.
    Without it, the recipe's validation builds the student on the meta device to find out.
    `adapt_state(state, model)`: a foreign state dict (`student.init`: timm's, a run's of
    another size) fitted to the built `model`; returns (state, notes on what changed).
    Without it, `student.init` uses the built model's own `adapt_state(state)` method where
    it has one (as `students.deit.DeiT` does), else loads the state dict as it is."""

    distilled: bool = False  # a class + distillation token: `(cls, dist)` in training
    family: str = ""  # "deit", "convnet", "timm", …
    signature: Callable[..., Any] | None = None  # the class a `**kwargs` builder forwards to
    shape_problem: Callable[[dict[str, Any]], str | None] | None = None
    adapt_state: Callable[[dict[str, Any], Any], tuple[dict[str, Any], list[str]]] | None = None


@dataclass(frozen=True)
class DatasetFacts:
    """Where a dataset lives when the recipe says nothing (`data.root`), and how a root
    the recipe names is checked before any work: `root_check(root)` returns the problem
    (one line, naming `data.root`) or None; without one, the root must exist."""

    default_root: str | None = None
    root_check: Callable[[Path], str | None] | None = None


@dataclass(frozen=True)
class LossFacts:
    """What a loss needs, and how the paper sets it. The registry, the recipe's validation,
    the engine, the bench and the cache check all read these, and nothing else.

    `heads`: "cls" trains a class-token student, "dist" a class + distillation token one.
    `needs_teacher`: False for a loss that never reads teacher outputs (no teacher is built).
    `soft_targets`: the loss reads the teacher's distribution, not only its argmax: True,
    False, or "target" (when `loss.target` is "soft", as `token` allows).
    `paper`: the loss's settings in the paper (DeiT §5.1, Table 3), as `loss.*` fields;
    `distill bench` gives them to a cell whose recipe is about another loss.
    `method`: the row label of Table 3; `{target}` is filled with `loss.target`."""

    heads: Literal["cls", "dist"] = "cls"
    needs_teacher: bool = True
    soft_targets: bool | Literal["target"] = False
    paper: Mapping[str, Any] = field(default_factory=dict)
    method: str = ""

    def wants_soft_targets(self, target: str = "hard") -> bool:
        """Whether a loss with `loss.target = target` needs the teacher's distribution."""
        return target == "soft" if self.soft_targets == "target" else bool(self.soft_targets)

    def label(self, name: str, target: str = "hard") -> str:
        """The Table 3 row label of this loss with `loss.target = target`."""
        return self.method.format(target=target) if self.method else name


@dataclass(frozen=True)
class AdapterFacts:
    """A teacher adapter: what the core needs of it, read only through
    `distill.teacher.TeacherRef`.

    `check(target)` refuses a bad target without building anything (a recipe's validation);
    `check_paths(target)` checks the files it names (`distill recipe validate` without
    `--no-paths`, and every command before work). `cached`: the adapter replays a cache
    (`cache:<dir>`), so it is built against the run's recipe and needs no live model.
    `members`: its target is a list of member specs (`W*SPEC+SPEC+…`, the grammar of
    `distill.teacher.members`); the core checks the members, records them in a cache's
    manifest, compares them against one and names them in bench folders.
    `weights_file(target)`: the weights file the target loads, where it names one (its
    sha256 is checked against a cache's). `describe(target, options)`: what a cache's
    manifest records of the teacher besides the recipe's section, a dict; `compare(cached,
    run)`: how a recorded description differs from the run's, one line each (without it, a
    description is compared field by field). `slug(target)`: the teacher's short label in
    bench folders, made file-name-safe by the core as the default one is (default: the
    adapter and the target's last path part)."""

    check: Callable[[str], None] | None = None
    check_paths: Callable[[str], None] | None = None
    cached: bool = False
    members: bool = False
    weights_file: Callable[[str], Path | None] | None = None
    describe: Callable[[str, Any], Mapping[str, Any]] | None = None
    compare: Callable[[dict[str, Any], dict[str, Any]], list[str]] | None = None
    slug: Callable[[str], str] | None = None


def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Closest candidates to `name`: fuzzy matches first, then names containing it."""
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if len(close) < n:
        low = name.lower()
        close += [c for c in candidates if low and low in c.lower() and c not in close]
    return close[:n]


class Registry(Generic[F]):
    """Named builders of one kind of part (teacher, student, loss, dataset), each with the
    facts of its kind (`facts_type`, a dataclass whose defaults are the kind's defaults)."""

    def __init__(self, kind: str, plural: str, facts_type: type[F],
                 builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.plural = plural
        self.group = f"distill.{plural}"
        self.facts_type = facts_type
        self._builtins = builtins
        self._entries: dict[str, Entry[F]] = {}
        self._loaded = False

    # -- registration ------------------------------------------------------------------
    def register(
        self, fn: Callable[..., Any] | None = None, *, name: str | None = None, **facts: Any
    ) -> Any:
        """Register `fn` (usable bare, `@R.register`, or with facts, `@R.register(...)`).

        The facts are the decorator's keyword arguments, else `fn.facts` (a class that
        declares them), else the kind's defaults."""

        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            key = name or f.__name__
            if key in self._entries:
                prior = self._entries[key].source
                raise RegistryError(f"duplicate {self.kind} name '{key}' (already from {prior})")
            self._entries[key] = Entry(key, f, self._facts_of(key, f, facts),
                                       getattr(f, "__module__", ""))
            return f

        return add(fn) if fn is not None else add

    def _facts_of(self, key: str, fn: Callable[..., Any], given: dict[str, Any]) -> F:
        declared = getattr(fn, "facts", None)
        if not given and isinstance(declared, self.facts_type):
            return declared
        try:
            return self.facts_type(**given)
        except TypeError as exc:
            raise TypeError(f"{self.kind} '{key}': {exc}") from None

    def refresh(self) -> None:
        """Read the entry points again at the next lookup (after a plugin was installed)."""
        self._loaded = False

    def unregister(self, name: str) -> None:
        """Remove a part (for tests and plugins that replace their own entries)."""
        self._entries.pop(name, None)

    # -- lookup ------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # set first: built-in modules import this registry
        try:
            for module in self._builtins:
                importlib.import_module(module)
            for ep in _entry_points(self.group):
                self._load_plugin(ep)
        except BaseException:
            self._loaded = False  # the next lookup raises the same error again
            raise

    def _load_plugin(self, ep: metadata.EntryPoint) -> None:
        try:
            obj = ep.load()
        except RegistryError:
            raise  # a plugin registering a name that exists: an error, not a warning
        except Exception as exc:  # a broken plugin must not break the toolkit
            _log.warning("%s plugin '%s' (%s) failed to load: %s", self.kind, ep.name,
                         ep.value, exc)
            return
        if isinstance(obj, ModuleType) or not callable(obj):
            return
        known = self._entries.get(ep.name)
        if known is not None and known.fn is not obj:
            raise RegistryError(f"duplicate {self.kind} name '{ep.name}' from plugin "
                                f"{ep.value} (already from {known.source})")
        if known is None:
            self._entries[ep.name] = Entry(ep.name, obj, self._facts_of(ep.name, obj, {}),
                                           f"plugin {ep.value}")

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, optionally filtered by a glob or substring."""
        self._ensure_loaded()
        names = sorted(self._entries)
        if pattern:
            glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
            names = [n for n in names if fnmatch.fnmatch(n, glob)]
        return names

    def entry(self, name: str) -> Entry[F]:
        """The entry for `name`; an unknown name raises listing the closest names."""
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = suggest(name, self.names())
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} '{name}'{hint} (see `distill list {self.plural}`)"

    def get(self, name: str) -> Callable[..., Any]:
        return self.entry(name).fn

    def facts(self, name: str) -> F:
        """The typed facts of the part registered as `name`."""
        return self.entry(name).facts

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the builder registered as `name` with `args` and `kwargs`."""
        return self.get(name)(*args, **kwargs)


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    try:
        return list(metadata.entry_points(group=group))
    except Exception:  # broken metadata of an unrelated distribution
        return []


# The built-in plug-ins, imported by name on first use (see the module docstring).
TEACHERS: Registry[AdapterFacts] = Registry(
    "teacher",
    "teachers",
    AdapterFacts,
    builtins=("teachers.timm", "teachers.torchvision", "teachers.checkpoint", "teachers.python",
              "teachers.cache", "teachers.ensemble"),
)
STUDENTS: Registry[StudentFacts] = Registry("student", "students", StudentFacts,
                                            builtins=("students",))
LOSSES: Registry[LossFacts] = Registry("loss", "losses", LossFacts, builtins=("distill.losses",))
DATASETS: Registry[DatasetFacts] = Registry("dataset", "datasets", DatasetFacts,
                                            builtins=("distill.data.datasets",
                                                      "distill.data.webdataset",
                                                      "distill.data.hf"))
