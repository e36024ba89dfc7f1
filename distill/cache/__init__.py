"""Teacher outputs on disk: a manifest, safetensors shards, and readers for the workers.

`distill cache build` (in `distill.engine.cache_build`) writes a cache with the parts here:
the row layout (`layout`), the planned manifest and resume (`plan`) and the shard writer
(`writer`); `teachers.cache` reads one as a teacher. Layout of a cache directory:

    manifest.json                       what it holds and what it was built from
    epoch-0000-part-000.safetensors     replay: rows of epoch 0, in the epoch's global order
    static-part-000.safetensors         static: rows by dataset index
    progress.rank-00001.json            while torchrun's rank 1 builds: the shards it wrote
"""

from .check import mismatches, needs_soft_targets, run_mixing
from .layout import SHARD_BYTES, KeyBatches, RowLayout, TeacherBatch, shard_plan_rows
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
from .plan import identity_diff, plan_manifest, resume_manifest
from .reader import CacheReader, cache_summary
from .shards import ShardReader, check_shard, shard_name, write_shard
from .store import StoreFormat
from .writer import ShardWriter

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "SHARD_BYTES",
    "CacheReader",
    "DatasetFingerprint",
    "KeyBatches",
    "Manifest",
    "RowLayout",
    "ShardInfo",
    "ShardReader",
    "ShardWriter",
    "StoreFormat",
    "TeacherBatch",
    "augment_facts",
    "cache_summary",
    "check_shard",
    "identity_diff",
    "load_manifest",
    "mismatches",
    "needs_soft_targets",
    "plan_manifest",
    "progress_files",
    "progress_name",
    "resume_manifest",
    "run_mixing",
    "save_manifest",
    "shard_name",
    "shard_plan_rows",
    "teacher_facts",
    "transform_facts",
    "write_shard",
]
