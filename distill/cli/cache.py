"""`distill cache build|inspect|verify`: teacher outputs computed once, read by many runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from distill.cache import cache_summary, check_shard, load_manifest
from distill.engine import dist
from distill.errors import UsageError

from ._common import (
    SetOption,
    TeacherOption,
    at_least,
    check_folder,
    console,
    err_console,
    flush_notes,
    resolve,
)

app = typer.Typer(help="Precompute a teacher's outputs to disk and check them.",
                  no_args_is_help=True)


class _Notes:
    """Prints the builder's notes; progress goes nowhere (shards are announced)."""

    def note(self, text: str) -> None:
        flush_notes()  # the build has started: the recipe's notes first
        err_console.print(text, highlight=False, soft_wrap=True)

    def advance(self, *_: object) -> None:
        pass


@app.command("build")
def build(
    recipe: Path = typer.Argument(..., help="Recipe YAML file (its teacher, data, "
                                  "augmentation, seed and epochs define the cache)."),
    out: Path = typer.Option(..., "--out", "-o", help="Cache directory (created; a partial "
                             "build there is resumed)."),
    epochs: int = typer.Option(None, "--epochs", help="Epochs to store (default: "
                               "schedule.epochs)."),
    mode: str = typer.Option("replay", "--mode", help="replay: outputs on each epoch's "
                             "augmented images; static: one output per image, eval transform."),
    store: str = typer.Option("full", "--store", help="full (fp16 logits), topk:K "
                              "(probabilities at loss.tau), or hard (argmax)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Teacher batch; with exact "
                                   "mixing, the training batch size the cache is tied to."),
    shard_rows: int = typer.Option(None, "--shard-rows", help="Rows per shard (default: "
                                   "about 256 MB); under torchrun, the unit of work dealt to "
                                   "the processes."),
    world_size: int = typer.Option(None, "--world-size", help="With exact mixing: the "
                                   "processes of the training runs the cache is for (default: "
                                   "the processes building it)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Run the teacher over the replayed "
                                 "data as a build would, write nothing: times the build."),
    teacher: str = TeacherOption,
    sets: list[str] = SetOption,
) -> None:
    """Run RECIPE's teacher over the training data and store its outputs in OUT.

    Under torchrun every process builds its share of the shards; the cache is the one a
    single process builds."""
    from distill.engine.cache_build import build_cache

    check_folder(out, "--out")
    r = resolve(recipe, sets, teacher, None, None)
    result = build_cache(r, out, epochs=epochs, mode=mode, store=store, batch_size=batch_size,
                         shard_rows=shard_rows, world_size=world_size, dry_run=dry_run,
                         reporter=_Notes())
    if dry_run or not dist.topology().main:  # rank 0 speaks for a torchrun job
        return
    console.print(f"{result.out}  {result.manifest.size_bytes()} bytes  "
                  f"{len(result.manifest.shards)} shards  complete="
                  f"{result.manifest.complete}")


@app.command("inspect")
def inspect(
    folder: Path = typer.Argument(..., help="Cache directory."),
    sample: int = typer.Option(0, "--sample", help="Recompute this many random rows with the "
                               "live teacher (top-k: mean KL to the full distribution).",
                               callback=at_least(0, "--sample")),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Summarise a cache: teacher, data, store, epochs, shards, size, coverage."""
    import numpy as np

    from distill.cache import CacheReader

    manifest = load_manifest(folder)
    info = cache_summary(folder, manifest)
    valid = total = 0
    for readers in CacheReader(folder, manifest).readers.values():
        for reader in readers:
            check_shard(reader.path, reader.info, "quick")
            flags = reader.maps()["valid"]
            valid += int(np.count_nonzero(flags))
            total += len(flags)
    planned_rows = sum(rows for _, _, rows in manifest.planned())
    info["coverage"] = (f"{valid} of {planned_rows} rows "
                        f"({100 * valid / planned_rows if planned_rows else 0:.1f}%)")
    if sample:
        from distill.engine.cache_verify import live_check

        info["sample"] = live_check(folder, sample)
    if as_json:
        console.print_json(json.dumps(info))
        return
    for key, value in info.items():
        console.print(f"{key:15s} {value}", highlight=False)


@app.command("verify")
def verify(
    folder: Path = typer.Argument(..., help="Cache directory."),
    live: int = typer.Option(0, "--live", help="Also recompute this many random rows with the "
                             "live teacher and report the largest difference.",
                             callback=at_least(0, "--live")),
) -> None:
    """Check every shard's size, header and sha256 against the manifest."""
    manifest = load_manifest(folder)
    problems = []
    for info in manifest.shards:
        try:
            check_shard(Path(folder) / info.file, info, "full")
        except UsageError as exc:
            problems.extend(exc.lines)
    missing = len(manifest.planned()) - len(manifest.shards)
    if problems:
        raise UsageError(*problems)
    console.print(f"{len(manifest.shards)} shards ok ({manifest.size_bytes()} bytes, sha256 "
                  f"checked)" + (f"; {missing} shards not built yet" if missing else ""))
    if live:
        from distill.engine.cache_verify import live_check

        res = live_check(folder, live)
        console.print(f"live check of {res['rows']} rows: largest difference "
                      f"{res['max_abs_diff']:.4g} in {res['what']}; argmax differs in "
                      f"{100 * res['argmax_mismatch']:.1f}% of rows"
                      + (f"; mean KL {res['mean_kl']:.3g}" if "mean_kl" in res else ""),
                      highlight=False)
