# ruff: noqa: I001, E402  (the shims must run before deit's modules are imported)
"""Run facebookresearch/deit main.py (commit 7e160fe, unmodified) on the deit-distill
quickstart setting (Fashion-MNIST, first 2,000 training images), on CPU.

Shims, applied before deit's main.py is imported (nothing in deit's files is edited):
 1. timm.data.transforms._pil_interp: alias of timm's str_to_pil_interp (removed from timm).
 2. torch.cuda.synchronize: a no-op (no CUDA here).
 3. timm.utils.get_state_dict(None) returns None (model EMA off).
 4. datasets.build_dataset: Fashion-MNIST through deit-distill's own `pil` transforms
    (distill.data.transforms.train_transform / eval_transform of the quickstart recipe);
    deit's own would swap the crop for RandomCrop(padding=4) at <= 32 px.
 5. Student and teacher registered as timm names: fmnist_deit (timm VisionTransformer),
    fmnist_deit_distilled (deit's DistilledVisionTransformer), both patch 7, dim 128,
    depth 4, 4 heads, 1 channel, qkv_bias, LayerNorm eps 1e-6 as deit's own registrations;
    fmnist_resnet8 (deit-distill's cifar_resnet8, width 2, the quickstart teacher).
 6. engine.evaluate runs every EVAL_EVERY epochs and at the last one (else returns NaN).
An ablation, not a shim: with STUDENT=ours, fmnist_deit and fmnist_deit_distilled are
deit-distill's own DeiT classes (students/deit.py) at the same shape, so that the official
training loop trains our model.
With STUDENT=ours-sameinit, timm's / deit's class is built first, as in the official run (so
the random stream after it is the official run's), and our class, built under a forked
random state, is loaded with its weights: the official run with only the class swapped.
Usage: python run_official.py [deit main.py arguments]  (env DEIT_DIR, RECIPE, EVAL_EVERY,
STUDENT, PY_SEED)

Found on the way (not a shim): deit's main.py seeds torch and NumPy but leaves Python's
`random.seed` commented out. timm's RandomResizedCrop, RandAugment's magnitudes and
probabilities, and RandomErasing's boxes draw from Python's `random`; with --num_workers 0, as
here, nothing seeds it (worker processes would be seeded from torch), so two official runs at
one --seed differ. PY_SEED=1 seeds Python's `random` with --seed as well (a diagnostic: every
other recorded official cell runs without).
"""
import gzip
import math
import os
import sys
from functools import partial

import numpy as np
import torch
from torch import nn

DEIT = os.environ.get("DEIT_DIR", "/work/deit-official")
sys.path.insert(0, DEIT)

import timm.data.transforms as tdt
import timm.utils

# 1
if not hasattr(tdt, "_pil_interp"):
    tdt._pil_interp = tdt.str_to_pil_interp
# 2
torch.cuda.synchronize = lambda *a, **k: None
# 3
_get_state_dict = timm.utils.get_state_dict
timm.utils.get_state_dict = lambda model, *a, **k: None if model is None else _get_state_dict(model, *a, **k)

# 4
from PIL import Image

import datasets as deit_datasets  # (deit's datasets.py)
from distill.data.transforms import eval_transform, train_transform
from distill.recipe import load_recipe

RECIPE = load_recipe(os.environ.get("RECIPE", "recipes/fmnist/deit_token.yaml"))
ROOT = "/usr/share/datasets/fashion-mnist"


def _idx(name):
    with gzip.open(os.path.join(ROOT, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


class FMNIST(torch.utils.data.Dataset):
    def __init__(self, train, transform, limit=None):
        prefix = "train" if train else "t10k"
        self.x = _idx(f"{prefix}-images-idx3-ubyte.gz")[:limit]
        self.y = _idx(f"{prefix}-labels-idx1-ubyte.gz")[:limit].astype(np.int64)
        self.transform = transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.x[i], mode="L")), int(self.y[i])


def build_dataset(is_train, args):
    d, a = RECIPE.data, RECIPE.augment
    if is_train:
        return FMNIST(True, train_transform(d, a), d.train_limit), d.num_classes
    return FMNIST(False, eval_transform(d), d.val_limit), d.num_classes


deit_datasets.build_dataset = build_dataset

# 5
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer

import models as deit_models  # (deit's models.py)

_ARCH = dict(patch_size=7, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4, qkv_bias=True,
             in_chans=1, norm_layer=partial(nn.LayerNorm, eps=1e-6))


def _model_kwargs(kwargs):
    # timm's create_model also passes its own pretrained_cfg / overlay / cache_dir
    drop = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")
    return {k: v for k, v in kwargs.items() if k not in drop}


def _ours(name, kwargs):
    from distill.registry import STUDENTS
    kwargs = _model_kwargs(kwargs)
    if kwargs.get("drop_rate", 0.0):
        raise SystemExit("STUDENT=ours: --drop is not supported")
    return STUDENTS.build(name, img_size=kwargs.get("img_size", 28), patch_size=7, embed_dim=128,
                          depth=4, num_heads=4, in_chans=1,
                          num_classes=kwargs.get("num_classes", 10),
                          drop_path_rate=kwargs.get("drop_path_rate", 0.0))


STUDENT = os.environ.get("STUDENT", "official")
if STUDENT not in ("official", "ours", "ours-sameinit"):
    raise SystemExit(f"STUDENT={STUDENT}: expected official, ours or ours-sameinit")
OURS = STUDENT == "ours"
print(f"students: {'deit-distill students/deit.py' if STUDENT != 'official' else 'timm / deit models.py'}"
      f"{', initialised from timm/deit class' if STUDENT == 'ours-sameinit' else ''}")


def _same_init(name, official, kwargs):
    # Our class, built without touching the random stream, takes the official model's weights.
    with torch.random.fork_rng(devices=[]):
        ours = _ours(name, kwargs)
    ours.load_state_dict(official.state_dict(), strict=True)
    return ours


@register_model
def fmnist_deit(pretrained=False, **kwargs):
    if OURS:
        return _ours("deit_tiny_patch16_224", kwargs)
    official = VisionTransformer(**_ARCH, **_model_kwargs(kwargs))
    if STUDENT == "ours-sameinit":
        return _same_init("deit_tiny_patch16_224", official, kwargs)
    return official


@register_model
def fmnist_deit_distilled(pretrained=False, **kwargs):
    if OURS:
        return _ours("deit_tiny_distilled_patch16_224", kwargs)
    official = deit_models.DistilledVisionTransformer(**_ARCH, **_model_kwargs(kwargs))
    if STUDENT == "ours-sameinit":
        return _same_init("deit_tiny_distilled_patch16_224", official, kwargs)
    return official


@register_model
def fmnist_resnet8(pretrained=False, global_pool=None, **kwargs):
    kwargs = _model_kwargs(kwargs)
    from distill.registry import STUDENTS
    t = RECIPE_TEACHER
    return STUDENTS.build(t.student.name, num_classes=kwargs.get("num_classes", t.data.num_classes),
                          in_chans=t.data.in_chans, img_size=t.data.img_size, **t.student.kwargs)


RECIPE_TEACHER = load_recipe("recipes/fmnist/teacher_resnet.yaml")

# 6
import engine as deit_engine

EVAL_EVERY = int(os.environ.get("EVAL_EVERY", "20"))
_evaluate = deit_engine.evaluate
_calls = [0]


def evaluate(data_loader, model, device):
    _calls[0] += 1
    epoch = _calls[0]
    if epoch % EVAL_EVERY == 0 or epoch == EPOCHS:
        return _evaluate(data_loader, model, device)
    return {"acc1": math.nan, "acc5": math.nan, "loss": math.nan}


deit_engine.evaluate = evaluate

import main as deit_main  # (deit's main.py)

if __name__ == "__main__":
    parser = deit_main.argparse.ArgumentParser("DeiT", parents=[deit_main.get_args_parser()])
    args = parser.parse_args()
    EPOCHS = args.epochs
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    if os.environ.get("PY_SEED") == "1":
        import random
        random.seed(args.seed)
        print(f"PY_SEED=1: random.seed({args.seed})")
    deit_main.main(args)
