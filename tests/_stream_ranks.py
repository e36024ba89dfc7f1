"""Run by tests/test_stream_dist.py under torchrun (2 processes, gloo on CPU), each with 2
loader workers, over a shard set or a Hugging Face dataset saved to disk (columns `img` and
`y`), with the `pil` or the `tensor` pipeline: the training samples every process reads in two epochs
(index, label, key, read by its workers), the validation samples; then, as the command line
would, a hard cache built by both processes, and a run trained from it and one from the live
teacher. Rank 0 writes what every rank read to OUT/keys.json.

    python -m torch.distributed.run --standalone --nproc-per-node=2 \
        tests/_stream_ranks.py ROOT OUT [webdataset|hf] [pil|tensor]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.data import build_data  # noqa: E402
from distill.engine import Reporter, dist, train  # noqa: E402
from distill.engine.cache_build import build_cache  # noqa: E402
from distill.recipe import load_recipe  # noqa: E402


def sets(root: str, kind: str, pipeline: str, *extra: str) -> list[str]:
    options = "{}" if kind == "webdataset" else "{image: img, label: y, block: 3}"
    return [f"data.name={kind}", f"data.root={root}", f"data.options={options}",
            f"data.pipeline={pipeline}", "data.num_classes=3", "teacher.kwargs.num_classes=3",
            "data.batch_size=3",
            "data.eval_batch_size=2", "data.num_workers=2", "schedule.epochs=2",
            "run.log_every=2", "run.threads=1", "augment.auto_augment=null", *extra]


def main(shards: str, out: str, kind: str = "webdataset", pipeline: str = "pil") -> None:
    top = dist.topology()
    dist.init(top, "cpu")
    smoke = ROOT / "recipes" / "smoke.yaml"
    r = load_recipe(smoke, sets(shards, kind, pipeline))
    data = build_data(r.data, r.augment, r.run.seed, num_replicas=top.world_size,
                      rank=top.rank)
    base = data.train.base
    read = []
    for epoch in (0, 1):
        for batch in data.epoch(epoch):
            read += [(epoch, int(i), int(y)) for i, y in zip(batch.index, batch.labels)]
    key = getattr(base, "sample_id", str)  # a shard sample's key; an hf row's is its index
    keys = {i: key(i) for _, i, _ in read}  # the key of each sample read
    val = [int(i) for batch in data.val_loader for i in batch.index]
    mine = {"rank": top.rank, "read": read, "keys": keys, "val": val,
            "steps": len(data.train_loader)}
    every = dist.all_gather_object(mine)
    if top.main:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "keys.json").write_text(json.dumps(every))
    cache, one = Path(out) / "cache", "schedule.epochs=1"
    build_cache(load_recipe(smoke, sets(shards, kind, pipeline, one)), cache, store="hard",
                reporter=Reporter())
    dist.barrier()  # rank 0 completes the manifest last (the next command, on the command line)
    for name, teacher in (("cached", f"cache:{cache}"), ("live", None)):
        train(load_recipe(smoke, sets(shards, kind, pipeline, one, f"run.out={Path(out) / name}"),
                          teacher=teacher), reporter=Reporter())
    dist.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:5])
