"""Teachers: each adapter, input re-normalisation, class-count checks, weights files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distill.checkpoint import file_sha256, save_weights
from distill.errors import UsageError
from distill.registry import TEACHERS
from distill.teacher import LiveTeacher, StudentInput, Teacher, build_teacher

RGB32 = StudentInput(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), in_chans=3, img_size=32,
                     num_classes=10)
GRAY28 = StudentInput(mean=(0.286,), std=(0.353,), in_chans=1, img_size=28, num_classes=10)


class Probe(nn.Module):
    """Records what the teacher model receives; predicts from the channel means."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.num_classes = num_classes
        self.seen: torch.Tensor | None = None
        self.grad_enabled = None
        self.lin = nn.Linear(3, num_classes)

    def forward(self, x):
        self.seen = x.clone()
        self.grad_enabled = torch.is_grad_enabled()
        return self.lin(x.mean(dim=(2, 3)))


def test_live_teacher_renormalises_resizes_and_runs_frozen():
    probe = Probe()
    t = LiveTeacher(probe, adapter="python", name="probe", student=GRAY28,
                    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                    input_size=(3, 56, 56))
    x = torch.randn(2, 1, 28, 28)
    logits = t(x)
    assert logits.shape == (2, 10) and logits.dtype == torch.float32
    assert probe.grad_enabled is False and not probe.training
    seen = probe.seen
    assert seen.shape == (2, 3, 56, 56)
    # Undo the student's normalisation, apply the teacher's, then resize: compare one channel.
    pixels = x * 0.353 + 0.286
    expected = torch.nn.functional.interpolate((pixels - 0.456) / 0.224, size=(56, 56),
                                               mode="bicubic", align_corners=False)
    assert torch.allclose(seen[:, 1:2], expected, atol=1e-5)
    t.train()
    assert not t.model.training  # a teacher never leaves eval mode


def test_identity_normalisation_is_skipped_exactly():
    probe = Probe()
    t = LiveTeacher(probe, adapter="python", name="p", student=RGB32, mean=RGB32.mean,
                    std=RGB32.std, input_size=(3, 32, 32))
    x = torch.randn(2, 3, 32, 32)
    t(x)
    assert torch.equal(probe.seen, x)


def test_class_count_mismatch_is_a_clear_error():
    with pytest.raises(UsageError, match="predicts 1000 classes but data.num_classes is 10"):
        LiveTeacher(Probe(1000), adapter="timm", name="x", student=RGB32, mean=RGB32.mean,
                    std=RGB32.std, input_size=(3, 32, 32))


def test_timm_teacher_with_local_weights(tmp_path):
    import timm

    torch.manual_seed(0)
    src = timm.create_model("test_resnet", num_classes=10)
    path = tmp_path / "w.pth"
    torch.save({"model": src.state_dict(), "epoch": 3}, path)  # official layout
    t = build_teacher("timm:test_resnet", student=GRAY28, weights=path,
                      kwargs={"num_classes": 10}, input_size=32)
    assert isinstance(t, Teacher)
    assert t.identity.weights_sha256 == file_sha256(path)
    assert t.identity.input_size == (3, 32, 32) and t.identity.mean == tuple(src.pretrained_cfg["mean"])
    x = torch.randn(2, 1, 28, 28)
    src.eval()
    with torch.no_grad():
        assert torch.allclose(t(x), src(t.adapt(x)), atol=1e-5)


def test_timm_teacher_refuses_weights_that_do_not_fit(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, {"not.a.key": torch.zeros(2)})
    with pytest.raises(UsageError, match="does not fit timm:test_resnet"):
        build_teacher("timm:test_resnet", student=RGB32, weights=path,
                      kwargs={"num_classes": 10})


def test_unknown_timm_model_suggests():
    with pytest.raises(UsageError, match="did you mean 'regnety_160'"):
        TEACHERS.facts("timm").check("regnety160")


def test_torchvision_teacher():
    t = build_teacher("torchvision:resnet18", student=RGB32, kwargs={"num_classes": 10},
                      input_size=64)
    assert t.identity.num_classes == 10 and t.identity.input_size == (3, 64, 64)
    assert t(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(UsageError, match="did you mean"):
        TEACHERS.facts("torchvision").check("resnet_18")


def test_python_teacher_and_its_errors():
    t = build_teacher("python:tests.plugins.user_teacher:make", student=RGB32)
    assert t.identity.input_size == (3, 32, 32) and t.identity.mean == RGB32.mean
    assert t(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(UsageError, match="not an nn.Module"):
        build_teacher("python:tests.plugins.user_teacher:not_a_model", student=RGB32)
    with pytest.raises(UsageError, match="no callable 'missing'"):
        build_teacher("python:tests.plugins.user_teacher:missing", student=RGB32)
    with pytest.raises(UsageError, match="not importable"):
        build_teacher("python:no_such_module_xyz:make", student=RGB32)


def test_checkpoint_teacher_from_a_run(tmp_path):
    from distill.checkpoint import weights_metadata
    from distill.recipe import load_recipe
    from distill.student import build_student

    recipe = load_recipe(None, ["data.in_chans=1", "data.mean=[0.3]", "data.std=[0.4]",
                                "data.img_size=28", "data.num_classes=10",
                                "student.name=cifar_resnet8", "loss.name=none"])
    model = build_student("cifar_resnet8", num_classes=10, in_chans=1, img_size=28).eval()
    save_weights(tmp_path / "model.safetensors", model.state_dict(),
                 weights_metadata(model, recipe, epoch=1))
    t = build_teacher(f"checkpoint:{tmp_path}", student=GRAY28)
    assert t.identity.mean == (0.3,) and t.identity.input_size == (1, 28, 28)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(t(x), model(t.adapt(x)), atol=1e-5)
    with pytest.raises(UsageError, match="no trained model"):
        build_teacher(f"checkpoint:{tmp_path / 'nope'}", student=GRAY28)


def test_unsafe_pickle_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(UsageError, match="weights_only=True"):
        build_teacher("timm:test_resnet", student=RGB32, weights=path,
                      kwargs={"num_classes": 10})


def test_spec_hash_is_stable_and_weight_sensitive():
    torch.manual_seed(0)
    a = build_teacher("timm:test_resnet", student=RGB32, kwargs={"num_classes": 10})
    torch.manual_seed(0)
    b = build_teacher("timm:test_resnet", student=RGB32, kwargs={"num_classes": 10})
    torch.manual_seed(1)
    c = build_teacher("timm:test_resnet", student=RGB32, kwargs={"num_classes": 10})
    assert a.identity == b.identity and a.identity.weights_sha256 != c.identity.weights_sha256


EXAMPLES = {
    "timm": ("timm:test_resnet", {"num_classes": 10}),
    "torchvision": ("torchvision:resnet18", {"num_classes": 10}),
    "python": ("python:tests.plugins.user_teacher:make", {"num_classes": 10}),
    "checkpoint": ("checkpoint:{tmp}", {}),
    "ensemble": ("ensemble:timm:test_resnet+0.5*python:tests.plugins.user_teacher:make",
                 {"num_classes": 10}),
}


def write_run(folder) -> None:
    """A run directory as `distill train` leaves it (model.safetensors with metadata)."""
    from distill.checkpoint import weights_metadata
    from distill.recipe import load_recipe
    from distill.student import build_student

    recipe = load_recipe(None, ["data.img_size=32", "data.num_classes=10",
                                "student.name=cifar_resnet8", "loss.name=none"])
    model = build_student("cifar_resnet8", num_classes=10, in_chans=3, img_size=32)
    save_weights(folder / "model.safetensors", model.state_dict(),
                 weights_metadata(model, recipe, epoch=1))


@pytest.mark.parametrize("adapter", [n for n in TEACHERS.names()  # `cache`: test_cache.py
                                     if not TEACHERS.entry(n).source.startswith("plugin ")
                                     and not TEACHERS.facts(n).cached])
def test_every_registered_teacher_adapter(adapter, tmp_path):
    """Every adapter builds a Teacher with a full spec (a new one needs an example here)."""
    assert adapter in EXAMPLES, f"add an example spec for the '{adapter}' teacher adapter"
    spec, kwargs = EXAMPLES[adapter]
    write_run(tmp_path)
    t = build_teacher(spec.format(tmp=tmp_path), student=RGB32, kwargs=kwargs, input_size=32)
    assert isinstance(t, Teacher) and t.identity.adapter == adapter
    assert len(t.identity.weights_sha256) == 64 and t.identity.num_classes == 10
    assert t(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_fixed_size_teacher_follows_its_model_or_refuses_in_one_line():
    """A timm ViT takes one size: the size it was built for (not its pretrained_cfg's), and
    a `teacher.input_size` it cannot take is refused at build time, named."""
    from distill.teacher import fixed_input_size

    t = build_teacher("timm:vit_tiny_patch16_224", student=RGB32,
                      kwargs={"num_classes": 10, "img_size": 32})
    assert fixed_input_size(t.model) == (32, 32) and t.identity.input_size == (3, 32, 32)
    assert t(torch.randn(2, 3, 32, 32)).shape == (2, 10)  # no resize to 224, no assert
    with pytest.raises(UsageError, match=r"^teacher.input_size: 48, but "
                       r"'timm:vit_tiny_patch16_224' takes 32×32 images only"):
        build_teacher("timm:vit_tiny_patch16_224", student=RGB32, input_size=48,
                      kwargs={"num_classes": 10, "img_size": 32})
    flexible = build_teacher("timm:vit_tiny_patch16_224", student=RGB32, input_size=48,
                             kwargs={"num_classes": 10, "img_size": 32,
                                     "dynamic_img_size": True})
    assert fixed_input_size(flexible.model) is None and flexible.identity.input_size == (3, 48, 48)


def test_probe_of_a_model_names_the_size_it_refuses():
    with pytest.raises(UsageError, match=r"^teacher.input_size: "
                       r"'python:tests.plugins.user_teacher:make' refuses a 3×48×48 image "
                       r"\(RuntimeError: mat1 and mat2"):
        build_teacher("python:tests.plugins.user_teacher:make", student=RGB32, input_size=48)


def test_class_count_of_any_integer_type_is_checked():
    import numpy as np

    probe = Probe(1000)
    probe.num_classes = np.int64(1000)  # a model built from a config file, say
    with pytest.raises(UsageError, match="predicts 1000 classes but data.num_classes is 10"):
        LiveTeacher(probe, adapter="python", name="x", student=RGB32, mean=RGB32.mean,
                    std=RGB32.std, input_size=(3, 32, 32))
