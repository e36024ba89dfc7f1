"""Teacher outputs on disk: a manifest, safetensors shards, and readers for the workers.

`distill cache build` (in `distill.engine.cache_build`) writes a cache; `teachers.cache`
reads one as a teacher. Layout of a cache directory:

    manifest.json                       what it holds and what it was built from
    epoch-0000-part-000.safetensors     replay: rows of epoch 0, in the epoch's global order
    static-part-000.safetensors         static: rows by dataset index
    progress.rank-00001.json            while torchrun's rank 1 builds: the shards it wrote
"""

from .check import mismatches, needs_soft_targets, run_mixing
from .manifest import (
    FORMAT_VERSION,
    MANIFEST,
    DatasetFingerprint,
    Manifest,
    ShardInfo,
    augment_facts,
    load_manifest,
    progress_files,
    progress_name,
    save_manifest,
    teacher_facts,
    transform_facts,
)
from .reader import CacheReader, describe
from .shards import ShardReader, check_shard, shard_name, write_shard
from .store import StoreFormat

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "CacheReader",
    "DatasetFingerprint",
    "Manifest",
    "ShardInfo",
    "ShardReader",
    "StoreFormat",
    "augment_facts",
    "check_shard",
    "describe",
    "load_manifest",
    "mismatches",
    "needs_soft_targets",
    "progress_files",
    "progress_name",
    "run_mixing",
    "save_manifest",
    "shard_name",
    "teacher_facts",
    "transform_facts",
    "write_shard",
]
