"""One generic registry of named parts, and its four instances.

A part registers with a decorator; its name defaults to the function's name:

    @STUDENTS.register(distilled=True)
    def deit_tiny_distilled_patch16_224(**kwargs): ...

    STUDENTS.build("deit_tiny_distilled_patch16_224", num_classes=10)

The built-in parts live in modules the registry imports on first use, so importing
`distill.registry` stays cheap and has no dependency on the parts. Third-party packages add
parts through the entry-point groups `distill.teachers`, `distill.students`,
`distill.losses` and `distill.datasets`: an entry point naming a module is imported (its
decorators register), one naming a callable is registered under the entry point's name.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

from distill.errors import UsageError

__all__ = [
    "DATASETS",
    "LOSSES",
    "STUDENTS",
    "TEACHERS",
    "Entry",
    "Registry",
    "RegistryError",
    "suggest",
]

_log = logging.getLogger(__name__)


class RegistryError(UsageError, LookupError):
    """An unknown or duplicate name."""


@dataclass(frozen=True)
class Entry:
    """A registered part: its name, the callable that builds it, and free-form tags."""

    name: str
    fn: Callable[..., Any]
    tags: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Closest candidates to `name`: fuzzy matches first, then names containing it."""
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if len(close) < n:
        low = name.lower()
        close += [c for c in candidates if low and low in c.lower() and c not in close]
    return close[:n]


class Registry:
    """Named builders of one kind of part (teacher, student, loss, dataset)."""

    def __init__(self, kind: str, plural: str, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.plural = plural
        self.group = f"distill.{plural}"
        self._builtins = builtins
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    # -- registration ------------------------------------------------------------------
    def register(
        self, fn: Callable[..., Any] | None = None, *, name: str | None = None, **tags: Any
    ) -> Any:
        """Register `fn` (usable bare, `@R.register`, or with arguments, `@R.register(...)`)."""

        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            key = name or f.__name__
            if key in self._entries:
                prior = self._entries[key].source
                raise RegistryError(f"duplicate {self.kind} name '{key}' (already from {prior})")
            self._entries[key] = Entry(key, f, dict(tags), getattr(f, "__module__", ""))
            return f

        return add(fn) if fn is not None else add

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
            self.register(obj, name=ep.name, plugin=ep.value)

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

    def entry(self, name: str) -> Entry:
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

    def tags(self, name: str) -> dict[str, Any]:
        return self.entry(name).tags

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Call the builder registered as `name` with `kwargs`."""
        return self.get(name)(**kwargs)


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    try:
        return list(metadata.entry_points(group=group))
    except Exception:  # broken metadata of an unrelated distribution
        return []


TEACHERS = Registry(
    "teacher",
    "teachers",
    builtins=("teachers.timm", "teachers.torchvision", "teachers.checkpoint", "teachers.python",
              "teachers.cache"),
)
STUDENTS = Registry("student", "students", builtins=("students",))
LOSSES = Registry("loss", "losses", builtins=("distill.losses",))
DATASETS = Registry("dataset", "datasets", builtins=("distill.data.datasets",))
