"""The manifest's teacher records and its compatibility both ways: an adapter's description
kept apart from the recipe's teacher section and compared key by key where the adapter's
own comparison does not cover it; manifests of the earlier form (the description among the
section's fields, no `rows_by`, no `keys_sha256`) still load, replay and resume; and the
fields added since format version 1 are written only where they are not their defaults,
so that a toolkit that knows none of them reads a cache that needs none of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.cache import load_manifest, mismatches
from distill.checkpoint import file_sha256, save_weights
from distill.engine import Reporter, train
from distill.engine.cache_build import build_cache
from distill.errors import UsageError
from distill.recipe import load_recipe
from distill.registry import TEACHERS
from distill.teacher import build_teacher
from tests.conftest import FAST, SMOKE

pytestmark = pytest.mark.integration

ONE = [*FAST, "schedule.epochs=1", "schedule.warmup_epochs=0"]
OWN = ["teacher.kwargs={num_classes: 10}", "teacher.input_size=32"]
# The fields of a manifest as format version 1 first had them (7de3b41): a cache that
# writes no other can be read by that toolkit (its model forbids unknown fields).
V1_FIELDS = {"format_version", "teacher", "teacher_recipe", "teacher_top1", "dataset",
             "transform", "augment", "seed", "epochs", "mode", "store", "tau", "num_classes",
             "mix_targets", "batch_size", "world_size", "rows_per_epoch", "shard_rows",
             "recipe", "shards", "complete", "build_seconds"}
V1_DATASET_FIELDS = {"name", "length", "labels_sha256", "content_sha256"}


def recipe(*sets: str, **shortcuts):
    return load_recipe(SMOKE, [*ONE, *sets], **shortcuts)


def _weights_file(path: Path, seed: int) -> Path:
    import timm
    import torch

    torch.manual_seed(seed)
    save_weights(path, timm.create_model("test_resnet", num_classes=10).state_dict())
    return path


def _delegate(target, options, context):
    """A plug-in adapter that is timm's, under another prefix."""
    return build_teacher(f"timm:{target}", context=context, options=options)


@pytest.fixture
def described():
    """`described:<timm model>`: an adapter whose description names fields of the recipe's
    teacher section (`name`, `weights`) besides one of its own."""
    TEACHERS.register(_delegate, name="described",
                      describe=lambda target, options: {"name": "not the recipe's",
                                                        "weights": "/elsewhere",
                                                        "version": target})
    yield "described:test_resnet"
    TEACHERS.unregister("described")


def test_a_description_does_not_overwrite_the_recipes_teacher_fields(described, tmp_path):
    cache = tmp_path / "cache"
    build_cache(recipe(*OWN, teacher=described), cache, store="hard", evaluate=False,
                reporter=Reporter())
    m = load_manifest(cache)
    assert m.teacher_recipe["name"] == described and m.teacher_recipe["weights"] is None
    assert m.teacher_description == {"name": "not the recipe's", "weights": "/elsewhere",
                                     "version": "test_resnet"}
    r = recipe(*OWN, f"teacher.cache={cache}", teacher=described)
    assert mismatches(m, r, world_size=1) == []
    train(recipe(*OWN, f"teacher.cache={cache}", f"run.out={tmp_path / 'run'}",
                 teacher=described), reporter=Reporter())


@pytest.fixture
def members_described():
    """`mean2:SPEC+SPEC`: a teacher of members with its own `describe` (its members and a
    `version`) and no `compare`."""
    from distill.teacher import members_of

    def describe(target, options):
        return {"members": [{"spec": m.spec, "weight": m.weight, "weights_sha256": None}
                            for m in members_of(target, options, "mean2")],
                "version": "v1"}

    TEACHERS.register(lambda target, options, context: None, name="mean2", members=True,
                      describe=describe)
    yield "mean2:timm:test_resnet+timm:test_resnet"
    TEACHERS.unregister("mean2")


def test_a_members_adapters_own_description_is_compared_key_by_key(members_described,
                                                                  tmp_path):
    """The core compares the members; every other key of the adapter's description field by
    field (they were dropped unseen), in the new form and in the earlier one."""
    cache = tmp_path / "cache"
    build_cache(recipe(*OWN), cache, store="hard", evaluate=False, reporter=Reporter())
    doc = json.loads((cache / "manifest.json").read_text())
    r = recipe(*OWN, f"teacher.cache={cache}", teacher=members_described)
    members = [{"spec": "timm:test_resnet", "weight": 0.5, "weights_sha256": None}] * 2
    doc["teacher_recipe"]["name"] = members_described
    earlier = json.loads(json.dumps(doc))
    earlier.pop("teacher_description", None)
    earlier["teacher_recipe"].update(members=members, version="v0")  # the earlier form
    (cache / "manifest.json").write_text(json.dumps(earlier))
    assert mismatches(load_manifest(cache), r, world_size=1) == [
        "teacher.version (cache 'v0', run 'v1')"]
    doc["teacher_description"] = {"members": members, "version": "v0"}  # the new form
    (cache / "manifest.json").write_text(json.dumps(doc))
    assert mismatches(load_manifest(cache), r, world_size=1) == [
        "teacher.version (cache 'v0', run 'v1')"]
    doc["teacher_description"]["version"] = "v1"
    (cache / "manifest.json").write_text(json.dumps(doc))
    assert mismatches(load_manifest(cache), r, world_size=1) == []


def test_a_cache_of_the_earlier_form_loads_replays_and_resumes(tmp_path):
    """An ensemble cache as 7de3b41 (and this toolkit until now) wrote it: its members
    among the teacher section's fields, no `rows_by`, no `keys_sha256`."""
    a = _weights_file(tmp_path / "a.safetensors", 1)
    b = _weights_file(tmp_path / "b.safetensors", 2)
    members = (f"teacher.members=[{{name: 'timm:test_resnet', weights: '{a}'}}, "
               f"{{name: 'timm:test_resnet', weights: '{b}', weight: 2}}]")
    cache = tmp_path / "cache"
    build_cache(recipe("teacher.name=null", members, *OWN), cache, store="hard",
                evaluate=False, reporter=Reporter())
    doc = json.loads((cache / "manifest.json").read_text())
    described = doc.pop("teacher_description")
    assert [x["weights_sha256"] for x in described["members"]] == [file_sha256(a),
                                                                   file_sha256(b)]
    doc["teacher_recipe"]["members"] = described["members"]
    doc.pop("rows_by", None)
    doc["dataset"].pop("keys_sha256", None)
    assert set(doc) <= V1_FIELDS and set(doc["dataset"]) <= V1_DATASET_FIELDS
    (cache / "manifest.json").write_text(json.dumps(doc, indent=2))

    m = load_manifest(cache)
    assert m.teacher_description == described and "members" not in m.teacher_recipe
    assert m.rows_by == "position" and m.dataset.keys_sha256 is None
    # the same build again: the very cache (complete, nothing to do), left as it is
    again = build_cache(recipe("teacher.name=null", members, *OWN), cache, store="hard",
                        evaluate=False, reporter=Reporter())
    assert again.images == 0 and json.loads((cache / "manifest.json").read_text()) == doc
    # it replays, and a changed member is still refused, naming it
    train(recipe("teacher.name=null", members, *OWN, f"teacher.cache={cache}",
                 f"run.out={tmp_path / 'run'}"), reporter=Reporter())
    _weights_file(b, 3)
    with pytest.raises(UsageError, match=r"teacher member 2 'timm:test_resnet' weights"):
        train(recipe("teacher.name=null", members, *OWN, f"teacher.cache={cache}",
                     f"run.out={tmp_path / 'changed'}"), reporter=Reporter())


def test_a_cache_that_needs_no_new_field_is_written_as_version_1_wrote_it(tmp_path):
    """`rows_by` (position), `keys_sha256` (not a stream) and `teacher_description` (an
    adapter that describes nothing) at their defaults are not written: the toolkit of
    7de3b41, which knows none of them and forbids unknown fields, reads the cache."""
    cache = tmp_path / "cache"
    build_cache(recipe(), cache, store="hard", evaluate=False, reporter=Reporter())
    doc = json.loads((cache / "manifest.json").read_text())
    assert set(doc) <= V1_FIELDS, sorted(set(doc) - V1_FIELDS)
    assert set(doc["dataset"]) <= V1_DATASET_FIELDS
    m = load_manifest(cache)
    assert m.rows_by == "position" and m.dataset.keys_sha256 is None
    assert m.teacher_description == {}
