"""The `distill` command: one module per subcommand, one console script.

Bad input (a recipe field, a registry name, a path) ends with one line per problem on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.markup import escape

from distill.engine import dist
from distill.errors import DistillError, OptionError

from . import bench, cache, ls, recipe, report, speed, train
from . import eval as eval_cmd
from ._common import err_console

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


# Recipe fields the commands set with a flag of their own (an `OptionError` names the field).
_FLAGS = {"run.out": "--out"}


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    top = dist.topology()
    # Under torchrun each rank says which it is: a failing rank's error is the one to read.
    tag = f"[rank {top.rank}] " if top.distributed else ""
    args = sys.argv[1:] if argv is None else list(argv)
    try:  # the arguments ride along in the root context: results record their command
        app(args=args, prog_name="distill", obj={"argv": args})
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
