"""Every sample once per epoch over 2 processes × 2 loader workers (torchrun, gloo on CPU),
counted by key over two epochs; and a cache built by both processes trains them exactly as
the live teacher does (issue 25): tar shards with the `pil` pipeline, and a Hugging Face
dataset saved to disk with the `tensor` pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from distill.data.hf import hf
from distill.data.pack import pack_folder
from distill.data.stream import padding
from distill.data.webdataset import webdataset

from .conftest import ROOT
from .test_shards import make_folder
from .test_streams import hf_dataset

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind,pipeline", [("webdataset", "pil"), ("hf", "tensor")])
def test_two_processes_two_workers_read_every_sample_once_per_epoch(tmp_path, kind, pipeline):
    folder = make_folder(tmp_path / "photos", per_class=6)  # 20 training samples
    if kind == "webdataset":
        pack_folder(folder, tmp_path / "shards", shard_size=3)  # 7 shards: 3 … 3, 2

        def source(split):
            return webdataset(split, tmp_path / "shards", num_classes=3)
    else:  # blocks of 3 rows: 3 … 3, 2
        hf_dataset(folder, tmp_path / "shards")

        def source(split):
            return hf(split, tmp_path / "shards", num_classes=3, image="img", label="y")
    truth = source("train")
    key = getattr(truth, "sample_id", str)  # a shard sample's key; an hf row's is its index
    labels = {key(i): truth[i][1] for i in range(len(truth))}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DISTILL_DIST_TIMEOUT": "120"}
    job = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(ROOT / "tests" / "_stream_ranks.py"), str(tmp_path / "shards"),
         str(tmp_path / "out"), kind, pipeline], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=420)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    ranks = json.loads((tmp_path / "out" / "keys.json").read_text())
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["steps"] == ranks[1]["steps"] == 4
    pad = padding(20, 3, 2)  # 4 steps × 2 processes × batch 3 = 24: 4 samples twice
    assert pad == 4
    orders = []
    for epoch in (0, 1):
        read = [(r["keys"][str(i)], y) for r in ranks for e, i, y in r["read"] if e == epoch]
        counts = Counter(key for key, _ in read)
        assert set(counts) == set(labels)  # every key read
        assert sum(counts.values()) == len(labels) + pad  # no duplicate but the padding
        assert sorted(counts.values()) == [1] * (len(labels) - pad) + [2] * pad
        assert all(labels[key] == y for key, y in read)  # read by the workers as it is
        mine = [{r["keys"][str(i)] for e, i, _ in r["read"] if e == epoch} for r in ranks]
        assert len(mine[0] & mine[1]) == pad  # the processes share the padding alone
        orders.append([key for key, _ in read])
    assert orders[0] != orders[1]  # shard and sample order drawn per epoch
    val = sorted(i for r in ranks for i in r["val"])
    assert val == list(range(len(source("val"))))
    a = load_file(tmp_path / "out" / "live" / "model.safetensors")
    b = load_file(tmp_path / "out" / "cached" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    summary = json.loads((tmp_path / "out" / "cached" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["train_size"] == 20
