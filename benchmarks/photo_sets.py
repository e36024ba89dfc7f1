"""Build the two benchmark photo sets from real photographs in Debian's wallpaper packages.

    make photos                     # installs the packages with apt, then runs this
    python benchmarks/photo_sets.py --out data/photos [--seed 0] [--imagenet 2000] [--phone 200]

Nothing is downloaded at run time except the Debian packages themselves. The sources are the
photographs (not the drawings or renders) of `mate-backgrounds`, `plasma-workspace-wallpapers`
and `lomiri-wallpapers-20.04` (pulled in by `lomiri-wallpapers`), 25 of them, chosen by eye
from a contact sheet of every image of those packages and `ukui-wallpapers` (none of whose
are photos), on 2026-12-07: the list is `SOURCES` below. Two sets come out, each an
ImageNet-style tree (`train/<class>/`, `val/<class>/`) of JPEGs at quality 90 (4:2:0),
with 10 class folders whose labels are arbitrary: these sets measure speed, not accuracy.

- **imagenet/**: crops at ImageNet's usual sizes. Most ImageNet training images are about
  500×375 (landscape) or 375×500 (portrait) after Flickr's downscaling, so a crop of a random
  region (a quarter to all of the largest box of that shape in the photo) is resized with
  Lanczos to 500×375 (3 of 4) or 375×500, as a downscaled photo would be.
- **phone/**: images of 4000×3000 (12 MP, a phone camera's usual size; 1 in 4 is portrait,
  3000×4000). No source is that large, and upscaling would leave JPEGs far smoother (so
  faster to decode) than a phone's, so each is a 2×2 mosaic of four crops of 2000×1500 taken
  at the photos' native resolution: every pixel is photographic detail, none is interpolated.

Files are written atomically (temporary file, fsync, rename) and a run that was stopped
resumes: an image already there is kept. The output is a function of `--seed` alone.
A file in the output tree that this script did not write is never touched: an image name
that is taken by a file of other content stops the run.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# (package, path): the photographs among the packages' images.
SOURCES = [
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/Aqua.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/Blinds.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/Dune.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/FreshFlower.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/Garden.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/GreenMeadow.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/LadyBird.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/RainDrops.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/Storm.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/TwoWings.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/Wood.jpg"),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/YellowFlower.jpg"),
    ("lomiri-wallpapers-20.04", "/usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg"),
    ("lomiri-wallpapers-20.04", "/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/Grey/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/Path/contents/images/2560x1600.jpg"),
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg"),
]
PACKAGES = sorted({pkg for pkg, _ in SOURCES})
CLASSES = 10
QUALITY = 90
VAL_PER_CLASS = {"imagenet": 10, "phone": 2}


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_sources(root: Path = Path("/")) -> list[Image.Image]:
    """The photographs, read from their packages' paths under `root` (a copy of them
    elsewhere keeps the same paths under its own root: benchmarks/gpu_check.sh --prepare)."""
    paths = [(pkg, root / path.lstrip("/")) for pkg, path in SOURCES]
    missing = [(pkg, path) for pkg, path in paths if not path.is_file()]
    if missing:
        pkgs = " ".join(sorted({pkg for pkg, _ in missing}))
        fail(f"{missing[0][1]}: not found; install the photos with `apt-get install {pkgs}` "
             f"(or `make photos`)")
    return [Image.open(path).convert("RGB") for _, path in paths]


def random_crop(rng: np.random.Generator, img: Image.Image, w: int, h: int,
                scale: tuple[float, float]) -> Image.Image:
    """A region of shape w:h, of `scale` (a fraction of the largest such box, by side) of it,
    at a random place; not resized."""
    big = min(img.width / w, img.height / h)
    s = big * rng.uniform(*scale)
    cw, ch = max(1, round(w * s)), max(1, round(h * s))
    left = int(rng.integers(0, img.width - cw + 1))
    top = int(rng.integers(0, img.height - ch + 1))
    return img.crop((left, top, left + cw, top + ch))


def imagenet_image(rng: np.random.Generator, sources: list[Image.Image]) -> Image.Image:
    w, h = (500, 375) if rng.random() < 0.75 else (375, 500)
    src = sources[int(rng.integers(len(sources)))]
    return random_crop(rng, src, w, h, (0.5, 1.0)).resize((w, h), Image.LANCZOS)


def phone_image(rng: np.random.Generator, sources: list[Image.Image]) -> Image.Image:
    w, h = (4000, 3000) if rng.random() < 0.75 else (3000, 4000)
    tw, th = w // 2, h // 2
    large = [s for s in sources if s.width >= tw and s.height >= th]
    out = Image.new("RGB", (w, h))
    for k in range(4):
        src = large[int(rng.integers(len(large)))]
        left = int(rng.integers(0, src.width - tw + 1))
        top = int(rng.integers(0, src.height - th + 1))
        out.paste(src.crop((left, top, left + tw, top + th)), ((k % 2) * tw, (k // 2) * th))
    return out


def jpeg_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=QUALITY, subsampling="4:2:0")
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def build(out: Path, kind: str, count: int, seed: int, sources: list[Image.Image]) -> dict:
    make = imagenet_image if kind == "imagenet" else phone_image
    val = VAL_PER_CLASS[kind] * CLASSES
    digest = hashlib.sha256()
    made = kept = 0
    for i in range(count + val):
        split, j = ("train", i) if i < count else ("val", i - count)
        # one generator per image: any image can be made again alone, in any order
        rng = np.random.default_rng([seed, 0 if kind == "imagenet" else 1, i])
        label = j % CLASSES
        path = out / kind / split / f"class_{label}" / f"{kind}_{split}_{j:05d}.jpg"
        data = jpeg_bytes(make(rng, sources))
        digest.update(data)
        if path.exists():
            if path.read_bytes() != data:
                fail(f"{path}: already there with other content; not overwritten (remove it "
                     f"or choose another --out)")
            kept += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        made += 1
    return {"train": count, "val": val, "made": made, "kept": kept, "sha256": digest.hexdigest()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("data/photos"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--imagenet", type=int, default=2000, help="training images of the ImageNet-shaped set")
    p.add_argument("--phone", type=int, default=200, help="training images of the phone-shaped set")
    p.add_argument("--sources-root", type=Path, default=Path("/"),
                   help="where the packages' files are (default /: installed)")
    args = p.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        fail(f"--out: '{args.out}' is a file, not a folder")
    sources = load_sources(args.sources_root)
    facts = {"seed": args.seed, "quality": QUALITY, "sources": [path for _, path in SOURCES],
             "packages": PACKAGES}
    for kind, count in (("imagenet", args.imagenet), ("phone", args.phone)):
        facts[kind] = build(args.out, kind, count, args.seed, sources)
        print(f"{args.out / kind}: {facts[kind]['train']} train + {facts[kind]['val']} val images "
              f"({facts[kind]['made']} written, {facts[kind]['kept']} already there)")
    write_atomic(args.out / "photo_sets.json", (json.dumps(facts, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
