"""Students: every registered one builds and runs; DeiT weights round-trip through timm."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from distill.checkpoint import load_weights, read_metadata, save_weights
from distill.registry import STUDENTS
from distill.student import build_student, student_facts
from students import DeiT, adapt_deit_state

TINY = {"deit": dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2),
        "convnet": dict(img_size=32)}


def tiny(name: str, **extra) -> torch.nn.Module:
    family = STUDENTS.facts(name).family
    return build_student(name, num_classes=7, in_chans=3, **{**TINY[family], **extra})


@pytest.mark.parametrize("name", STUDENTS.names())
def test_every_student_trains_and_evaluates(name):
    torch.manual_seed(0)
    model = tiny(name)
    x = torch.randn(4, 3, 32, 32)
    model.train()
    out = model(x)
    if student_facts(name).distilled:
        assert isinstance(out, tuple) and len(out) == 2
        assert out[0].shape == out[1].shape == (4, 7)
        model.eval()
        with torch.no_grad():
            cls, dist = model.forward_heads(x)
            assert torch.allclose(model(x), (cls + dist) / 2)
    else:
        assert out.shape == (4, 7)
    loss = (out[0].sum() + out[1].sum()) if isinstance(out, tuple) else out.sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("size,params", [("tiny", 5.7e6), ("small", 22.1e6), ("base", 86.6e6)])
def test_paper_sizes(size, params):
    """Counted on the meta device: shapes without memory or initialisation."""
    with torch.device("meta"):
        model = build_student(f"deit_{size}_patch16_224")
        ref = timm.create_model(f"deit_{size}_patch16_224", pretrained=False)
    n = sum(p.numel() for p in model.parameters())
    assert n == pytest.approx(params, rel=0.02)
    assert n == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("distilled", [False, True])
def test_timm_round_trip(tmp_path, distilled):
    """Our file loads into timm.create_model(meta...) strictly, and timm's back into ours."""
    from distill.checkpoint import weights_metadata
    from distill.recipe import load_recipe

    name = f"deit_tiny_{'distilled_' if distilled else ''}patch16_224"
    torch.manual_seed(0)
    ours = build_student(name, num_classes=10, in_chans=1, img_size=28, patch_size=4,
                         embed_dim=32, depth=2, num_heads=2).eval()
    recipe = load_recipe(None, ["data.in_chans=1", "data.mean=[0.5]", "data.std=[0.5]",
                                f"student.name={name}", "loss.name=none" if not distilled
                                else "teacher.name=timm:resnet18"])
    path = tmp_path / "model.safetensors"
    save_weights(path, ours.state_dict(), weights_metadata(ours, recipe, epoch=1))
    meta = read_metadata(path)
    assert meta["timm_model"] == name
    ref = timm.create_model(meta["timm_model"], pretrained=False, **json.loads(meta["timm_kwargs"]))
    ref.load_state_dict(load_weights(path), strict=True)
    ref.eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(ref(x), ours(x), atol=1e-5)
    back = build_student(name, **json.loads(meta["distill_kwargs"])).eval()
    back.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.allclose(back(x), ours(x), atol=1e-5)


def test_adapt_timm_224_checkpoint_to_small_images():
    """A timm deit_tiny (224², 1000 classes) initialises a 32² 10-class distilled student."""
    torch.manual_seed(0)
    ref = timm.create_model("deit_tiny_patch16_224", pretrained=False, depth=2)
    student = build_student("deit_tiny_distilled_patch16_224", img_size=32, num_classes=10,
                            depth=2)
    state, notes = adapt_deit_state(ref.state_dict(), student)
    result = student.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ["head.bias", "head.weight", "head_dist.bias",
                                           "head_dist.weight"]
    assert not result.unexpected_keys
    assert any("pos_embed resampled from 14x14 to 2x2" in n for n in notes)
    assert torch.equal(student.blocks[1].mlp.fc2.weight, ref.blocks[1].mlp.fc2.weight)
    assert torch.equal(student.dist_token, ref.cls_token)


def test_bad_student_kwargs_are_refused():
    from distill.errors import UsageError

    with pytest.raises(UsageError, match="does not accept 'embed_dims'"):
        build_student("deit_tiny_patch16_224", embed_dims=3)
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        DeiT(img_size=30, patch_size=8)


def test_timm_student_prefix():
    model = build_student("timm:resnet10t", num_classes=5)
    assert model.distill_model == "timm:resnet10t" and model.timm_model == "resnet10t"
    assert student_facts("timm:deit_tiny_distilled_patch16_224").distilled
    from distill.errors import UsageError

    with pytest.raises(UsageError, match="did you mean 'timm:resnet18'"):
        student_facts("timm:resnet_18")
