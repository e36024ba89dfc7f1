"""The `distill` command: one module per subcommand, one console script.

Bad input (a recipe field, a registry name, a path) ends with one line per problem on
stderr and exit code 2, never a traceback. Ctrl-C ends with one line saying what stopped and
the command that continues it, and exit code 130.
"""

from __future__ import annotations

import functools
import logging
import shlex
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape

from distill.engine import dist, interrupt
from distill.errors import DistillError, OptionError

from . import bench, cache, data, ls, recipe, report, speed, train
from . import eval as eval_cmd
from ._common import err_console

try:  # typer ≥ 0.2x carries its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # older typer runs on click itself
    from click import exceptions as _click_errors

_UsageError = _click_errors.UsageError
_ClickException = _click_errors.ClickException
_NoArgsIsHelp = getattr(_click_errors, "NoArgsIsHelpError", ())  # click < 8.2: none

app = typer.Typer(
    name="distill",
    help="Train data-efficient image transformers (DeiT) by distillation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # typer's --install-completion / --show-completion
)


def _version(value: bool) -> None:
    if value:
        from distill import __version__

        typer.echo(f"distill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                       help="Print the version and exit.")) -> None:
    """Train data-efficient image transformers (DeiT) by distillation."""


app.command("train")(train.train)
app.command("eval")(eval_cmd.evaluate)
app.command("list")(ls.list_parts)
app.command("report")(report.report)
app.command("bench")(bench.bench)
app.command("speed")(speed.speed)
app.add_typer(recipe.app, name="recipe")
app.add_typer(cache.app, name="cache")
app.add_typer(data.app, name="data")


# Recipe fields the commands set with a flag of their own (an `OptionError` names the field).
_FLAGS = {"run.out": "--out"}


class _Interrupted(Exception):
    """Ctrl-C inside a command, carried past typer (which would turn it into a bare 130 and
    drop the engine's note of what was saved)."""

    def __init__(self, interrupt: KeyboardInterrupt):
        super().__init__("interrupted")
        self.interrupt = interrupt


def _carry_interrupt(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise _Interrupted(exc) from exc

    return run


def _command() -> Any:
    """The click command tree of `app`, each command's callback carrying Ctrl-C out."""
    root = typer.main.get_command(app)
    todo: list[Any] = [root]
    while todo:
        cmd = todo.pop()
        if cmd.callback is not None:
            cmd.callback = _carry_interrupt(cmd.callback)
        todo += list(getattr(cmd, "commands", {}).values())
    return root


def _usage_line(exc: Exception) -> str:
    """click's usage error (unknown option, missing or bad argument) as one line, with the
    command whose --help lists what it takes."""
    line = " ".join(exc.format_message().split()).replace("Value error, ", "")
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _UsageError) and ctx is not None:
        line += f" (see: {ctx.command_path} --help)"
    return line


def _interrupted(args: list[str], exc: KeyboardInterrupt | None) -> str:
    """The one line Ctrl-C prints: what stopped, what is kept, how to continue."""
    again = "distill " + shlex.join(args)
    stopped = getattr(exc, "distill_stopped", None)
    command = args[:2] if args[:1] in (["cache"], ["data"]) else args[:1]
    if command == ["train"]:
        resume = again if "--resume" in args else again + " --resume"
        if stopped is None:
            return f"interrupted before the run started; start it with: {resume}"
        return f"interrupted: {stopped}; continue with: {resume}"
    if command == ["cache", "build"]:
        return ("interrupted: the cache build stopped; the shards it wrote are kept; continue "
                f"with the same command: {again}")
    if command == ["data", "pack"]:
        return ("interrupted: the pack stopped; the shards it wrote are kept; continue with "
                f"the same command: {again}")
    if command == ["bench"]:
        return ("interrupted: the benchmark stopped; finished cells are kept and the cell that "
                f"was training resumes from its last checkpoint; continue with the same "
                f"command: {again}")
    return f"interrupted: {again} stopped"


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    top = dist.topology()
    # Under torchrun each rank says which it is: a failing rank's error is the one to read.
    tag = f"[rank {top.rank}] " if top.distributed else ""
    args = sys.argv[1:] if argv is None else list(argv)
    interrupt.install()  # a Ctrl-C swallowed where Python only prints exceptions still stops
    try:  # the arguments ride along in the root context: results record their command
        code = _command().main(args=args, prog_name="distill", obj={"argv": args},
                               standalone_mode=False)
        if code == 130:  # Ctrl-C outside a command (while parsing)
            raise _Interrupted(KeyboardInterrupt())
        if isinstance(code, int) and code:  # typer.Exit(code) raised by a command
            sys.exit(code)
    except _Interrupted as exc:
        lead = "\n" if err_console.is_terminal else ""  # past the terminal's ^C
        err_console.print(f"{lead}{tag}{_interrupted(args, exc.interrupt)}", markup=False,
                          highlight=False, soft_wrap=True)
        sys.exit(130)
    except _NoArgsIsHelp as exc:  # type: ignore[misc]  # bare `distill`: its help
        exc.show()
        sys.exit(exc.exit_code)
    except _ClickException as exc:  # usage: one line, exit 2 (click's code)
        err_console.print(f"[bold red]error:[/bold red] {escape(tag + _usage_line(exc))}",
                          highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:  # EOF at a prompt
        sys.exit(1)
    except DistillError as exc:
        if isinstance(exc, OptionError):  # a library argument: named by its flag here
            exc = exc.as_flag(_FLAGS.get(exc.option))
        for line in exc.lines:
            err_console.print(f"[bold red]error:[/bold red] {escape(tag + line)}", markup=True,
                              highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # disk full, permissions: one line, files written so far intact
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        err_console.print(f"[bold red]error:[/bold red] {escape(f'{tag}{exc.strerror or exc}{where}')}",
                          highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt as exc:  # between commands' callbacks and the lines above
        err_console.print(f"{tag}{_interrupted(args, exc)}", markup=False, highlight=False,
                          soft_wrap=True)
        sys.exit(130)
    except Exception as exc:
        lost = dist.peer_lost(exc) if top.distributed else None
        if lost is None:
            raise
        # Another rank failed or stalled first; its own error says why: one line here.
        err_console.print(f"[bold red]error:[/bold red] {escape(tag)}lost another process of "
                          f"the job ({escape(lost)}): it stopped or stalled; its own error, "
                          "if any, says why", highlight=False, soft_wrap=True)
        sys.exit(1)
    finally:
        dist.shutdown()
