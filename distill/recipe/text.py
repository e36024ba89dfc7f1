"""Recipe text: read strictly and with bounds.

UTF-8 only, at most `MAX_RECIPE_BYTES`, no key twice in a mapping, at most `MAX_VALUES`
values once aliases are expanded and `MAX_DEPTH` levels: an alias bomb or a huge file is
refused in milliseconds, in one line naming the file. `parse_yaml` is used for recipe files
and for `--set` values alike."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from distill.errors import UsageError, one_line, show
from distill.readers import path_is, read_text, size_text

__all__ = ["MAX_DEPTH", "MAX_RECIPE_BYTES", "MAX_VALUES", "RecipeYAMLError", "parse_yaml",
           "read_yaml"]

# Bounds of what a recipe may be: a page of YAML, not a file that takes minutes or gigabytes.
MAX_RECIPE_BYTES = 256 << 10  # the shipped recipes are under 2 KB
MAX_VALUES = 100_000  # values after alias expansion (an alias bomb expands exponentially)
MAX_DEPTH = 64  # nesting levels (a recipe uses 3 or 4)

class RecipeYAMLError(yaml.MarkedYAMLError):
    """YAML that parses but is refused: a duplicate key, too many values, too deep."""

    def __init__(self, problem: str, mark: Any = None):
        super().__init__(problem=problem, problem_mark=mark)


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present


class _Loader(_Base):
    """Safe YAML (no arbitrary objects) that also reads `1e-3` as a float (YAML 1.2; PyYAML's
    1.1 wants `1.0e-3`) and refuses a key given twice in one mapping, at any depth."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: SafeConstructor's own error names it
                    continue
                if first is not None:
                    raise RecipeYAMLError(f"duplicate key {show(key)} (first on line {first})",
                                          key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _expanded(node: Any, depth: int, memo: dict[int, tuple[int, int]],
              path: set[int]) -> tuple[int, int]:
    """(values, nesting) of `node` with every alias expanded, counted without expanding:
    each node once (aliases share nodes). Refuses too many values, too deep, a cycle."""
    seen = memo.get(id(node))
    if seen is None:
        if id(node) in path:
            raise RecipeYAMLError("an alias refers to a value that contains it (a recursive "
                                  "alias)", node.start_mark)
        if depth > MAX_DEPTH:
            raise RecipeYAMLError(f"nested more than {MAX_DEPTH} levels deep", node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            if "\0" in node.value:  # `"\0"` in quotes: no name or path holds one
                raise RecipeYAMLError("a NUL character in a value", node.start_mark)
            seen = (1, 0)
        else:
            children = (node.value if isinstance(node, yaml.SequenceNode)
                        else [n for pair in node.value for n in pair])
            path.add(id(node))
            count, height = 1, 0
            for child in children:
                n, h = _expanded(child, depth + 1, memo, path)
                count, height = count + n, max(height, h + 1)
                if count > MAX_VALUES:
                    raise RecipeYAMLError(f"expands to more than {MAX_VALUES:,} values (aliases "
                                          "of aliases?); a recipe is a page of settings",
                                          node.start_mark)
            path.discard(id(node))
            seen = (count, height)
        memo[id(node)] = seen
    if depth + seen[1] > MAX_DEPTH:
        raise RecipeYAMLError(f"nested more than {MAX_DEPTH} levels deep", node.start_mark)
    return seen


def parse_yaml(text: str) -> Any:
    """YAML text read with bounds: at most `MAX_RECIPE_BYTES`, `MAX_VALUES` values after
    alias expansion, `MAX_DEPTH` levels, no key twice in a mapping. Refusals are
    `RecipeYAMLError`, every other problem a `yaml.YAMLError` too (a bad date, an integer of
    thousands of digits included)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_RECIPE_BYTES:
        raise RecipeYAMLError(f"{size_text(size)} of YAML; a recipe is at most "
                              f"{size_text(MAX_RECIPE_BYTES)}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # undecodable bytes of a command line (surrogates)
        raise yaml.YAMLError(f"not UTF-8 text (at character {exc.start})") from None
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise RecipeYAMLError(f"nested more than {MAX_DEPTH} levels deep") from None
        if node is None:
            return None
        _expanded(node, 1, {}, set())
        try:
            return loader.construct_document(node)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # SafeConstructor's own: `2024-13-45` as a date, an int past Python's digit limit
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise yaml.YAMLError(reason) from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}:" if mark is not None else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
    if isinstance(exc, RecipeYAMLError):
        return f"{source}:{where} {problem}"
    return f"{source}:{where} invalid YAML ({problem})"


def read_yaml(path: Path) -> dict[str, Any]:
    """A recipe file's sections, read strictly (`parse_yaml`); every problem one line
    naming the file."""
    found = path_is(path, "any")
    if isinstance(found, str):
        raise UsageError(one_line(f"{path}: cannot look at the recipe file ({found})"))
    if not found:
        raise UsageError(one_line(f"{path}: recipe file not found"))
    if not path.is_file() and not path.is_dir():
        raise UsageError(f"{path}: not a regular file; a recipe is a YAML file")
    text = read_text(path, "recipe", MAX_RECIPE_BYTES)
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise UsageError(_yaml_problem(exc, str(path))) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a recipe is a mapping of sections, got {type(data).__name__}")
    return data
