"""Where a `tensor` loader worker's time goes on a JPEG photo, and what `data.decode: reduced`
does to the pixels (issue 24).

    python benchmarks/jpeg_breakdown.py --photos data/photos --out benchmarks/results/jpeg-breakdown-cpu

One process, one thread, CPU time per image (`time.process_time`), on the first `--images`
training photos of each set, each with a RandomResizedCrop box drawn as timm draws it (scale
0.08–1, ratio 3/4–4/3, seeded) and a 224×224 bicubic output, the DeiT recipes' setting:

- `decode`: Pillow opens and decodes the whole file and converts it to RGB (as `jpeg_loader.py`'s
  `decode_pil` arm, whose loop differs: its figure is not this one);
- `header`: `distill.data.decode.read_header` (what the worker reads to draw the box);
- `crop_resize_full` / `crop_resize_reduced`: `decode.crop_resize` with `data.decode: full`
  and `reduced` (decode, crop, resize, to a uint8 tensor), what the worker does after the
  header;
- `resize_only`: the crop and resize of an image decoded already (`decode.resize`).

The rest of a worker's time per image (its batch, the copy into shared memory, the queue) is
`jpeg_loader.py`'s per-CPU-second figure minus these. Pixels: the PSNR (dB, peak 255) of
`reduced`'s output against `full`'s for the same box, over the images where `reduced`
decoded at a smaller scale, and how many those were.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import random
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.shards_speed import commit, device  # noqa: E402
from distill.data.decode import crop_resize, read_header, reduced_scale, resize  # noqa: E402

SIZE = (224, 224)
BICUBIC = 2  # tensor_ops' interpolation code


def rrc_box(rng: random.Random, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, h, w): timm's RandomResizedCrop rule (scale 0.08–1, log-uniform ratio
    3/4–4/3, ten tries, then the centre crop clamped to the ratio range)."""
    area = height * width
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    ratio = width / height
    if ratio < 3 / 4:
        w, h = width, round(width / (3 / 4))
    elif ratio > 4 / 3:
        h, w = height, round(height * (4 / 3))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def cpu_ms(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.process_time()
    out = fn(*args, **kwargs)
    return (time.process_time() - t0) * 1e3, out


def decode_whole(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return img.convert("RGB")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def one_set(folder: Path, images: int, seed: int) -> dict:
    files = sorted(p for p in (folder / "train").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    files = files[:images]
    if not files:
        raise SystemExit(f"{folder / 'train'}: no JPEG photos (build them: make photos)")
    rng = random.Random(seed)
    times: dict[str, list[float]] = {k: [] for k in ("decode", "header", "crop_resize_full",
                                                     "crop_resize_reduced", "resize_only")}
    psnrs, scales = [], []
    for path in files:
        ms, img = cpu_ms(decode_whole, path)
        times["decode"].append(ms)
        ms, header = cpu_ms(read_header, path)
        times["header"].append(ms)
        box = rrc_box(rng, header.height, header.width)
        ms, full = cpu_ms(crop_resize, path, box, SIZE, BICUBIC, "RGB", decode="full", header=header)
        times["crop_resize_full"].append(ms)
        ms, reduced = cpu_ms(crop_resize, path, box, SIZE, BICUBIC, "RGB", decode="reduced",
                             header=header)
        times["crop_resize_reduced"].append(ms)
        ms, _ = cpu_ms(resize, img, box, SIZE, BICUBIC)
        times["resize_only"].append(ms)
        scale = reduced_scale(box, SIZE)
        scales.append(scale)
        if scale > 1:
            psnrs.append(psnr(full, reduced))
    return {"images": len(files),
            "size": f"{header.width}×{header.height} (the last)",
            "median_ms": {k: statistics.median(v) for k, v in times.items()},
            "mean_ms": {k: statistics.fmean(v) for k, v in times.items()},
            "reduced_scales": {str(s): scales.count(s) for s in sorted(set(scales))},
            "psnr_db": {"images": len(psnrs),
                        "median": statistics.median(psnrs) if psnrs else None,
                        "min": min(psnrs) if psnrs else None}}


def markdown(doc: dict) -> str:
    lines = ["# Where a tensor loader worker's time goes, per JPEG photo (issue 24)", "",
             f"- command: `{doc['command']}`", f"- device: {doc['device']}",
             f"- date: {doc['date']}", f"- commit: {doc['commit']}", "",
             "CPU ms per image, one thread (mean over the images; median in brackets):", "",
             "| set | images | decode (Pillow) | header | crop_resize full | crop_resize reduced "
             "| resize only |", "|---|---|---|---|---|---|---|"]
    for name, s in doc["sets"].items():
        cols = [f"{s['mean_ms'][k]:.2f} ({s['median_ms'][k]:.2f})" for k in
                ("decode", "header", "crop_resize_full", "crop_resize_reduced", "resize_only")]
        lines.append(f"| {name} | {s['images']} | " + " | ".join(cols) + " |")
    lines += ["", "`reduced` against `full`, same box (PSNR, dB, peak 255; only where `reduced` "
              "decoded at a smaller scale):", "", "| set | scales drawn (scale: images) | "
              "reduced images | PSNR median | PSNR min |", "|---|---|---|---|---|"]
    for name, s in doc["sets"].items():
        p = s["psnr_db"]
        lines.append(f"| {name} | {s['reduced_scales']} | {p['images']} | {_db(p['median'])} | "
                     f"{_db(p['min'])} |")
    return "\n".join(lines) + "\n"


def _db(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=Path("data/photos"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sets", default="imagenet,phone")
    ap.add_argument("--images", type=int, default=200, help="photos per set")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    doc = {"command": shlex.join(["python", *sys.argv]),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "device": f"{device()}, torch {torch.__version__}", "commit": commit(), "sets": {}}
    for name in args.sets.split(","):
        doc["sets"][name] = one_set(args.photos / name, args.images, args.seed)
        print(name, json.dumps(doc["sets"][name]["mean_ms"]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
