"""Compare two logit caches: manifest fields, and each shard's file and sha256.

    python benchmarks/compare_caches.py CACHE_A CACHE_B

Exit code 0 when the shards are identical (same files, same sha256s), 1 otherwise.
"""

from __future__ import annotations

import sys

from distill.cache import load_manifest


def main(a: str, b: str) -> int:
    ma, mb = load_manifest(a), load_manifest(b)
    da, db = ma.model_dump(), mb.model_dump()
    print("manifest fields that differ:", [k for k in da if da[k] != db[k]])
    pairs = list(zip(ma.shards, mb.shards, strict=False))
    same = sum((x.file, x.sha256) == (y.file, y.sha256) for x, y in pairs)
    print(f"shards: {len(ma.shards)} and {len(mb.shards)}; same file and sha256: {same}")
    print(f"build_seconds: {ma.build_seconds:.1f} and {mb.build_seconds:.1f}")
    return 0 if same == len(ma.shards) == len(mb.shards) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
