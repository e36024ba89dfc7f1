"""Fuzz: the shipped recipes, mutated (keys deleted, values of other types, huge values, deep
nesting, byte garbage, duplicate keys, truncation, alias bombs), through `distill recipe
validate` and `distill recipe show` (train has no dry run that does not train). Every one
ends with exit 0 or 2, no traceback, and a few lines on stderr per mutation."""

from __future__ import annotations

import contextlib
import copy
import io
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))
TREES = {p: yaml.safe_load(p.read_text()) for p in RECIPES}


def _deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = [value]
    return value


# Values of every type, and huge ones, for any field.
VALUES = [
    None, True, False, 0, -1, -3, 2**63, 10**30, 1e308, -1e-308, math.nan, math.inf, "", "none",
    "x", "timm:", "ensemble:", "checkpoint:/no/such/run", "cache:", "python:os", "🙂 ünï",
    "a\nb\u2028c", [], {}, [1, "a", None], {"k": 1, "2": [3]}, "x" * 100_000, _deep(80),
    list(range(5000)), {f"k{i}": i for i in range(2000)},
]
# Scalars written as YAML text, in place of a value of the recipe's text.
TOKENS = [
    "9" * 5000, "1e99999", "-.inf", ".nan", "2024-13-45", "2024-01-01", "!!binary aGk=",
    "!!binary ###", "!!python/object/apply:os.system [ls]", "*undefined", "&a x", "'unclosed",
    "{", "[1, 2", "~", '"\\xff"', "\t1", "!!set {a, b}", "!!omap [a: 1]", "0x_", "0o19",
    "<<: 1", "? [a, b]", "|", ">-", "%YAML 1.1",
]
BOMB = ("\nlol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(f"l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 0 else f'l{i - 1}'}"] * 9) + "]\n"
                  for i in range(9)))


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def _parent(tree: Any, path: tuple) -> Any:
    for p in path[:-1]:
        tree = tree[p]
    return tree


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, int]:
    """A shipped recipe's bytes with 1 to 3 mutations, and how many."""
    path = draw(st.sampled_from(RECIPES))
    tree = yaml.safe_load(yaml.safe_dump(TREES[path]))  # a fresh copy
    n = draw(st.integers(1, 3))
    text_ops = []
    for _ in range(n):
        op = draw(st.sampled_from(["delete", "swap", "swap", "token", "garbage", "duplicate",
                                   "truncate", "bomb"]))
        where = _paths(tree)
        if op in ("delete", "swap") and where:
            at = draw(st.sampled_from(where))
            parent = _parent(tree, at)
            if op == "delete":
                del parent[at[-1]]
            else:
                parent[at[-1]] = copy.deepcopy(draw(st.sampled_from(VALUES)))
        else:
            text_ops.append(op)
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=100)
    for op in text_ops:
        if op == "token":
            spots = list(re.finditer(r"(?m)^( *)([A-Za-z_]\w*): (\S.*)$", text))
            if spots:
                m = draw(st.sampled_from(spots))
                text = (text[:m.start(3)] + draw(st.sampled_from(TOKENS)) + text[m.end(3):])
        elif op == "duplicate":
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, max(len(lines) - 1, 0)))
            text = "".join(lines[:i + 1] + lines[i:])  # a key twice, top-level or nested
        elif op == "bomb":
            text += BOMB
        elif op == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
    data = text.encode()
    if "garbage" in text_ops:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=24)) + data[at:]
    return data, n


def _distill(*args: str) -> tuple[int, str, str]:
    from distill.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def where(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "recipe.yaml"


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_mutated_recipes_end_in_exit_0_or_2_and_a_few_lines(where, case):
    data, n = case
    where.write_bytes(data)
    for args in (["recipe", "validate", str(where), "--no-paths"], ["recipe", "show", str(where)]):
        t0 = time.perf_counter()
        code, out, err = _distill(*args)
        took = time.perf_counter() - t0
        assert code in (0, 2), (args, code, err[-2000:])
        assert "Traceback" not in out + err, err[-2000:]
        lines = err.strip().splitlines()
        assert len(lines) <= 5 * n + 1, err
        assert all(len(line) <= 1100 for line in lines), max(map(len, lines))
        if code == 2:
            assert any(line.startswith("error: ") for line in lines), err
        assert took < 10, (args, took)
