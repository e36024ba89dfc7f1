# ruff: noqa: I001, E402  (the shims must run before deit's modules are imported)
"""Convert the quickstart teacher (a deit-distill run folder) to the {'model': state_dict}
.pth that DeiT's main.py loads, and check that DeiT's way of building and loading it
(timm.create_model + load_state_dict) gives logits bitwise equal to deit-distill's
checkpoint adapter on 512 test images. Usage: teacher_check.py RUN_DIR OUT.pth"""
import sys

import torch
from safetensors.torch import load_file

import run_official  # registers fmnist_resnet8 (and applies the shims)

run, out = sys.argv[1], sys.argv[2]
state = load_file(f"{run}/model.safetensors")
torch.save({"model": state}, out)

from timm.models import create_model

official = create_model("fmnist_resnet8", pretrained=False, num_classes=10, global_pool="avg")
official.load_state_dict(torch.load(out, map_location="cpu")["model"])
official.eval()

from teachers import StudentInput, build_teacher  # (deit-distill at the study's commit)
from distill.data import Batch

ds, _ = run_official.build_dataset(False, None)
x = torch.stack([ds[i][0] for i in range(512)])
ours = build_teacher(f"checkpoint:{run}", student=StudentInput(
    mean=(0.286,), std=(0.353,), in_chans=1, img_size=28, num_classes=10))
with torch.inference_mode():
    a = official(x)
    b = ours.targets(Batch(images=x, labels=torch.zeros(512, dtype=torch.long), index=torch.arange(512)))
y = torch.tensor([ds[i][1] for i in range(512)])
print("max |diff|:", (a - b).abs().max().item(), "bitwise equal:", torch.equal(a, b))
print("top-1 on these 512, official / ours:", (a.argmax(1) == y).float().mean().item(),
      (b.argmax(1) == y).float().mean().item())
