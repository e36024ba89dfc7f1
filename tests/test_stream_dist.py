"""Every shard sample once per epoch over 2 processes × 2 loader workers (torchrun, gloo on
CPU), counted by key over two epochs; and a cache built from shards by both processes
trains them exactly as the live teacher does (issue 25)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from distill.data.pack import pack_folder
from distill.data.stream import padding
from distill.data.webdataset import webdataset

from .conftest import ROOT
from .test_shards import make_folder

pytestmark = pytest.mark.integration


def test_two_processes_two_workers_read_every_sample_once_per_epoch(tmp_path):
    folder = make_folder(tmp_path / "photos", per_class=6)  # 20 training samples
    pack_folder(folder, tmp_path / "shards", shard_size=3)  # 7 shards: 3 … 3, 2
    truth = webdataset("train", tmp_path / "shards", num_classes=3)
    labels = {truth.sample_id(i): truth[i][1] for i in range(len(truth))}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DISTILL_DIST_TIMEOUT": "120"}
    job = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(ROOT / "tests" / "_stream_ranks.py"), str(tmp_path / "shards"),
         str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True, text=True,
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
    assert val == list(range(len(webdataset("val", tmp_path / "shards", num_classes=3))))
    a = load_file(tmp_path / "out" / "live" / "model.safetensors")
    b = load_file(tmp_path / "out" / "cached" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    summary = json.loads((tmp_path / "out" / "cached" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["train_size"] == 20
