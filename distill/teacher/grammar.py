"""The one place a teacher spec `<adapter>:<target>` is split (as timm's
`parse_model_name` splits `hf-hub:`/`local-dir:`), and what a parsed spec, a `TeacherRef`,
asks of its adapter's registered facts: every other module asks a `TeacherRef`.

`timm:regnety_160` -> adapter `timm`, target `regnety_160`; `cache:caches/x` -> adapter
`cache`, an adapter like the others whose facts say it replays a logit cache. A recipe that
names a teacher and its cache (`teacher.cache`) reads the cache: `TeacherRef.of(config)`.

What the core needs of one adapter is a fact declared at its registration
(`distill.registry.AdapterFacts`), read here and nowhere else: how its target is checked,
the weights file it loads, how it describes itself in a cache's manifest and compares
against one. An adapter declared with `members=True` takes its target in the members'
grammar (`distill.teacher.members`), and gets the core's checks, description and
comparison of its members.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.checkpoint import file_sha256
from distill.errors import UsageError
from distill.registry import TEACHERS, AdapterFacts

from .contract import TeacherOptions
from .members import members_of, parse_members

__all__ = ["CACHE", "NO_TEACHER", "TeacherRef", "parse_teacher"]

# The spellings of "no teacher" in a recipe's `teacher.name`.
NO_TEACHER = ("none", "null", "")
# The adapter that reads a recipe's `teacher.cache`.
CACHE = "cache"


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

    @property
    def members(self) -> bool:
        """The adapter's target is a list of members (`W*SPEC+SPEC+…`)."""
        return self.facts.members

    def check(self) -> None:
        """Refuse a bad target without building anything."""
        if self.members:
            _check_members(self.adapter, self.target)
        if self.facts.check is not None:
            self.facts.check(self.target)

    def check_paths(self) -> None:
        """Check the files the target names."""
        if self.members:
            _check_member_paths(self.adapter, self.target)
        if self.facts.check_paths is not None:
            self.facts.check_paths(self.target)

    def weights_file(self, weights: Path | None = None) -> Path | None:
        """The weights file this teacher loads, where it names one: `weights` (the recipe's
        `teacher.weights`), else the file its target names (a `checkpoint:` run's
        model.safetensors, the weights in a `timm:local-dir:` folder). None for weights a
        library or a hub provides, a seeded random init, and a teacher of members (its
        members are described one by one, `describe`)."""
        if weights is not None and Path(weights).is_file():
            return Path(weights)
        find = self.facts.weights_file
        return find(self.target) if find is not None else None

    def describe(self, options: TeacherOptions) -> dict[str, Any]:
        """What a cache's manifest records of this teacher besides the recipe's teacher
        section (`teacher_recipe`). A teacher of members: `members`, each one's spec,
        normalised weight, and the sha256 of the weights file it loads (None where it
        loads none)."""
        if self.facts.describe is not None:
            return dict(self.facts.describe(self.target, options))
        if self.members:
            return {"members": _describe_members(self.adapter, self.target, options)}
        return {}

    def compare(self, cached: dict[str, Any], run: dict[str, Any]) -> list[str] | None:
        """How the description a cache recorded (`cached`) differs from this run's (`run`,
        from `describe`), one `what (cache X, run Y)` each, over the keys `compared` names;
        None where the adapter has no comparison of its own (its description is compared
        field by field)."""
        if self.facts.compare is not None:
            return list(self.facts.compare(cached, run))
        if self.members:
            return _compare_members(cached.get("members"), run.get("members"))
        return None

    def compared(self, keys: set[str]) -> set[str]:
        """The keys of a description (`keys`: the cache's and the run's) that `compare`
        covers: every one where the adapter declares its own comparison; `members` for a
        teacher of members compared by the core; none otherwise. The others are compared
        field by field."""
        if self.facts.compare is not None:
            return set(keys)
        if self.members:
            return {"members"} & set(keys)
        return set()

    def __str__(self) -> str:
        return f"{self.adapter}:{self.target}"

    @classmethod
    def of(cls, config: Any, *, live: bool = False) -> TeacherRef | None:
        """What a recipe's `teacher` section runs: its cache when it names one (`teacher.cache`)
        unless `live`, else its `name`; None without a teacher."""
        if config.cache is not None and not live:
            return cls(CACHE, str(config.cache))
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


# -- a teacher of members ------------------------------------------------------------------
def _check_members(adapter: str, target: str) -> None:
    """Every member is a known, live teacher spec, itself of no members, with a sound target."""
    for k, (_, spec) in enumerate(parse_members(target, adapter), start=1):
        try:
            ref = parse_teacher(spec)
        except UsageError as exc:
            raise UsageError(f"{adapter}: member {k} '{spec}': {exc}") from None
        if ref.members:
            raise UsageError(f"{adapter}: member {k} '{spec}' is an ensemble; list its members")
        if ref.cached:
            raise UsageError(f"{adapter}: member {k} '{spec}' is a cache; members are live "
                             "teachers (build a cache of the whole ensemble instead)")
        try:
            ref.check()
        except UsageError as exc:
            raise UsageError(f"{adapter}: member {k} '{spec}': {exc}") from None


def _check_member_paths(adapter: str, target: str) -> None:
    for k, (_, spec) in enumerate(parse_members(target, adapter), start=1):
        try:
            parse_teacher(spec).check_paths()
        except UsageError as exc:
            raise UsageError(f"{adapter}: member {k} '{spec}': {exc}") from None


def _describe_members(adapter: str, target: str, options: TeacherOptions
                      ) -> list[dict[str, Any]]:
    out = []
    for m in members_of(target, options, adapter):
        path = parse_teacher(m.spec).weights_file(m.options.weights)
        out.append({"spec": m.spec, "weight": m.weight,
                    "weights_sha256": file_sha256(path) if path is not None else None})
    return out


def _compare_members(cached: list[dict[str, Any]] | None,
                     run: list[dict[str, Any]] | None) -> list[str]:
    """Members whose weights file differs (their specs and weights are in the name)."""
    out = []
    for k, (c, r) in enumerate(zip(cached or [], run or []), start=1):
        if c.get("spec") == r.get("spec") and c.get("weights_sha256") != r.get("weights_sha256"):
            a, b = (str(x.get("weights_sha256"))[:12] for x in (c, r))
            out.append(f"teacher member {k} '{r.get('spec')}' weights (cache sha256 {a}…, "
                       f"run {b}…)")
    return out
