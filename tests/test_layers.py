"""The import rules stated in `distill/__init__.py` and `distill/registry.py`, read from the
code: every import of every module of `distill`, `teachers` and `students` (at the top, in
a function, or for type checking alike, and the dynamic ones: `importlib.import_module`,
`__import__` and `find_spec` of a constant name), parsed with `ast`, so the rules cannot
regress unnoticed.

- The core knows its plug-ins only through the registry: no module of `distill` imports
  `teachers` or `students`; the registry names their modules once, as text, in its lists
  of built-in plug-ins, and no other text of the core names one of their modules.
- Plug-ins are handed their options: no adapter imports the engine, the bench, the CLI or
  the recipe; a student imports no teacher, nor any of those.
- Inside `distill`, imports point down the layers, and no two packages import each other.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("distill", "teachers", "students")

# Inside `distill`, from the top down; a package may import its own layer or those below
# it. `teacher` and `student` hold the plug-ins' contracts, so the plug-ins can use them.
LAYERS = [
    {"cli", "__main__"},
    {"bench"},
    {"engine"},
    {"losses", "data", "cache", "recipe", "hub", "plots"},
    {"teacher", "student"},
    {"registry", "errors", "checkpoint", "constants", "readers", "__init__"},
]
RANK = {unit: len(LAYERS) - i for i, layer in enumerate(LAYERS) for unit in layer}
NOT_FOR_PLUGINS = ("distill.engine", "distill.bench", "distill.cli", "distill.recipe")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Calls that import (or find) a module by name: `importlib.import_module(name)`,
# `import_module(name)`, `__import__(name)`, `importlib.util.find_spec(name)`, `find_spec(name)`.
DYNAMIC = {"import_module", "__import__", "find_spec"}


def _called(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _absolute(name: str, level: int, package: list[str]) -> str:
    """`name` imported `level` dots up from `package`, as an absolute module name."""
    if not level:
        return name
    return ".".join([*package[:len(package) - level + 1], *([name] if name else [])])


def _dynamic(node: ast.Call, package: list[str]) -> str | None:
    """The module a dynamic import call names by a constant (relative to its `package=`
    argument where the name starts with dots), or None."""
    if _called(node) not in DYNAMIC or not node.args:
        return None
    arg = node.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        return None
    name = arg.value
    level = len(name) - len(name.lstrip("."))
    if not level:
        return name
    anchor = next((k.value for k in node.keywords if k.arg == "package"), None)
    if len(node.args) > 1 and _called(node) != "__import__":
        anchor = node.args[1]
    if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
        return _absolute(name[level:], level, anchor.value.split("."))
    return _absolute(name[level:], level, package)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module `path` imports, absolute, with its line (`from a import b` gives `a`
    and `a.b`: b may be a module; a dynamic import of a constant name gives that name)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and (module := _dynamic(node, package)) is not None:
            found.append((module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, package)
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _unit(module: str) -> str:
    """`distill.cache.check` -> `cache`; `distill` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _ours(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


def test_every_package_is_read():
    assert len(_modules("distill")) > 50 and _modules("teachers") and _modules("students")


@pytest.mark.parametrize("path", _modules("distill"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_plug_in(path):
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {mod}" for mod, line in _imports(path)
             if _ours(mod, "teachers") or _ours(mod, "students")]
    assert not wrong, "the core knows plug-ins through the registry only: " + "; ".join(wrong)


def _builtins_list() -> list[str]:
    """The registry's lists of built-in plug-in modules (its `builtins=` arguments)."""
    tree = ast.parse((ROOT / "distill" / "registry.py").read_text())
    lists = [kw.value for n in ast.walk(tree) if isinstance(n, ast.Call)
             for kw in n.keywords if kw.arg == "builtins"]
    named = [ast.literal_eval(v) for v in lists]
    return sorted(m for modules in named for m in modules if m.split(".")[0] != "distill")


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module and of its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _plug_in_names(path: Path) -> list[tuple[str, int]]:
    """Text in `path`'s code (not its docstrings) that starts as a module of `teachers` or
    `students` does (`"teachers.timm"`, an f-string's `"students."`), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    return [(n.value, n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
            and n.value.startswith(("teachers.", "students."))]


def test_the_registry_names_the_built_in_plug_ins_once():
    """The one list of built-in plug-in packages: the registry's, as module names."""
    plug_ins = _builtins_list()
    assert plug_ins == sorted(["teachers.timm", "teachers.torchvision", "teachers.checkpoint",
                               "teachers.python", "teachers.cache", "teachers.ensemble",
                               "students"])
    # elsewhere in the registry, the packages are named only as words (entry-point groups)
    loose = [name for name, _ in _plug_in_names(ROOT / "distill" / "registry.py")]
    assert sorted(loose) == [m for m in plug_ins if "." in m]


@pytest.mark.parametrize("path", [p for p in _modules("distill") if p.name != "registry.py"
                                  or p.parent.name != "distill"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_text_of_the_core_names_a_plug_in_module(path):
    """A module name of `teachers` or `students` as text (for an import built at run time,
    `importlib.import_module(f"teachers.{name}")`) only in the registry's list."""
    wrong = [f"{path.relative_to(ROOT)}:{line} names '{text}'"
             for text, line in _plug_in_names(path)]
    assert not wrong, "the core names plug-in modules only in the registry's list: " + (
        "; ".join(wrong))


@pytest.mark.parametrize("code, module", [
    ('importlib.import_module("teachers.ensemble")', "teachers.ensemble"),
    ('import_module("students.deit")', "students.deit"),
    ('__import__("students.deit")', "students.deit"),
    ('importlib.util.find_spec("teachers.timm")', "teachers.timm"),
    ('importlib.import_module(".ensemble", package="teachers")', "teachers.ensemble"),
    ('importlib.import_module(".ensemble", "teachers")', "teachers.ensemble"),
    ('importlib.import_module(name)', None)])
def test_dynamic_imports_are_read(tmp_path, monkeypatch, code, module):
    """A dynamic import of a constant name counts as an import: a planted one in a core
    module breaks the rule that the core imports no plug-in."""
    planted = tmp_path / "distill" / "engine" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(f"import importlib\nfrom importlib import import_module\n\n\n"
                       f"def load(name):\n    return {code}\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert (module, 6) in _imports(planted) if module else all(
        line != 6 for _, line in _imports(planted))
    if module is None:
        return
    with pytest.raises(AssertionError, match=f"imports {module}"):
        test_the_core_imports_no_plug_in(planted)


@pytest.mark.parametrize("path", [*_modules("teachers"), *_modules("students")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_a_plug_in_is_handed_its_options(path):
    """No adapter or student imports the engine, the bench, the CLI or the recipe; a
    student imports no teacher."""
    banned = NOT_FOR_PLUGINS + (("teachers",) if path.parts[-2] == "students" else ())
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {mod}" for mod, line in _imports(path)
             if any(_ours(mod, b) for b in banned)]
    assert not wrong, "; ".join(wrong)


def _core_edges() -> dict[tuple[str, str], str]:
    """(importing unit, imported unit) -> one place it happens, between `distill`'s packages."""
    edges: dict[tuple[str, str], str] = {}
    for path in _modules("distill"):
        here = _unit(_module_name(path))
        for mod, line in _imports(path):
            if not _ours(mod, "distill") or mod == "distill.__version__":
                continue
            there = _unit(mod)
            if there != here and there in RANK:
                edges.setdefault((here, there), f"{path.relative_to(ROOT)}:{line}")
    return edges


def test_every_core_package_has_a_layer():
    units = {_unit(_module_name(p)) for p in _modules("distill")}
    assert units <= set(RANK), f"no layer for {sorted(units - set(RANK))}: add it to LAYERS"


def test_the_core_imports_point_down_the_layers():
    up = [f"{where}: {a} imports {b}" for (a, b), where in _core_edges().items()
          if RANK[b] > RANK[a]]
    assert not up, "an import runs up the layers: " + "; ".join(up)


def test_no_two_packages_import_each_other():
    """No circle between the packages: `distill`'s own, `teachers` and `students`."""
    graph: dict[str, set[str]] = {}
    for (a, b) in _core_edges():
        graph.setdefault(a, set()).add(b)
    for package in ("teachers", "students"):
        for path in _modules(package):
            for mod, _ in _imports(path):
                if _ours(mod, "distill") and _unit(mod) in RANK:
                    graph.setdefault(package, set()).add(_unit(mod))
                elif mod.split(".")[0] in ("teachers", "students") and mod.split(".")[0] != package:
                    graph.setdefault(package, set()).add(mod.split(".")[0])

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    circles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if reaches(b, a))
    assert not circles, "packages in a circle: " + ", ".join(circles)
