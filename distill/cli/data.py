"""`distill data pack|check`: an image folder as WebDataset tar shards, and their check."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import at_least, check_folder, console, err_console

app = typer.Typer(help="Pack an image folder as tar shards (WebDataset, timm's layout) and "
                  "check shard sets.", no_args_is_help=True)


def _note(text: str) -> None:
    err_console.print(text, highlight=False, soft_wrap=True, markup=False)


def _size(n: int) -> str:
    from distill.readers import size_text

    return size_text(n)


@app.command("pack")
def pack(
    folder: Path = typer.Argument(..., help="Image folder: train/<class>/<image> (and "
                                  "val/<class>/<image>), as data.name: imagefolder reads it."),
    out: Path = typer.Option(..., "--out", "-o", help="Shard folder (created; a stopped "
                             "pack there resumes)."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Samples per shard.",
                                   callback=at_least(1, "--shard-size")),
    seed: int = typer.Option(0, "--seed", help="Seed of the training samples' shuffle."),
    shuffle: bool = typer.Option(True, "--shuffle/--no-shuffle", help="Shuffle the training "
                                 "samples before cutting them into shards (so that a shard "
                                 "mixes the classes)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per shard."),
) -> None:
    """Write FOLDER's splits as tar shards in OUT: KEY.jpg (the file's own bytes) and
    KEY.cls (the label), train-NNNNNN.tar and validation-NNNNNN.tar, and _info.json."""
    from distill.data.pack import pack_folder

    check_folder(out, "--out")
    result = pack_folder(folder, out, shard_size=shard_size, seed=seed, shuffle=shuffle,
                         note=None if quiet else _note)
    for split, facts in result.splits.items():
        size = f", {_size(facts['bytes'])}" if "bytes" in facts else ""
        console.print(f"{split}: {facts['shards']} shards, {facts['samples']} samples{size}",
                      highlight=False)
    if not result.done_before:
        console.print(f"{result.out}: {result.written} shards written in "
                      f"{result.seconds:.1f} s", highlight=False)


@app.command("check")
def check(
    shards: Path = typer.Argument(..., help="Shard folder (its _info.json lists the shards)."),
    info: Path = typer.Option(None, "--info", help="An _info.json kept elsewhere (read, or "
                              "with --write-info written)."),
    write_info: bool = typer.Option(False, "--write-info", help="Count a shard set that has "
                                    "no _info.json once (its .tar files, splits from their "
                                    "names) and record the counts and checksums."),
    decode: bool = typer.Option(False, "--decode", help="Also decode every image."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per shard."),
) -> None:
    """Read every shard and compare it with _info.json: sha256 and size, sample counts, an
    image and a label in range per sample, the keys and the labels."""
    from distill.data.pack import check_shards

    result = check_shards(shards, info=info, decode=decode, write_info=write_info,
                          note=None if quiet else _note)
    for split, facts in result.splits.items():
        console.print(f"{split}: {facts['shards']} shards, {facts['samples']} samples, "
                      f"{_size(facts['bytes'])}" + ("" if result.wrote_info else ": ok"),
                      highlight=False)
    if result.wrote_info:
        console.print(f"wrote {result.info}", highlight=False)
