"""The torchrun protocol of a cache build: one shared directory, shards dealt, one merge.

Every process of a torchrun job builds its share of the shards into the same `out`:

1. `prepare_out`: rank 0 creates `out`, clears what a killed build left half-written,
   writes the manifest (merging earlier progress files into it) and a token; every rank
   then checks it reads that very token, so ranks on a node with its own disk stop before
   any work instead of writing shards rank 0 never sees.
2. Each rank writes its shards and lists them: rank 0 in the manifest, rank r > 0 in its
   progress file (`distill.cache.ShardWriter`).
3. `gather_ranks`: once a rank is done, it shares what it did (on the patient group: a rank
   that finishes first may wait long for the others).
4. `merge_ranks`: rank 0 lists the other ranks' shards in the manifest, each checked on
   disk, marks it complete and drops the progress files and the token.

Errors name the build's `out` argument; a command line maps it to its flag.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from distill.cache import (
    Manifest,
    ShardInfo,
    ShardWriter,
    check_shard,
    progress_files,
    save_manifest,
)
from distill.checkpoint import atomic_write_text
from distill.errors import OptionError, UsageError

from . import dist

__all__ = ["TOKEN", "gather_ranks", "merge_ranks", "prepare_out"]

TOKEN = ".build-token"  # rank 0's mark in `out`: every rank must see it
# A killed build's temporaries: `.{file}.{tag}.tmp` (`atomic_write` makes the tag 8 hex
# digits) of a file a build writes (manifest, progress files, shards, token). These are
# deleted; any other `*.tmp` is left alone.
_OWN_TEMPORARY = re.compile(r"\.(manifest\.json|progress\.rank-\d+\.json|\.build-token"
                            r"|(static|epoch-\d+)-part-\d+\.safetensors)\.[^./]+\.tmp")


def _own_temporary(name: str) -> bool:
    return _OWN_TEMPORARY.fullmatch(name) is not None


def prepare_out(out: Path, manifest: Manifest, main: bool) -> None:
    """Rank 0 creates `out`, clears what a killed build left half-written and writes the
    manifest, with the shards of earlier progress files merged in (then drops those files);
    the other ranks start once it is done, after checking that they see the same `out`."""
    token = secrets.token_hex(8) if main else None
    try:
        if main:
            out.mkdir(parents=True, exist_ok=True)
            for stale in out.glob(".*.tmp"):  # a shard being written when a build was killed
                if _own_temporary(stale.name):  # never a `*.tmp` the build did not make
                    stale.unlink(missing_ok=True)
            save_manifest(out, manifest)  # before the progress files go: nothing is lost
            for path in progress_files(out):
                path.unlink()
            atomic_write_text(out / TOKEN, str(token))
    except OSError as exc:
        raise OptionError("out", f"cannot write to '{out}' ({exc.strerror or exc})") from None
    token = dist.broadcast_object(token)  # after rank 0 wrote it
    try:
        seen = (out / TOKEN).read_text() == token
    except OSError:
        seen = False
    blind = [r for r, ok in enumerate(dist.all_gather_object(seen)) if not ok]
    if blind:
        raise OptionError("out", f"rank(s) {_ranks(blind)} do not see the '{out}' that rank 0 "
                          "writes to; under torchrun on several nodes --out must be a "
                          "directory every node shares")


def gather_ranks(images: int, seconds: float, writer: ShardWriter) -> list[dict[str, Any]]:
    """Every rank's share of the build, in rank order (a collective on the patient group):
    images, seconds, bytes written, writer times, build seconds and the shards it wrote."""
    return dist.all_gather_object(patient=True, obj={  # type: ignore[return-value]
        "images": images, "seconds": seconds, "written": writer.written,
        "write_seconds": writer.write_seconds, "wait_seconds": writer.wait_seconds,
        "build_seconds": writer.manifest.build_seconds,
        "shards": [i.model_dump(mode="json") for i in writer.new]})


def merge_ranks(out: Path, manifest: Manifest, ranks: list[Any]) -> None:
    """Rank 0, once every rank has finished: list the other ranks' shards (`ranks`, from
    `gather_ranks`) in the manifest, each checked on disk (every node must write to the
    same `out`), mark it complete, and drop the progress files and the token."""
    for r, part in enumerate(ranks[1:], start=1):
        for raw in part["shards"]:
            info = ShardInfo.model_validate(raw)
            try:
                check_shard(out / info.file, info, "quick")
            except UsageError:
                raise OptionError("out", f"rank {r} wrote '{info.file}', which rank 0 does "
                                  f"not find whole in '{out}'; under torchrun on several "
                                  "nodes --out must be a directory every node shares") from None
            manifest.shards.append(info)
    manifest.shards.sort(key=lambda i: (i.epoch or 0, i.start))
    manifest.build_seconds = max(float(r["build_seconds"]) for r in ranks)
    manifest.complete = len(manifest.shards) == len(manifest.planned())
    save_manifest(out, manifest)
    for path in [*progress_files(out), out / TOKEN]:
        path.unlink(missing_ok=True)


def _ranks(ranks: list[int]) -> str:
    return ", ".join(map(str, ranks[:8])) + (f" and {len(ranks) - 8} more" if len(ranks) > 8
                                             else "")
