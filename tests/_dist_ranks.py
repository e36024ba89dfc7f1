"""Run by tests/test_distributed.py under torchrun (2 processes, gloo on CPU): two runs of
the smoke recipe with the same settings, one from the live teacher and one from a cache,
trained one after the other in the same two processes (one torchrun, where the command line
would take two: each start imports torch three times). Each run's folder is OUT/live and
OUT/cached.

    python -m torch.distributed.run --standalone --nproc-per-node=2 tests/_dist_ranks.py \
        CACHE OUT [SET ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.engine import Reporter, dist, train  # noqa: E402
from distill.recipe import load_recipe  # noqa: E402


def main(cache: str, out: str, *sets: str) -> None:
    smoke = ROOT / "recipes" / "smoke.yaml"
    try:
        for name, teacher in (("live", None), ("cached", f"cache:{cache}")):
            r = load_recipe(smoke, [*sets, f"run.out={Path(out) / name}"], teacher=teacher)
            train(r, reporter=Reporter())
    finally:
        dist.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
