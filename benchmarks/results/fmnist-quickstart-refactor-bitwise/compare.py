"""Compare the weights (every tensor, bitwise) and metadata of the runs run.sh wrote."""
import json
import struct

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
    heads = []
    for t in ("old", "new"):
        with open(f"/tmp/qcheck/{t}/{r}/model.safetensors", "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            head = fh.read(n)
            heads.append((head, fh.read()))
    print(r, "tensor bytes equal:", heads[0][1] == heads[1][1], "header bytes equal:",
          heads[0][0] == heads[1][0])
    for t, (head, _) in zip(("old", "new"), heads):
        print(f"  {t} __metadata__ keys in file order:", list(json.loads(head)["__metadata__"]))
