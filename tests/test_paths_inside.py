"""Paths read from files stay inside their folder: a cache manifest's shard names and a run's
`run.json` entries (a shard set's `_info.json` is in tests/test_shards.py). Each one that
leads out is refused in one line naming the file and the entry, before anything is read."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from distill.checkpoint.run_files import RUN_FORMAT, RunFiles, _digest
from distill.errors import UsageError
from distill.readers import inside

HOSTILE = [("../other/x.safetensors", "climbs out with '..'"),
           ("/etc/passwd", "is an absolute path"),
           ("link/x.safetensors", "through a symbolic link"),
           ("", "is not a file name"),
           (".", "is the folder itself")]


def test_inside_keeps_names_in_their_folder(tmp_path):
    (tmp_path / "f").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "f" / "link")
    assert inside(tmp_path / "f", "a.bin", "m.json", "x") == tmp_path / "f" / "a.bin"
    assert inside(tmp_path / "f", "sub/a.bin", "m.json", "x") == tmp_path / "f" / "sub" / "a.bin"
    for entry, why in [*HOSTILE, ("a/../../b", "climbs out"), (3, "is not a file name")]:
        with pytest.raises(UsageError, match="refused") as err:
            inside(tmp_path / "f", entry, "m.json", "shards[0].file")
        line = str(err.value)
        assert "\n" not in line and line.startswith("m.json: shards[0].file ") and why in line


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory) -> Path:
    """A tiny hard cache (one epoch), and a copy of its first shard outside it."""
    from distill.engine import Reporter
    from distill.engine.cache_build import build_cache
    from distill.recipe import load_recipe
    from tests.conftest import FAST, SMOKE

    root = tmp_path_factory.mktemp("inside")
    cache = root / "cache"
    build_cache(load_recipe(SMOKE, FAST), cache, store="hard", epochs=1, evaluate=False,
                reporter=Reporter())
    return cache


@pytest.mark.parametrize("entry,why", HOSTILE[:3], ids=["dotdot", "absolute", "symlink"])
def test_a_manifest_shard_outside_the_cache_is_refused_before_reading(tmp_path, built_cache,
                                                                      cli, entry, why):
    cache = tmp_path / "cache"
    shutil.copytree(built_cache, cache)
    doc = json.loads((cache / "manifest.json").read_text())
    first = doc["shards"][0]["file"]
    # the entry leads to a real copy of the shard: were it read, the cache would verify
    (tmp_path / "other").mkdir()
    shutil.copy(cache / first, tmp_path / "other" / "x.safetensors")
    os.symlink(tmp_path / "other", cache / "link")
    if entry.startswith("/"):
        entry = str(tmp_path / "other" / "x.safetensors")
    doc["shards"][0]["file"] = entry
    (cache / "manifest.json").write_text(json.dumps(doc))
    res = cli("cache", "verify", cache)
    assert res.code == 2, res.out
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and str(cache / "manifest.json") in lines[0]
    assert "shards[0].file" in lines[0] and why in lines[0] and entry in lines[0]
    res = cli("cache", "inspect", cache)
    assert res.code == 2 and "shards[0].file" in res.err


def _run_json(out: Path, files: dict) -> None:
    doc = {"format": RUN_FORMAT, "files": files, "pending": {}, "epoch": 1, "epochs": 2,
           "finished": False}
    doc["sha256"] = _digest(doc)
    (out / "run.json").write_text(json.dumps(doc))


def test_a_run_json_entry_outside_the_run_is_refused_before_reading(tmp_path, cli, smoke):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "state.pt").write_bytes(b"not read")
    _run_json(run, {"../state.pt": {"sha256": "0" * 64, "bytes": 8}})
    with pytest.raises(UsageError, match=r"run\.json: files '\.\./state\.pt' climbs out"):
        RunFiles.load(run)
    res = cli("train", smoke, "--out", run, "--resume")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1
    assert str(run / "run.json") in res.err and "'../state.pt'" in res.err
    _run_json(run, {"state.pt": None})  # a name inside the run is read as before
    assert RunFiles.load(run).files == {"state.pt": None}
