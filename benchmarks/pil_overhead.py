"""CPU time per image that the `pil` loader spends beyond timm's PIL steps, before and after
issue 24's cut, and timm's own loader's counterparts, in one process (CPU time, so a busy
machine inflates it less than wall time; one thread).

Each line times, on the same 224-pixel images, the old and the new way of one step our
loader takes around timm's transform (the images are the same bit for bit:
`tests/test_pil_identity.py`), and what timm's loader does in its place:

- per sample: to tensor + normalise (`to_tensor` and `Normalize` then, the one-buffer slot
  now), the seeds (`reseed(derive_seed(...))`), random erasing; timm: `MaybePILToTensor`;
- per batch, shown per image: the batch made (stacked, then copied to shared memory to
  leave a worker, then; nothing now) and mixing (mixup: a flipped copy of the batch then,
  a few pairs at a time now; cutmix: the whole batch flipped then, the box now); timm:
  `FastCollateMixup` (uint8) and its prefetcher's normalisation and erasing of the batch.

Then the whole loader, finished batches through one worker (`benchmarks/jpeg_loader.py`'s
`pil` and `timm` arms), images per CPU-second, if --photos is given.

    python benchmarks/pil_overhead.py --photos data/photos/imagenet
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.data.mixing import _blend_flipped  # noqa: E402
from distill.data.pil_batch import batch_buffer, plan_of  # noqa: E402
from distill.data.replay import derive_seed, preserved_rngs, reseed  # noqa: E402


def cpu_us(fn, repeat: int, rounds: int = 5) -> float:
    """Median over `rounds` of the CPU µs per call of `fn`, `repeat` calls a round."""
    fn()
    got = []
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(repeat):
            fn()
        got.append(1e6 * (time.process_time() - t0) / repeat)
    return statistics.median(got)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--photos", type=Path, default=None,
                    help="A photo set (e.g. data/photos/imagenet): also time the whole loaders")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from PIL import Image
    from timm.data import FastCollateMixup, create_transform
    from timm.data.random_erasing import RandomErasing
    from timm.data.transforms import MaybePILToTensor

    s, b = args.size, args.batch
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (s, s, 3), dtype=np.uint8))
    transform = create_transform(s, is_training=True, auto_augment="rand-m9-mstd0.5-inc1",
                                 re_prob=0.25, re_mode="pixel", interpolation="bicubic")
    plan = plan_of(transform)
    to_tensor, normalize = transform.transforms[-3], transform.transforms[-2]
    slots = batch_buffer((b, 3, s, s), torch.float32)
    # (what, before, after (None: the same), timm's); before None: a step ours has not
    rows: list[tuple[str, float | None, float | str | None, str]] = []

    old = cpu_us(lambda: normalize(to_tensor(img)), 200)
    untailed = dataclasses.replace(plan, tail=())  # erasing timed apart below
    new = cpu_us(lambda: untailed.finish(img, slots[3]), 200)
    rows.append(("to tensor + normalise, per sample", old, new,
                 f"MaybePILToTensor {cpu_us(lambda: MaybePILToTensor()(img), 200):.0f}"))
    rows.append(("seeds, per sample (derive_seed + random, NumPy, torch)",
                 cpu_us(lambda: reseed(derive_seed(0, 3, 1234, 0)), 2000), None, "none"))

    def keep():
        with preserved_rngs():
            pass

    rows.append(("generators saved and restored, per batch ÷ batch", cpu_us(keep, 200) / b,
                 None, "none"))
    erase = RandomErasing(0.25, mode="pixel", device="cpu")
    one = torch.randn(3, s, s)
    batch = torch.randn(b, 3, s, s)
    rows.append(("random erasing, per sample (timm's, on the batch)",
                 cpu_us(lambda: erase(one), 400), None, f"{cpu_us(lambda: erase(batch), 10) / b:.0f}"))
    xs = [torch.randn(3, s, s) for _ in range(b)]
    rows.append(("the batch: stacked, then copied to shared memory (now: made in place)",
                 cpu_us(lambda: torch.stack(xs).share_memory_(), 5, 3) / b, 0.0,
                 "fast_collate: in the collate below"))

    def mixup_old():
        x = batch.clone()
        flipped = x.flip(0).mul_(1.0 - 0.3)
        x.mul_(0.3).add_(flipped)

    def mixup_new():
        _blend_flipped(batch.clone(), 0.3)

    clone = cpu_us(lambda: batch.clone(), 5, 3)
    items = [(torch.randint(0, 256, (3, s, s), dtype=torch.uint8), i % 10) for i in range(b)]
    timm_mix = FastCollateMixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1,
                                num_classes=10)
    rows.append(("mixup of the batch, ÷ batch", (cpu_us(mixup_old, 5, 3) - clone) / b,
                 (cpu_us(mixup_new, 5, 3) - clone) / b,
                 f"FastCollateMixup (collate + mix, uint8) {cpu_us(lambda: timm_mix(items), 5, 3) / b:.0f}"))

    def cut_old():
        batch[:, :, 50:150, 40:160] = batch.flip(0)[:, :, 50:150, 40:160]

    def cut_new():
        batch[:, :, 50:150, 40:160] = batch[:, :, 50:150, 40:160].flip(0)

    rows.append(("cutmix of the batch (a 100×120 box), ÷ batch", cpu_us(cut_old, 5, 3) / b,
                 cpu_us(cut_new, 5, 3) / b, ""))
    u = torch.stack([x for x, _ in items])
    mean = torch.tensor([x * 255 for x in (0.485, 0.456, 0.406)]).view(1, 3, 1, 1)
    std = torch.tensor([x * 255 for x in (0.229, 0.224, 0.225)]).view(1, 3, 1, 1)
    rows.append(("timm's prefetcher: the uint8 batch to float, normalised, ÷ batch", None, "–",
                 f"{cpu_us(lambda: u.to(torch.float32).sub_(mean).div_(std), 5, 3) / b:.0f}"))
    print(f"CPU µs per image at {s}², batch {b}, one thread\n")
    print("| step | before | after | timm's loader |\n|---|---|---|---|")
    for what, before, after, theirs in rows:
        old = "–" if before is None else f"{before:.0f}"
        new = "same" if after is None else after if isinstance(after, str) else f"{after:.0f}"
        print(f"| {what} | {old} | {new} | {theirs} |")
    if args.photos is not None:
        whole_loaders(args.photos, min(b, 64))


def whole_loaders(photos: Path, batch: int) -> None:
    """`benchmarks/jpeg_loader.py`'s pil and timm arms through one worker, 3 rounds."""
    import importlib.util
    import tempfile

    spec = importlib.util.spec_from_file_location("jpeg_loader", ROOT / "benchmarks/jpeg_loader.py")
    jl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(jl)  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as out:
        args = jl.parse(["--photos", str(photos.parent), "--out", out, "--sets", photos.name,
                         "--arms", "timm,pil", "--workers", "1", "--batch-size", str(batch),
                         "--batches", "8", "--rounds", "3"])
        figures = jl.loader_part(jl.Bench(args), lambda part, figures: None)
    print("\nWhole loaders, finished batches through one worker, CPU µs per image (median of 3):")
    for name, v in figures["median"][photos.name].items():
        print(f"  {name}: {1e6 / v['images_per_cpu_s']:.0f}")

if __name__ == "__main__":
    main()
