"""JPEG photos at 224 pixels: our loaders against timm's and the decode floor (issue 24).

One process, alternating rounds, medians. With the DeiT recipes' augmentation (RRC 0.08-1,
flip, RandAugment rand-m9-mstd0.5-inc1, pixel erasing 0.25, mixup 0.8 / cutmix 1.0; the
recipe's `augment` section), batch 128 and 2 loader workers by default, on each photo set
that `benchmarks/photo_sets.py` builds (`make photos`: `data/photos/{imagenet,phone}`):

1. `loader`, each arm timed over the same number of batches (`--batches`, `--phone-batches`
   on the phone-shaped set; as many images for the decode arms):
   - `decode_pil`: the floor, in this process, no augmentation: Pillow opens and decodes
     every file whole (`convert("RGB")`); `decode_tv`: the same with torchvision's
     `read_file` + `decode_jpeg` (libjpeg-turbo both);
   - `timm`: timm's own loader on the same folder, as timm's train.py builds it:
     `timm.data.create_dataset` + `create_loader` with the recipe's augmentation, its
     prefetcher (normalisation and erasing on the batch) and `FastCollateMixup`;
   - `pil`: our loader as the training loop builds it (`data.pipeline: pil`): finished
     batches, mixed, on the device (`distill speed --arms data`'s step);
   - `tensor_full`, `tensor_reduced`, `tensor_device` (`data.pipeline: tensor` with
     `data.decode: full | reduced | device`): each timed twice, the loader alone
     (`<arm>_loader`: the batches as the workers deliver them, uint8 crops and their
     parameters) and with the batched augmentation on the device (`<arm>`: finished
     batches, as `pil`). `tensor_device` decodes on the training device (for CUDA; not in
     the default arms).
   Each arm reports images/s (wall clock) and images per CPU-second: the images divided by
   the CPU time of this process and its loader workers while it ran (user + system, from
   /proc). The second is the "per core" figure: it does not depend on how many cores a
   busy machine left free, nor on pipeline bubbles (an idle worker spends no CPU).
2. `loop`: one training epoch of the recipe's DeiT-Ti (`none` loss) on the ImageNet-shaped
   set, through `distill train`'s loop (`pil` and `tensor`), against `distill speed`'s
   `none` step (the same recipe, batch and device; `distill speed` times the student with
   the distillation token, one token more than the loop's class-token DeiT-Ti).
3. `cache`: `distill cache build` (`store: hard`) with a 224² `timm:resnet18` teacher
   (pretrained=False: random weights time the same) against that teacher's pure inference
   on finished batches held in memory, on the ImageNet-shaped set.

Then it prints the issue's targets with the figures and, where one is not met, by how
much; `results.json` (every round, with the command, device, date and commit) and
`results.md` (the tables) go to --out, rewritten after each part.

    python benchmarks/jpeg_loader.py --photos data/photos --out benchmarks/results/jpeg-loader-cpu
    python benchmarks/jpeg_loader.py --photos data/photos --out /tmp/jl --rounds 1 --batches 2 \
        --batch-size 8 --loop-images 16 --cache-images 16     # a smoke run

An arm that cannot run (a recipe field this checkout does not have, a library missing) is
reported as skipped with its one-line reason; the others run.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.procstat import tree_cpu  # noqa: E402
from distill.errors import DistillError  # noqa: E402
from distill.recipe import load_recipe  # noqa: E402

SETS = ("imagenet", "phone")
DECODE_ARMS = ("decode_pil", "decode_tv")
LOADER_ARMS = ("timm", "pil")
TENSOR_ARMS = {"tensor_full": "full", "tensor_reduced": "reduced", "tensor_device": "device"}
DEFAULT_ARMS = "decode_pil,decode_tv,timm,pil,tensor_full,tensor_reduced"

# The targets: (what, target text, figure key, threshold). A loader figure is
# "<set>.<arm>/<decode|timm>": the arm's images per CPU-second ÷ the decode floor's (the
# faster of Pillow and torchvision) or ÷ timm's loader's; the tensor arms' targets take the
# loader alone (the workers' work: the rest is the device's); "cache.<pipeline>" is the
# build ÷ pure inference, "loop.<pipeline>" the training loop ÷ the step.
TARGETS = (
    ("ImageNet-shaped, tensor path with `full` decode, per core",
     "≥ 0.8× the decode-only rate", "imagenet.tensor_full_loader/decode", 0.8),
    ("", "≥ 1.3× timm's loader", "imagenet.tensor_full_loader/timm", 1.3),
    ("ImageNet-shaped, `pil` path (the reference users keep)", "≥ 1.0× timm's loader",
     "imagenet.pil/timm", 1.0),
    ("Phone-shaped, tensor path with `reduced` decode, per core", "≥ 4× timm's loader",
     "phone.tensor_reduced_loader/timm", 4.0),
    ("Cache build, resnet18 teacher at 224², 2 cores", "≥ 0.9× the teacher's pure inference",
     "cache.tensor", 0.9),
    ("DeiT-Ti at 224 on CPU, training loop ÷ step", "≥ 0.95", "loop.tensor", 0.95),
)


def timed(step: Callable[[], int], count: int, warmup: int) -> dict[str, float]:
    """Run `step` (it returns the images it made) `warmup` times untimed, then `count` times;
    images, wall and CPU seconds of the timed part and the two rates."""
    for _ in range(warmup):
        step()
    cpu0, t0 = tree_cpu(), time.perf_counter()
    images = sum(step() for _ in range(count))
    wall, cpu = time.perf_counter() - t0, tree_cpu() - cpu0
    return {"images": images, "wall_s": wall, "cpu_s": cpu, "images_per_s": images / wall,
            "images_per_cpu_s": images / cpu if cpu > 0 else None}  # None: under a clock tick


# -- the arms ------------------------------------------------------------------------------
def files_of(root: Path) -> list[Path]:
    return sorted(p for p in (root / "train").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))


def decode_step(kind: str, files: list[Path], per_step: int) -> Callable[[], int]:
    """Decode `per_step` files per call, cycling through `files`, in this process."""
    state = {"i": 0}
    if kind == "decode_pil":
        from PIL import Image

        def one(path: Path) -> None:
            with Image.open(path) as img:
                img.convert("RGB")  # decodes it all (a JPEG of mode RGB: load and copy)
    else:
        from torchvision.io import ImageReadMode, decode_jpeg, read_file

        def one(path: Path) -> None:
            decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)

    def step() -> int:
        for _ in range(per_step):
            one(files[state["i"] % len(files)])
            state["i"] += 1
        return per_step

    return step


def forever(make: Callable[[], Any]) -> Iterator[Any]:
    """The batches of `make()` (one epoch's iterator), epoch after epoch."""
    while True:
        yield from make()


def timm_step(recipe: Any, root: Path, device: torch.device) -> Callable[[], int]:
    """timm's loader as its train.py builds it for this augmentation (prefetcher on: the
    workers ship uint8 and mix with `FastCollateMixup`; normalisation and erasing on the
    batch, on `device`)."""
    from timm.data import FastCollateMixup, create_dataset, create_loader

    d, a = recipe.data, recipe.augment
    dataset = create_dataset("", root=str(root), split="train", is_training=True)
    mix = None
    if a.mixup > 0 or a.cutmix > 0:
        mix = FastCollateMixup(mixup_alpha=a.mixup, cutmix_alpha=a.cutmix, prob=a.mixup_prob,
                               switch_prob=a.switch_prob, mode=a.mixup_mode,
                               label_smoothing=recipe.loss.smoothing, num_classes=d.num_classes)
    loader = create_loader(
        dataset, input_size=(d.in_chans, d.img_size, d.img_size), batch_size=d.batch_size,
        is_training=True, use_prefetcher=True, re_prob=a.re_prob, re_mode=a.re_mode,
        re_count=a.re_count, scale=tuple(a.scale), ratio=tuple(a.ratio), hflip=a.hflip,
        vflip=a.vflip, color_jitter=a.color_jitter or None, auto_augment=a.auto_augment,
        interpolation=d.interpolation, mean=tuple(d.mean), std=tuple(d.std),
        num_workers=d.num_workers, collate_fn=mix, pin_memory=device.type == "cuda",
        device=device, persistent_workers=True)
    batches = forever(lambda: iter(loader))

    def step() -> int:
        x, _ = next(batches)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return len(x)

    step.loader = loader  # type: ignore[attr-defined]  # kept alive with the step
    return step


def our_step(recipe: Any, loader_only: bool) -> Callable[[], int]:
    """Our training loader: finished batches on the device (`distill speed --arms data`'s
    step), or with `loader_only` the batches as the workers deliver them."""
    from distill.bench.speed import _data_step
    from distill.data import build_data
    from distill.engine import resolve_runtime

    rt = resolve_runtime(recipe)
    size = recipe.data.batch_size
    if not loader_only:
        data_step = _data_step(recipe, rt)

        def finished() -> int:
            data_step()
            if rt.device.type == "cuda":
                torch.cuda.synchronize(rt.device)
            return size

        return finished
    data = build_data(recipe.data, recipe.augment, recipe.run.seed,
                      pin_memory=rt.device.type == "cuda")
    epoch = {"e": 0}

    def epochs() -> Iterator[Any]:
        while True:
            yield from data.epoch(epoch["e"])
            epoch["e"] += 1

    batches = epochs()

    def delivered() -> int:
        next(batches)
        return size

    delivered.data = data  # type: ignore[attr-defined]
    return delivered


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.classes = {s: len([p for p in (args.photos / s / "train").iterdir() if p.is_dir()])
                        for s in args.photo_sets}

    def batches(self, photo_set: str) -> tuple[int, int]:
        """(timed, warm-up) batches of a loader arm on `photo_set` (the phone-shaped set's
        12 MP images take about 40× as long each)."""
        a = self.args
        if photo_set == "phone":
            return a.phone_batches, min(a.warmup, 1)
        return a.batches, a.warmup

    def batch_size(self, photo_set: str) -> int:
        a = self.args
        return a.phone_batch_size if photo_set == "phone" and a.phone_batch_size else a.batch_size

    def recipe(self, root: Path, classes: int, pipeline: str, decode: str | None = None,
               extra: tuple[str, ...] = (), path: str | None = None, **kw: Any) -> Any:
        a = self.args
        sets = [f"data.root={root}", f"data.num_classes={classes}",
                f"data.batch_size={self.batch_size(root.name)}", f"data.num_workers={a.workers}",
                "augment.repeated_aug=1", f"data.pipeline={pipeline}",
                *([f"data.decode={decode}"] if decode else []),
                *([f"run.device={a.device}"] if a.device else []), *extra, *a.overrides]
        return load_recipe(ROOT / (path or a.recipe), sets, **kw)

    def arm(self, name: str, photo_set: str) -> Callable[[], int]:
        root = self.args.photos / photo_set
        if name in DECODE_ARMS:
            files = files_of(root)
            if not files:
                raise DistillError(f"{root / 'train'}: no JPEG files")
            return decode_step(name, files, self.batch_size(photo_set))
        if name == "timm":
            from distill.engine import resolve_runtime

            r = self.recipe(root, self.classes[photo_set], "pil")
            return timm_step(r, root, resolve_runtime(r).device)
        if name == "pil":
            return our_step(self.recipe(root, self.classes[photo_set], "pil"), False)
        base = name.removesuffix("_loader")
        r = self.recipe(root, self.classes[photo_set], "tensor", TENSOR_ARMS[base])
        return our_step(r, name.endswith("_loader"))


def arm_names(arms: list[str]) -> list[str]:
    out: list[str] = []
    for arm in arms:
        out += [f"{arm}_loader", arm] if arm in TENSOR_ARMS else [arm]
    return out


def loader_part(bench: Bench, save: Callable[[str, dict], None]) -> dict:
    a = bench.args
    names = arm_names(a.arms)
    runs: dict[str, dict[str, list[dict]]] = {s: {n: [] for n in names} for s in a.photo_sets}
    skipped: dict[str, dict[str, str]] = {s: {} for s in a.photo_sets}
    for r in range(a.rounds):
        for photo_set in a.photo_sets:
            for name in (names if r % 2 == 0 else names[::-1]):
                if name in skipped[photo_set]:
                    continue
                try:
                    step = bench.arm(name, photo_set)
                    got = timed(step, *bench.batches(photo_set))
                except (DistillError, ImportError, RuntimeError) as exc:
                    skipped[photo_set][name] = " ".join(str(exc).split())[:300]
                    print(f"loader {photo_set} {name}: skipped ({skipped[photo_set][name]})",
                          flush=True)
                    continue
                finally:
                    step = None
                    gc.collect()  # the arm's workers go before the next arm starts
                runs[photo_set][name].append(got)
                print(f"loader round {r} {photo_set} {name}: {got['images_per_s']:.1f} img/s, "
                      f"{fmt(got['images_per_cpu_s'])} img/CPU-s", flush=True)
    figures: dict[str, Any] = {"runs": runs, "skipped": skipped, "median": {}}
    for photo_set, arms in runs.items():
        figures["median"][photo_set] = {
            name: {k: median([g[k] for g in got]) for k in ("images_per_s", "images_per_cpu_s")}
            for name, got in arms.items() if got}
    save("loader", figures)
    return figures


def median(values: list[float | None]) -> float | None:
    """The median of the values measured (None where none was)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def loop_part(bench: Bench, work: Path, save: Callable[[str, dict], None]) -> dict:
    from distill.bench.speed import measure_speed
    from distill.engine import train
    from distill.engine.report import Reporter

    a = bench.args
    root, classes = a.photos / "imagenet", bench.classes["imagenet"]
    limit = [f"data.train_limit={a.loop_images}", "schedule.epochs=1",
             "schedule.warmup_epochs=0", f"data.val_limit={a.batch_size}"]
    timed_recipe = bench.recipe(root, classes, "pil", extra=(*limit, *random_teacher(classes)),
                                teacher=a.teacher)
    step = measure_speed(timed_recipe, arms=("none",), steps=a.step_steps, warmup=1,
                         repeats=a.rounds)
    step_rate = step["arms"]["none"]["images_per_s"]
    print(f"loop: distill speed's none step {step_rate:.1f} img/s", flush=True)
    loop: dict[str, list[float]] = {p: [] for p in a.loop_pipelines}
    for r in range(a.rounds):
        for p in (a.loop_pipelines if r % 2 == 0 else a.loop_pipelines[::-1]):
            rec = bench.recipe(root, classes, p, extra=(*limit, f"run.out={work / f'loop-{p}-{r}'}"))
            loop[p].append(train(rec, reporter=Reporter()).summary["train_images_per_s"])
            print(f"loop round {r} {p}: {loop[p][-1]:.1f} img/s", flush=True)
    med = {p: statistics.median(v) for p, v in loop.items()}
    figures = {"step_images_per_s": step_rate, "step_student": step["student"],
               "loop_student": timed_recipe.student.name, "train_images_per_s": loop,
               "median": med, "loop_vs_step": {p: m / step_rate for p, m in med.items()}}
    save("loop", figures)
    return figures


def random_teacher(classes: int) -> tuple[str, ...]:
    """A randomly initialised teacher for the photo sets' classes (speed only)."""
    return "teacher.pretrained=false", f"teacher.kwargs.num_classes={classes}"


def pure_inference(recipe: Any, batches: int) -> float:
    """Images/s of the live teacher on finished (augmented, mixed-free) batches in memory."""
    from distill.data import augment_batch, build_data
    from distill.engine import build_teacher_for, resolve_runtime
    from distill.engine.runtime import autocast

    rt = resolve_runtime(recipe)
    teacher = build_teacher_for(recipe, rt, live=True)
    data = build_data(recipe.data, recipe.augment, recipe.run.seed)
    xs = []
    for e in range(batches + 1):  # one epoch may hold fewer batches: take from the next
        for batch in data.epoch(e):
            xs.append(augment_batch(batch.to(rt.device), data.train.augment, rt.device).images)
            if len(xs) == batches + 1:
                break
        if len(xs) == batches + 1:
            break
    with torch.inference_mode(), autocast(rt.device, rt.dtype):
        teacher(xs[0])  # warm-up
        if rt.device.type == "cuda":
            torch.cuda.synchronize(rt.device)
        t0 = time.perf_counter()
        for x in xs[1:]:
            teacher(x)
        if rt.device.type == "cuda":
            torch.cuda.synchronize(rt.device)
    return sum(len(x) for x in xs[1:]) / (time.perf_counter() - t0)


def cache_part(bench: Bench, work: Path, save: Callable[[str, dict], None]) -> dict:
    from distill.engine.cache_build import build_cache
    from distill.engine.report import Reporter

    a = bench.args
    root, classes = a.photos / "imagenet", bench.classes["imagenet"]
    extra = (f"data.train_limit={a.cache_images}", "schedule.epochs=1", "schedule.warmup_epochs=0",
             *random_teacher(classes), f"data.val_limit={a.batch_size}")
    runs: dict[str, list[dict]] = {p: [] for p in a.cache_pipelines}
    for r in range(a.rounds):
        for p in (a.cache_pipelines if r % 2 == 0 else a.cache_pipelines[::-1]):
            rec = bench.recipe(root, classes, p, extra=extra, path=a.cache_recipe,
                               teacher=a.teacher)
            pure = pure_inference(rec, max(1, a.cache_images // a.batch_size))
            built = build_cache(rec, work / f"cache-{p}-{r}", store="hard", evaluate=False,
                                reporter=Reporter())
            runs[p].append({"pure_inference_images_per_s": pure,
                            "build_images_per_s": built.images_per_s,
                            "build_vs_pure": built.images_per_s / pure, "images": built.images,
                            "wait_seconds": built.wait_seconds})
            print(f"cache round {r} {p}: build {built.images_per_s:.1f} img/s, pure "
                  f"{pure:.1f} img/s", flush=True)
    med = {p: {k: statistics.median(g[k] for g in v) for k in v[0]} for p, v in runs.items()}
    figures = {"teacher": a.teacher, "runs": runs, "median": med}
    save("cache", figures)
    return figures


# -- the report ----------------------------------------------------------------------------
def ratios(res: dict) -> dict[str, float]:
    """The figures the targets name (per-core rates, from the medians)."""
    out: dict[str, float] = {}
    for photo_set, arms in res.get("loader", {}).get("median", {}).items():
        per_core = {k: v["images_per_cpu_s"] for k, v in arms.items()
                    if v["images_per_cpu_s"] is not None}
        floor = max((per_core[k] for k in DECODE_ARMS if k in per_core), default=None)
        for name, rate in per_core.items():
            if floor:
                out[f"{photo_set}.{name}/decode"] = rate / floor
            if "timm" in per_core:
                out[f"{photo_set}.{name}/timm"] = rate / per_core["timm"]
    for p, v in res.get("cache", {}).get("median", {}).items():
        out[f"cache.{p}"] = v["build_vs_pure"]
    for p, v in res.get("loop", {}).get("loop_vs_step", {}).items():
        out[f"loop.{p}"] = v
    return out


def targets_table(res: dict) -> list[str]:
    got = ratios(res)
    lines = ["| what | target | measured (figure) | met |", "|---|---|---|---|"]
    for what, target, key, threshold in TARGETS:
        value = got.get(key)
        if value is None:
            measured, met = "not measured", "–"
        else:
            measured = f"{value:.2f} (`{key}`)"
            met = "yes" if value >= threshold else \
                f"no: {threshold / value:.2f}× short ({100 * (1 - value / threshold):.0f}% below)"
        lines.append(f"| {what} | {target} | {measured} | {met} |")
    return lines


def fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def loader_table(res: dict) -> list[str]:
    med = res.get("loader", {}).get("median", {})
    if not med:
        return []
    lines = ["| set | arm | images/s | images per CPU-second (per core) | ÷ decode floor | ÷ timm |",
             "|---|---|---|---|---|---|"]
    got = ratios(res)
    for photo_set, arms in med.items():
        for name, v in arms.items():
            d, t = got.get(f"{photo_set}.{name}/decode"), got.get(f"{photo_set}.{name}/timm")
            lines.append(f"| {photo_set} | {name} | {v['images_per_s']:.1f} | "
                         f"{fmt(v['images_per_cpu_s'])} | {fmt(d, 2)} | {fmt(t, 2)} |")
    for photo_set, why in res["loader"].get("skipped", {}).items():
        for name, reason in why.items():
            lines.append(f"| {photo_set} | {name} | skipped: {reason} | | | |")
    return lines


def provenance(part: dict) -> list[str]:
    """Where a part's figures come from (a part may be older than the latest run)."""
    if "command" not in part:
        return []
    return [f"`{part['command']}` ({part['device']}; {part['date']}; commit {part['commit']})",
            ""]


def markdown(res: dict) -> str:
    s = res["setting"]
    head = [f"# {__doc__.splitlines()[0]}", "",
            f"- command: `{res['command']}`", f"- device: {s['device']}",
            f"- date: {res['date']}", f"- commit: {res['commit']}", "",
            "## Targets (issue 24)", "", *targets_table(res), ""]
    if res.get("loader"):
        head += ["## Loaders", "", *provenance(res["loader"]), *loader_table(res), ""]
    if res.get("loop"):
        lp = res["loop"]
        head += ["## Training loop ÷ step (DeiT-Ti, ImageNet-shaped set)", "", *provenance(lp),
                 f"distill speed's `none` step ({lp['step_student']}): "
                 f"{lp['step_images_per_s']:.1f} images/s", "",
                 "| pipeline | loop images/s | ÷ step |", "|---|---|---|",
                 *[f"| {p} | {m:.1f} | {lp['loop_vs_step'][p]:.2f} |"
                   for p, m in lp["median"].items()], ""]
    if res.get("cache"):
        c = res["cache"]
        head += [f"## Cache build ÷ pure inference ({c['teacher']}, 224²)", "", *provenance(c),
                 "| pipeline | build images/s | pure inference images/s | ÷ |", "|---|---|---|---|",
                 *[f"| {p} | {m['build_images_per_s']:.1f} | "
                   f"{m['pure_inference_images_per_s']:.1f} | {m['build_vs_pure']:.2f} |"
                   for p, m in c["median"].items()], ""]
    return "\n".join(head)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def device_text(args: argparse.Namespace) -> str:
    from distill.engine.runtime import cpu_name

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{cpu_name()}, {cores} cores"
    want = args.device or "auto"
    if want != "cpu" and torch.cuda.is_available():
        text = f"{torch.cuda.get_device_name()}, " + text
    return f"{text}, torch {torch.__version__}, Python {platform.python_version()}"


def commit() -> str:
    def git(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)

    head = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    return head + ("" if git("diff", "--quiet", "HEAD").returncode == 0
                   else " (+ uncommitted changes)")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=Path("data/photos"),
                    help="The photo sets' folder (benchmarks/photo_sets.py --out)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--arms", default=DEFAULT_ARMS,
                    help=f"Loader arms, of {', '.join((*DECODE_ARMS, *LOADER_ARMS, *TENSOR_ARMS))}")
    ap.add_argument("--parts", default="loader,loop,cache")
    ap.add_argument("--recipe", default="recipes/imagenet/deit_tiny_none.yaml",
                    help="Data, augmentation and student of the loader and loop parts")
    ap.add_argument("--cache-recipe", default="recipes/imagenet/deit_tiny_token.yaml")
    ap.add_argument("--teacher", default="timm:resnet18",
                    help="The cache part's teacher (and the live teacher `distill speed` needs)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=8, help="Timed batches per loader arm")
    ap.add_argument("--phone-batches", type=int, default=2,
                    help="Timed batches per loader arm on the phone-shaped set (after at most "
                         "one warm-up batch)")
    ap.add_argument("--warmup", type=int, default=2, help="Untimed batches first (workers start)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--phone-batch-size", type=int, default=None,
                    help="The phone-shaped set's batch (default: --batch-size); at most its "
                         "training images")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default=None, help="run.device (default: the recipe's, auto)")
    ap.add_argument("--loop-images", type=int, default=512,
                    help="Training images per loop epoch (data.train_limit)")
    ap.add_argument("--loop-pipelines", default="tensor,pil")
    ap.add_argument("--step-steps", type=int, default=3, help="Steps per timed block of the step")
    ap.add_argument("--cache-images", type=int, default=512)
    ap.add_argument("--cache-pipelines", default="tensor,pil")
    ap.add_argument("--set", action="append", default=[], dest="overrides",
                    help="More recipe overrides, for every part")
    args = ap.parse_args(argv)
    args.arms = [x for x in args.arms.split(",") if x]
    args.photo_sets = [x for x in args.sets.split(",") if x]
    args.parts = set(args.parts.split(","))
    args.loop_pipelines = [p for p in args.loop_pipelines.split(",") if p]
    args.cache_pipelines = [p for p in args.cache_pipelines.split(",") if p]
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    known = (*DECODE_ARMS, *LOADER_ARMS, *TENSOR_ARMS)
    for arm in args.arms:
        if arm not in known:
            ap_error(f"--arms: unknown arm '{arm}' (arms: {', '.join(known)})")
    for part in args.parts:
        if part not in ("loader", "loop", "cache"):
            ap_error(f"--parts: unknown part '{part}' (parts: loader, loop, cache)")
    missing = [s for s in args.photo_sets if not (args.photos / s / "train").is_dir()]
    if missing:
        ap_error(f"--photos: '{args.photos}' has no {missing[0]}/train folder (build the photo "
                 "sets with `make photos` or benchmarks/photo_sets.py --out DIR)")
    for name in ("rounds", "batches", "phone_batches", "batch_size", "workers", "loop_images",
                 "cache_images"):
        if getattr(args, name) < (0 if name == "workers" else 1):
            ap_error(f"--{name.replace('_', '-')}: must be positive, got {getattr(args, name)}")
    bench = Bench(args)
    argv = sys.argv[1:] if argv is None else argv
    done = args.out / "results.json"
    try:  # the parts not run now keep their earlier figures (each with its own command)
        earlier = json.loads(done.read_text()) if done.is_file() else {}
    except (OSError, ValueError):
        ap_error(f"--out: '{done}' exists but is not this benchmark's results; choose another "
                 "folder")
    if earlier and "ratios" not in earlier:
        ap_error(f"--out: '{done}' is not this benchmark's results; choose another folder")
    run = {"command": "python benchmarks/jpeg_loader.py " + " ".join(shlex.quote(x) for x in argv),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit()}
    photo_facts = args.photos / "photo_sets.json"
    setting = {"device": device_text(args), "batch_size": args.batch_size,
               "phone_batch_size": args.phone_batch_size or args.batch_size,
               "workers": args.workers, "recipe": args.recipe, "rounds": args.rounds,
               "batches": args.batches, "phone_batches": args.phone_batches,
               "warmup": args.warmup, "torch_threads": torch.get_num_threads(),
               "photo_sets": json.loads(photo_facts.read_text()) if photo_facts.is_file()
               else None}
    res: dict[str, Any] = {**earlier, **run, "setting": setting}
    args.out.mkdir(parents=True, exist_ok=True)

    def save(part: str, figures: dict) -> None:  # after each part: a crash keeps the rest
        res[part] = figures | run | {"device": res["setting"]["device"]}
        res["ratios"] = ratios(res)
        write_atomic(args.out / "results.json", json.dumps(res, indent=2) + "\n")
        write_atomic(args.out / "results.md", markdown(res) + "\n")

    with tempfile.TemporaryDirectory(prefix="jpeg-loader-") as tmp:
        if "loader" in args.parts:
            loader_part(bench, save)
        if "loop" in args.parts:
            loop_part(bench, Path(tmp), save)
        if "cache" in args.parts:
            cache_part(bench, Path(tmp), save)
    print(markdown(res))
    return res


def ap_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
