"""The one place a teacher spec `<adapter>:<target>` is split (as timm's
`parse_model_name` splits `hf-hub:`/`local-dir:`): every other module asks a `TeacherRef`.

`timm:regnety_160` -> adapter `timm`, target `regnety_160`; `cache:caches/x` -> adapter
`cache`, an adapter like the others whose facts say it replays a logit cache. A recipe that
names a teacher and its cache (`teacher.cache`) reads the cache: `TeacherRef.of(config)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distill.errors import UsageError
from distill.registry import TEACHERS, AdapterFacts

__all__ = ["TeacherRef", "parse_teacher"]

NO_TEACHER = ("none", "null", "")


@dataclass(frozen=True)
class TeacherRef:
    """A parsed teacher spec: the registered adapter and what it is given."""

    adapter: str
    target: str

    @property
    def facts(self) -> AdapterFacts:
        return TEACHERS.facts(self.adapter)

    @property
    def cached(self) -> bool:
        """The adapter replays a logit cache instead of running a model."""
        return self.facts.cached

    def check(self) -> None:
        """Refuse a bad target without building anything."""
        if self.facts.check is not None:
            self.facts.check(self.target)

    def check_paths(self) -> None:
        """Check the files the target names."""
        if self.facts.check_paths is not None:
            self.facts.check_paths(self.target)

    def __str__(self) -> str:
        return f"{self.adapter}:{self.target}"

    @classmethod
    def of(cls, config: Any, *, live: bool = False) -> TeacherRef | None:
        """What a recipe's `teacher` section runs: its cache when it names one (`teacher.cache`)
        unless `live`, else its `name`; None without a teacher."""
        if config.cache is not None and not live:
            return cls("cache", str(config.cache))
        return parse_teacher(config.name) if config.name is not None else None


def parse_teacher(spec: str) -> TeacherRef:
    """`timm:regnety_160` -> TeacherRef("timm", "regnety_160"); an unknown or missing adapter
    is an error naming the known ones."""
    adapter, sep, target = spec.partition(":")
    if not sep or not target:
        raise UsageError(f"expected '<adapter>:<target>' such as 'timm:regnety_160' "
                         f"(adapters: {', '.join(TEACHERS.names())})")
    TEACHERS.entry(adapter)
    return TeacherRef(adapter, target)
