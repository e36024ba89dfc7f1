"""Do two checkouts' tensor pipelines give the same augmented images? (issue 13)

Runs the Fashion-MNIST loader of `recipes/fmnist/deit_none.yaml` with the paper's
augmentation (the setting of `tensor_speed.py`; first 6,000 images, batch 256, 0 workers)
in each checkout, in a subprocess with that checkout first on the path, for six batches of
epochs 0 and 3, and compares the finished float images bit for bit.

    python benchmarks/same_tensor_images.py CHECKOUT_A CHECKOUT_B
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import torch

CHILD = r"""
import sys, torch
root = sys.argv[1]
sys.path.insert(0, root + "/benchmarks")
from tensor_speed import PAPER_AUG
from distill.recipe import load_recipe
from distill.data import augment_batch, build_data
r = load_recipe(root + "/recipes/fmnist/deit_none.yaml",
                [*PAPER_AUG, "data.pipeline=tensor", "data.batch_size=256",
                 "data.train_limit=6000", "data.num_workers=0"])
data = build_data(r.data, r.augment, r.run.seed)
out = []
for epoch in (0, 3):
    for i, batch in enumerate(data.epoch(epoch)):
        out.append(augment_batch(batch, data.train.augment, torch.device("cpu")).images)
        if i == 5:
            break
torch.save(torch.cat(out), sys.argv[2])
"""


def images(checkout: Path, out: Path) -> torch.Tensor:
    env = {"PYTHONPATH": str(checkout), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", CHILD, str(checkout), str(out)], check=True,
                   cwd=checkout, env=env)
    return torch.load(out, weights_only=True)


def main() -> None:
    a, b = (Path(p).resolve() for p in sys.argv[1:3])
    with tempfile.TemporaryDirectory() as tmp:
        x, y = images(a, Path(tmp) / "a.pt"), images(b, Path(tmp) / "b.pt")
    same = x.shape == y.shape and torch.equal(x, y)
    print(f"{a}: {tuple(x.shape)}; {b}: {tuple(y.shape)}; bitwise equal: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
