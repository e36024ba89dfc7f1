"""`manifest.json`: what a logit cache holds, and what it was built from.

The manifest names the teacher (its spec, with the sha256 of its weights), the data (length,
labels hash, content hash), the augmentation and image transform, the seed, the epochs, the
mode (`replay` or `static`), the store (`full`, `topk:K`, `hard`), and for exact mixing the
batch and world size. Each shard has its file, first row, row count, sha256 and size; a
shard is listed only once its file is complete on disk.

A build under torchrun: rank 0 lists its shards in `manifest.json`, rank r > 0 in
`progress.rank-RRRRR.json` (a manifest of the same cache listing that rank's shards); rank 0
merges them into `manifest.json` when every rank has finished, or when a build resumes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from distill.checkpoint import atomic_write_text
from distill.errors import UsageError
from distill.readers import MAX_JSON_BYTES, inside, read_text
from distill.teacher import TeacherOptions, parse_teacher

__all__ = [
    "FORMAT_VERSION",
    "DatasetFingerprint",
    "Manifest",
    "ShardInfo",
    "augment_facts",
    "load_manifest",
    "manifest_json",
    "progress_files",
    "progress_name",
    "save_manifest",
    "teacher_description",
    "teacher_facts",
    "transform_facts",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PROGRESS_GLOB = "progress.rank-*.json"
# Augmentation fields that only shape mixup/cutmix (free to differ with interpolated targets).
MIXING_FIELDS = ("mixup", "cutmix", "mixup_prob", "switch_prob", "mixup_mode")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShardInfo(_Model):
    file: str
    epoch: int | None = Field(description="Epoch of a replay shard; None for static.")
    start: int = Field(description="First row (the position in the epoch's global order).")
    rows: int
    sha256: str
    bytes: int
    complete: bool = True


class DatasetFingerprint(_Model):
    name: str
    length: int
    labels_sha256: str
    content_sha256: str = Field(description="Pixels of in-memory data, or the file list.")
    keys_sha256: str | None = Field(None, description="A stream's sample keys (tar shards).")


class Manifest(_Model):
    format_version: int = FORMAT_VERSION
    teacher: dict[str, Any] = Field(description="TeacherIdentity: adapter, name, weights sha256…")
    teacher_recipe: dict[str, Any] = Field(description="The recipe's teacher section.")
    teacher_description: dict[str, Any] = Field(
        default_factory=dict, description="The teacher's adapter's own description, apart "
        "from the recipe's section (`TeacherRef.describe`: an ensemble's members, each "
        "one's spec, weight and weights sha256).")
    teacher_top1: float | None = None
    dataset: DatasetFingerprint
    transform: dict[str, Any]
    augment: dict[str, Any]
    seed: int
    epochs: int
    mode: Literal["replay", "static"]
    store: str
    tau: float = Field(description="Temperature of top-k probabilities.")
    num_classes: int
    mix_targets: Literal["exact", "interpolate"] | None = Field(
        description="exact: outputs on the mixed batch; interpolate/None: per-sample outputs.")
    batch_size: int | None = Field(description="Per-process batch of exact mixing.")
    world_size: int | None = Field(description="Processes of exact mixing.")
    rows_per_epoch: int
    rows_by: Literal["position", "sample"] = Field(
        "position", description="Which row holds a sample of a replay epoch: `position`, its "
        "place in the epoch's shuffled global order; `sample`, its own place in the data (a "
        "stream, read in an order of its shards, finds its rows by sample).")
    shard_rows: int = Field(description="Rows per shard (the last of an epoch may hold fewer).")
    recipe: dict[str, Any] = Field(description="The resolved recipe the cache was built from.")
    shards: list[ShardInfo] = Field(default_factory=list)
    complete: bool = False
    build_seconds: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _description_apart(cls, data: Any) -> Any:
        """A manifest of the earlier form (7de3b41's, and this toolkit's until the
        description had its own field) holds the adapter's description among the recipe's
        teacher fields: the keys of `teacher_recipe` that are no field of the recipe's
        teacher section (`recipe.teacher`, whose list form `members` aside) move to
        `teacher_description`, so that it is read, compared and resumed as a new one."""
        if not isinstance(data, dict) or "teacher_description" in data:
            return data
        section, recipe = data.get("teacher_recipe"), data.get("recipe")
        fields = recipe.get("teacher") if isinstance(recipe, dict) else None
        if not isinstance(section, dict) or not isinstance(fields, dict):
            return data
        known = set(fields) - {"members"}
        if set(section) <= known:
            return data
        return {**data, "teacher_recipe": {k: v for k, v in section.items() if k in known},
                "teacher_description": {k: v for k, v in section.items() if k not in known}}

    def planned(self) -> list[tuple[int | None, int, int]]:
        """Every shard the finished cache holds: (epoch, first row, rows)."""
        epochs: list[int | None] = [None] if self.mode == "static" else list(range(self.epochs))
        return [(e, start, min(self.shard_rows, self.rows_per_epoch - start))
                for e in epochs for start in range(0, self.rows_per_epoch, self.shard_rows)]

    def identity(self) -> dict[str, Any]:
        """Everything that defines the contents (not progress): equal identities, equal caches."""
        return self.model_dump(exclude={"shards", "complete", "build_seconds", "teacher_top1",
                                        "recipe"})

    def size_bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    def shards_of(self, epochs: int | None = None) -> list[ShardInfo]:
        """The shards a run of `epochs` epochs reads (all of a static cache)."""
        if self.mode == "static" or epochs is None:
            return list(self.shards)
        return [s for s in self.shards if s.epoch is not None and s.epoch < epochs]


def transform_facts(data: Any, mode: str, decoder: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The data fields that decide what an image looks like after its transform (`crop_pct`
    shapes only the evaluation transform of a static cache; `pipeline` only the training
    transform of a replay cache, recorded when it is `tensor`, with the version of that
    pipeline's parameter draws, `draws`: a manifest without it was built on the PIL
    pipeline, see `pipeline_of`; and `decode`, how that pipeline decoded image files,
    recorded when it is not `full`, see `decode_of`; with `device`, `decoder`: which
    decoder ran, `distill.data.decode.device_decoder`, where given)."""
    facts = {"img_size": data.img_size, "in_chans": data.in_chans, "mean": list(data.mean),
             "std": list(data.std), "interpolation": data.interpolation}
    if mode == "static":
        facts["crop_pct"] = data.crop_pct
    elif getattr(data, "pipeline", "pil") != "pil":
        from distill.data.tensor_params import DRAWS

        facts["pipeline"] = data.pipeline
        facts["draws"] = DRAWS  # the tensor pipeline's parameter draws (absent: an older one)
        if getattr(data, "decode", "full") != "full":  # absent: full (as before it existed)
            facts["decode"] = data.decode
            if data.decode == "device" and decoder is not None:
                facts["decoder"] = dict(decoder)
    return facts


def pipeline_of(transform: dict[str, Any]) -> str:
    """The `data.pipeline` a replay cache's images came from (`transform_facts`)."""
    return str(transform.get("pipeline", "pil"))


def decode_of(transform: dict[str, Any]) -> str:
    """The `data.decode` a replay cache's image files were decoded with (`transform_facts`)."""
    return str(transform.get("decode", "full"))


def augment_facts(augment: Any, *, with_mixing: bool) -> dict[str, Any]:
    """The augmentation section; without the mixup/cutmix fields for per-sample outputs."""
    facts = augment.model_dump(mode="json")
    if not with_mixing:
        for key in MIXING_FIELDS:
            facts.pop(key, None)
    return facts


# The recipe's teacher fields that say how to use a cache, not which teacher it holds.
CACHE_FIELDS = ("cache", "mix_targets", "cache_verify")


def teacher_description(teacher: Any) -> dict[str, Any]:
    """What the manifest records of the teacher a recipe's teacher section names besides
    the section itself, in its own field (`Manifest.teacher_description`): its adapter's
    description (`TeacherRef.describe`; for a teacher of members such as
    `ensemble:SPEC+…`, `members`: every member's spec, normalised weight and the sha256 of
    the weights file it loads, None where it loads none)."""
    if teacher.name is None:
        return {}
    return parse_teacher(teacher.name).describe(TeacherOptions.of(teacher))


def teacher_facts(teacher: Any) -> dict[str, Any]:
    """The teacher section minus the cache fields: the teacher a cache was built from (its
    adapter's description is recorded apart, `teacher_description`)."""
    facts = teacher.model_dump(mode="json")
    for key in CACHE_FIELDS:
        facts.pop(key, None)
    facts.pop("members", None)  # the list form of an ensemble: read into `name` and `kwargs`
    return facts


def manifest_json(manifest: Manifest) -> str:
    """The manifest as written to disk. The fields added since format version 1 first
    shipped (7de3b41) are written only where they are not their defaults (`rows_by`
    `position`, no `dataset.keys_sha256`, no `teacher_description`): a toolkit of that
    version, which knows none of them and refuses a manifest with unknown fields, reads
    every cache that needs none of them. Absent, they read as their defaults."""
    exclude: dict[str, Any] = {}
    if manifest.rows_by == "position":
        exclude["rows_by"] = True
    if manifest.dataset.keys_sha256 is None:
        exclude["dataset"] = {"keys_sha256"}
    if not manifest.teacher_description:
        exclude["teacher_description"] = True
    return manifest.model_dump_json(indent=2, exclude=exclude) + "\n"


def save_manifest(folder: Path, manifest: Manifest, name: str = MANIFEST) -> None:
    atomic_write_text(Path(folder) / name, manifest_json(manifest))


def progress_name(rank: int) -> str:
    """The file rank `rank` (> 0) of a build under torchrun lists its shards in."""
    return f"progress.rank-{rank:05d}.json"


def progress_files(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob(PROGRESS_GLOB))


def load_manifest(folder: Path, name: str = MANIFEST) -> Manifest:
    path = Path(folder) / name
    if not path.is_file():
        raise UsageError(f"cache: no {name} in '{folder}' (build one with `distill cache "
                         "build`)")
    try:
        # not UTF-8 text, a NUL byte, over 64 MB: one line naming the file
        manifest = Manifest.model_validate(json.loads(read_text(path, "cache manifest", MAX_JSON_BYTES)))
    except (json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"cache: '{path}' is not a valid manifest ({first})") from None
    if manifest.format_version != FORMAT_VERSION:
        raise UsageError(f"cache: '{path}' has format version {manifest.format_version}; this "
                         f"toolkit reads version {FORMAT_VERSION}")
    for i, shard in enumerate(manifest.shards):  # every shard inside the cache, before any read
        inside(folder, shard.file, path, f"shards[{i}].file")
    return manifest
