"""Compare the weights (every tensor, bitwise) and metadata of the runs run.sh wrote."""
import torch
from safetensors import safe_open
from safetensors.torch import load_file

for r in ("teacher", "token", "none"):
    a = load_file(f"/tmp/qcheck/old/{r}/model.safetensors")
    b = load_file(f"/tmp/qcheck/new/{r}/model.safetensors")
    same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma = safe_open(f"/tmp/qcheck/old/{r}/model.safetensors", "pt").metadata()
    mb = safe_open(f"/tmp/qcheck/new/{r}/model.safetensors", "pt").metadata()
    print(r, "tensors:", len(a), "bitwise equal:", same, "metadata equal:", ma == mb)
