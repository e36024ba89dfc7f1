"""deit's own DistilledVisionTransformer (models.py, 7e160fe) against our DeiT⚗ at the study's
shape: loaded with the same weights, 3 AdamW steps (timm's create_optimizer_v2), both heads'
cross-entropy summed; prints whether loss, every gradient and every weight are bitwise equal.
Usage: PYTHONPATH=<deit-distill checkout> python distilled_bitwise.py  (env DEIT_DIR)"""
import os
import sys
from functools import partial

import torch
from torch import nn

sys.path.insert(0, os.environ.get("DEIT_DIR", "/work/deit-official"))
import timm.data.transforms as tdt

if not hasattr(tdt, "_pil_interp"):  # shim 1 of run_official.py, for deit's imports
    tdt._pil_interp = tdt.str_to_pil_interp
import models as deit_models
from timm.optim import create_optimizer_v2

from distill.registry import STUDENTS

torch.manual_seed(0)
theirs = deit_models.DistilledVisionTransformer(
    img_size=28, patch_size=7, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4, qkv_bias=True,
    in_chans=1, num_classes=10, norm_layer=partial(nn.LayerNorm, eps=1e-6))
ours = STUDENTS.build("deit_tiny_distilled_patch16_224", img_size=28, patch_size=7, embed_dim=128,
                      depth=4, num_heads=4, in_chans=1, num_classes=10)
ours.load_state_dict(theirs.state_dict(), strict=True)
opts = [create_optimizer_v2(m, "adamw", lr=2e-3, weight_decay=0.05) for m in (theirs, ours)]
x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
equal = True
for step in range(3):
    losses = []
    for model, opt in zip((theirs, ours), opts):
        model.train()
        cls, dist = model(x)
        loss = nn.functional.cross_entropy(cls, y) + nn.functional.cross_entropy(dist, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss)
    mine = dict(ours.named_parameters())
    same = torch.equal(*losses) and all(
        torch.equal(p.grad, mine[n].grad) and torch.equal(p, mine[n])
        for n, p in theirs.named_parameters())
    equal &= same
    print(f"step {step}: loss {losses[0].item():.6f} / {losses[1].item():.6f}, bitwise equal: {same}")
print(f"all steps bitwise equal: {equal}")
