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
from distill.errors import DistillError

from . import _common, bench, cache, ls, recipe, report, speed, train
from . import eval as eval_cmd
from ._common import err_console

app = typer.Typer(
    name="distill",
    help="Train data-efficient image transformers (DeiT) by distillation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("train")(train.train)
app.command("eval")(eval_cmd.evaluate)
app.command("list")(ls.list_parts)
app.command("report")(report.report)
app.command("bench")(bench.bench)
app.command("speed")(speed.speed)
app.add_typer(recipe.app, name="recipe")
app.add_typer(cache.app, name="cache")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    top = dist.topology()
    # Under torchrun each rank says which it is: a failing rank's error is the one to read.
    tag = f"[rank {top.rank}] " if top.distributed else ""
    _common.ARGV[:] = sys.argv[1:] if argv is None else list(argv)  # recorded with results
    try:
        app(args=argv, prog_name="distill")
    except DistillError as exc:
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
