"""The docs cannot rot: README.md and every page of docs/ are checked against the repository
and against the real command line.

- Every relative link resolves to a file or folder of the repository. A docs page links only
  inside docs/ (mkdocs serves nothing else); it names other files of the repository by their
  path in code formatting, `benchmarks/results/…`, and each such path must exist.
- Every `distill …` command line in a shell code block parses against the CLI (its
  sub-command, its options, their types and counts), without running anything.
- `make docs` builds strictly (a broken link or anchor, a page left out of the navigation),
  checked here when mkdocs is installed (`pip install -e '.[docs]'`).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

from distill.cli import app
from distill.errors import DistillError

try:  # typer ≥ 0.2x carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # older typer runs on click itself
    from click import exceptions as click_exceptions

# What `--version` and `--help` raise once parsed: typer's own Exit, or click's.
EXITS = tuple({typer.Exit, getattr(click_exceptions, "Exit", typer.Exit)})

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
README_MAX_LINES = 160  # the front door stays short: the manual is in docs/

SHELL = {"", "bash", "sh", "shell", "console", "zsh"}
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# A repository path in code formatting: a top-level folder of the repository, then no
# placeholder, glob or brace (`recipes/imagenet/deit_{tiny,small}_none.yaml` is a pattern).
REPO_PATH = re.compile(r"^(?:benchmarks|recipes|tests|docs|distill|teachers|students)/"
                       r"[^\s*?{}<>\[\]…$]*$")
OPERATORS = {"|", "||", "&&", ";", "&", "(", ")"}


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def split_page(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, list[str]]]]:
    """(prose lines, code blocks): each prose line with its number; each fenced block with
    the number of its first line, its language and its lines."""
    prose: list[tuple[int, str]] = []
    blocks: list[tuple[int, str, list[str]]] = []
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence, lang, body, start = m.group(1), m.group(2).lower(), [], n + 1
            else:
                prose.append((n, line))
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2):
            blocks.append((start, lang, body))
            fence = None
        else:
            body.append(line)
    assert fence is None, "a code block is never closed"
    return prose, blocks


# -- links and paths ---------------------------------------------------------------------

def links(page: Path) -> list[tuple[int, str]]:
    prose, _ = split_page(page.read_text(encoding="utf-8"))
    found = []
    for n, line in prose:
        bare = CODE_SPAN.sub("", line)  # `[x](y)` inside code is not a link
        found += [(n, t) for t in LINK.findall(bare)]
        m = REF_LINK.match(bare)
        if m:
            found.append((n, m.group(1)))
    return found


def link_problem(page: Path, target: str) -> str | None:
    """What is wrong with a link from `page` to `target`, or None."""
    if SCHEME.match(target) or target.startswith("#"):
        return None  # a web address; an anchor on the page itself (mkdocs checks those)
    path = target.split("#", 1)[0].split("?", 1)[0]
    if path.startswith("/"):
        return "an absolute link: write it relative to the page"
    resolved = (page.parent / path).resolve()
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if not resolved.exists():
        return "no such file or folder"
    if page.is_relative_to(DOCS) and not resolved.is_relative_to(DOCS):
        return ("a docs page links outside docs/, which mkdocs cannot serve: name the file "
                f"as `{rel(resolved)}` in code formatting instead")
    return None


def repo_paths(page: Path) -> list[tuple[int, str]]:
    prose, _ = split_page(page.read_text(encoding="utf-8"))
    found = []
    for n, line in prose:
        for _, span in CODE_SPAN.findall(line):
            span = span.strip()
            if REPO_PATH.match(span.split("::", 1)[0]):
                found.append((n, span))
    return found


def path_problem(span: str) -> str | None:
    path, _, test = span.partition("::")
    target = ROOT / path
    if not target.exists():
        return "no such file or folder in the repository"
    if test and f"def {test.split('[', 1)[0]}(" not in target.read_text(encoding="utf-8"):
        return f"{path} has no test {test!r}"
    return None


# -- commands ------------------------------------------------------------------------------

def shell_lines(lang: str, body: list[str]) -> list[tuple[int, str]]:
    """The block's command lines: continuations joined, prompts and comment lines dropped;
    in a `console` block only the lines after a `$ ` prompt (the rest is output)."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for i, raw in enumerate(body):
        if pending is not None:
            start, text = pending
            text += " " + raw.strip()
        else:
            start, text = i, raw.strip()
            if text.startswith("$ "):
                text = text[2:]
            elif lang == "console":
                continue
        if text.endswith("\\"):
            pending = (start, text[:-1])
            continue
        pending = None
        if text and not text.startswith("#"):
            lines.append((start, text))
    return lines


def distill_args(line: str) -> list[list[str]]:
    """The arguments of each `distill` call on a shell line: `distill …`,
    `.venv/bin/distill …`, `python -m distill …`, `torchrun … -m distill …`."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    tokens = list(lex)
    calls, segment = [], []
    for tok in [*tokens, ";"]:
        if tok not in OPERATORS:
            segment.append(tok)
            continue
        words, skip = [], False
        for word in segment:  # drop redirections (`> f`, `2>&1`) and their targets
            if skip:
                skip = False
            elif set(word) <= set("<>&") and set(word) & set("<>"):
                if words and words[-1].isdigit():  # the `2` of `2>&1`
                    words.pop()
                skip = True
            else:
                words.append(word)
        for i, word in enumerate(words):
            if word == "distill" or word.endswith("/distill"):
                calls.append(words[i + 1:])
                break
        segment = []
    return calls


def commands(page: Path) -> list[tuple[int, str, list[str]]]:
    _, blocks = split_page(page.read_text(encoding="utf-8"))
    found = []
    for start, lang, body in blocks:
        if lang not in SHELL:
            continue
        for i, line in shell_lines(lang, body):
            found += [(start + i, line, args) for args in distill_args(line)]
    return found


@functools.cache
def command_tree():
    """The CLI's click command tree, built from the typer app once (about 10 ms a build, and
    there are a hundred command lines to parse)."""
    return typer.main.get_command(app)


def parse_problem(args: list[str]) -> str | None:
    """Parse `distill ARGS` as the CLI would, without running it; what it refuses, or None."""
    cmd = command_tree()
    ctx = cmd.context_class(cmd, info_name="distill")
    words = list(args)
    try:
        while hasattr(cmd, "get_command"):  # a group: the next word names a sub-command
            if not words:
                return f"'{ctx.command_path}' needs a sub-command"
            if words[0].startswith("-"):  # the group's own options (--version)
                cmd.make_context(ctx.info_name, words, parent=ctx.parent)
                return None
            sub = cmd.get_command(ctx, words[0])
            if sub is None:
                return (f"'{ctx.command_path}' has no sub-command '{words[0]}' "
                        f"(it has: {', '.join(cmd.list_commands(ctx))})")
            cmd, ctx, words = sub, sub.context_class(sub, info_name=words[0], parent=ctx), words[1:]
        cmd.make_context(ctx.info_name, words, parent=ctx.parent)
    except EXITS as exc:  # --version, --help: parsed, then the command exits
        code = getattr(exc, "exit_code", 0)
        return None if code == 0 else f"exits with {code}"
    except click_exceptions.ClickException as exc:
        return exc.format_message()
    except DistillError as exc:  # an option's own check (`--live -1`)
        return str(exc)
    return None


# -- the tests -----------------------------------------------------------------------------

LINKS = [(p, n, t) for p in PAGES for n, t in links(p)]
PATHS = [(p, n, s) for p in PAGES for n, s in repo_paths(p)]
COMMANDS = [(p, n, line, args) for p in PAGES for n, line, args in commands(p)]


def test_there_are_pages_links_and_commands_to_check():
    assert {rel(p) for p in PAGES} >= {"README.md", "docs/index.md", "docs/recipes.md"}
    assert len(LINKS) > 20 and len(PATHS) > 20 and len(COMMANDS) > 50


@pytest.mark.parametrize("page,n,target", LINKS, ids=[f"{rel(p)}:{n}:{t}" for p, n, t in LINKS])
def test_every_relative_link_resolves(page, n, target):
    problem = link_problem(page, target)
    assert problem is None, f"{rel(page)}:{n}: link '{target}': {problem}"


@pytest.mark.parametrize("page,n,span", PATHS, ids=[f"{rel(p)}:{n}:{s}" for p, n, s in PATHS])
def test_every_repository_path_named_exists(page, n, span):
    problem = path_problem(span)
    assert problem is None, f"{rel(page)}:{n}: `{span}`: {problem}"


@pytest.mark.parametrize("page,n,line,args", COMMANDS,
                         ids=[f"{rel(p)}:{n}" for p, n, _, _ in COMMANDS])
def test_every_distill_command_parses(page, n, line, args):
    problem = parse_problem(args)
    assert problem is None, f"{rel(page)}:{n}: {line}\n  {problem}"


@pytest.mark.parametrize("line,needle", [
    ("distill train recipes/smoke.yaml --teachr timm:resnet18", "--teachr"),
    ("distill trian recipes/smoke.yaml", "'trian'"),
    ("distill cache biuld recipes/smoke.yaml --out caches/x", "'biuld'"),
    ("distill speed recipes/smoke.yaml --steps many", "--steps"),
    ("distill cache verify caches/x --live -1", "--live"),
    ("distill list models", "models"),
    ("distill recipe show RECIPE [--set …]", "[--set"),
    ("distill cache build recipes/smoke.yaml", "--out"),
    ("distill recipe", "sub-command"),
])
def test_the_checker_refuses_what_the_cli_refuses(line, needle):
    (args,) = distill_args(line)
    problem = parse_problem(args)
    assert problem is not None and needle in problem, problem


@pytest.mark.parametrize("line,calls", [
    ("distill recipe schema > recipe.schema.json", [["recipe", "schema"]]),
    ("PYTHONPATH=. .venv/bin/distill list students | head  # a comment",
     [["list", "students"]]),
    ("torchrun --nproc-per-node 8 -m distill train R --set 'a.b=[1, 2]' 2>&1 | tee log",
     [["train", "R", "--set", "a.b=[1, 2]"]]),
    ("benchmarks/record.sh out.log -- distill train R && distill eval runs/x",
     [["train", "R"], ["eval", "runs/x"]]),
    ("hf upload ORG/deit runs/x", []),
])
def test_command_lines_are_split_as_a_shell_would(line, calls):
    assert distill_args(line) == calls


def test_links_and_paths_are_checked(tmp_path):
    page = DOCS / "page.md"  # where it would be: only its folder matters
    assert link_problem(page, "recipes.md#losses") is None
    assert link_problem(page, "recipe.md") == "no such file or folder"
    assert "outside docs/" in link_problem(page, "../recipes/smoke.yaml")
    assert link_problem(ROOT / "README.md", "recipes/smoke.yaml") is None
    assert path_problem("recipes/smoke.yaml") is None
    assert path_problem("recipes/smoke.yml") is not None
    assert path_problem("tests/test_docs.py::test_links_and_paths_are_checked") is None
    assert path_problem("tests/test_docs.py::test_nothing") is not None


def test_the_readme_stays_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines: the manual belongs in docs/, measurements beside their "
        "raw output in benchmarks/results/")


def test_mkdocs_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    pytest.importorskip("material", reason="the docs extra: pip install -e '.[docs]'")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def _recipe_table_row(section: str) -> str:
    """The row of docs/recipes.md's section table for `section`."""
    text = (DOCS / "recipes.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith(f"| `{section}` |")]
    assert len(rows) == 1, f"docs/recipes.md: one table row for `{section}`"
    return rows[0]


def test_the_recipe_table_names_every_dataset_and_schedule_field():
    """The section table of docs/recipes.md lists each built-in dataset in its `data` row
    and each `schedule` field in its row (so a new one cannot go undocumented)."""
    from distill.recipe import ScheduleConfig
    from distill.registry import DATASETS

    data, schedule = _recipe_table_row("data"), _recipe_table_row("schedule")
    missing = [n for n in DATASETS.names() if f"`{n}`" not in data]
    missing += [f"schedule.{f}" for f in ScheduleConfig.model_fields if f"`{f}`" not in schedule]
    assert not missing, f"docs/recipes.md's section table misses {missing}"


def test_the_lr_page_describes_both_schedule_steps():
    """`schedule.step` has a paragraph on each mode, and no unsourced measurement."""
    text = (DOCS / "recipes.md").read_text(encoding="utf-8")
    section = text.split("## The learning rate", 1)[1].split("\n## ", 1)[0]
    assert "`schedule.step`" in section and "`iter`" in section and "`epoch`" in section
    assert "fraction of a percent" not in section
