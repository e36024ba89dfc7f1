"""The import rules of ARCHITECTURE.md, read from the code: every import of every module of
`distill`, `teachers` and `students` (at the top, in a function, or for type checking
alike), parsed with `ast`, so the rules cannot regress unnoticed.

- The core knows its plug-ins only through the registry: no module of `distill` imports
  `teachers` or `students`; the registry names their modules once, as text, in its lists
  of built-in plug-ins.
- Plug-ins are handed their options: no adapter imports the engine, the bench, the CLI or
  the recipe; a student imports no teacher, nor any of those.
- Inside `distill`, imports point down the layers, and no two packages import each other.
"""

from __future__ import annotations

import ast
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


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module `path` imports, absolute, with its line (`from a import b` gives `a`
    and `a.b`: b may be a module)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[:len(package) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
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


def test_the_registry_names_the_built_in_plug_ins_once():
    """The one list of built-in plug-in packages: the registry's, as module names."""
    tree = ast.parse((ROOT / "distill" / "registry.py").read_text())
    lists = [kw.value for n in ast.walk(tree) if isinstance(n, ast.Call)
             for kw in n.keywords if kw.arg == "builtins"]
    named = [ast.literal_eval(v) for v in lists]
    plug_ins = sorted(m for modules in named for m in modules if m.split(".")[0] != "distill")
    assert plug_ins == sorted(["teachers.timm", "teachers.torchvision", "teachers.checkpoint",
                               "teachers.python", "teachers.cache", "teachers.ensemble",
                               "students"])
    # elsewhere in the registry, the packages are named only as words (entry-point groups)
    loose = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
             and isinstance(n.value, str) and n.value.startswith(("teachers.", "students."))]
    assert sorted(loose) == [m for m in plug_ins if "." in m]


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
