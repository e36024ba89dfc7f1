"""benchmarks/jpeg_breakdown.py on a tiny photo set: it times every part, decodes large
photos at a reduced scale and compares their pixels with `full`'s, and names an empty set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks.jpeg_breakdown import main

from .test_shards import make_folder


def test_breakdown_times_the_parts_and_compares_reduced_pixels(tmp_path):
    make_folder(tmp_path / "imagenet")  # 16 JPEGs of about 20×20 (and a PNG, not read)
    big = tmp_path / "phone" / "train" / "a"
    big.mkdir(parents=True)
    ramp = np.linspace(0, 255, 3000, dtype=np.uint8)
    for i in range(2):  # 3000×2400: every timm crop keeps ≥ 448 pixels a side, so scale ≥ 2
        pixels = np.stack([np.tile(ramp, (2400, 1)), np.tile(ramp[::-1], (2400, 1)),
                           np.full((2400, 3000), 40 * i, np.uint8)], axis=-1)
        Image.fromarray(pixels).save(big / f"{i}.jpg", quality=90)
    main(["--photos", str(tmp_path), "--out", str(tmp_path / "out"), "--images", "20"])
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    small, phone = doc["sets"]["imagenet"], doc["sets"]["phone"]
    assert small["images"] == 16 and phone["images"] == 2
    for s in (small, phone):
        assert set(s["mean_ms"]) == {"decode", "header", "crop_resize_full",
                                     "crop_resize_reduced", "resize_only"}
        assert all(v >= 0 for v in s["mean_ms"].values())
    assert small["reduced_scales"] == {"1": 16} and small["psnr_db"]["images"] == 0
    assert "1" not in phone["reduced_scales"] and phone["psnr_db"]["images"] == 2
    assert 20 < phone["psnr_db"]["min"] < 80  # close to full's pixels, not equal
    assert "| phone | 2 |" in (tmp_path / "out" / "results.md").read_text()


def test_an_empty_set_is_named(tmp_path):
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    with pytest.raises(SystemExit, match="imagenet/train: no JPEG photos"):
        main(["--photos", str(tmp_path), "--out", str(tmp_path / "out"), "--sets", "imagenet"])
