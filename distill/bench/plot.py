"""`accuracy_vs_throughput.png`, like the paper's Figure 1, drawn with Pillow alone.

One marker per cell: top-1 against the student's inference throughput (images/s of the
model alone on an in-memory batch, `run.model_images_per_s`). The marker's shape is the
strategy, its colour the teacher; each teacher's own top-1 is a dashed line of its colour.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from distill.checkpoint import atomic_write_bytes

__all__ = ["accuracy_vs_throughput", "nice_ticks"]

_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
            (23, 190, 207), (140, 86, 75), (227, 119, 194)]
_GREY = (110, 110, 110)
_SHAPES = {"none": "circle", "soft": "square", "hard": "triangle", "token": "diamond"}


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round numbers covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _marker(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float,
            colour: tuple[int, int, int]) -> None:
    box = [x - r, y - r, x + r, y + r]
    if shape == "square":
        draw.rectangle(box, fill=colour, outline=(0, 0, 0))
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=colour, outline=(0, 0, 0))
    elif shape == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=colour,
                     outline=(0, 0, 0))
    else:
        draw.ellipse(box, fill=colour, outline=(0, 0, 0))


def accuracy_vs_throughput(rows: Sequence[dict[str, Any]], path: Path, *, title: str = "",
                           size: tuple[int, int] = (960, 600)) -> None:
    """Draw the cells of a benchmark into `path` (PNG, written atomically)."""
    pts = [r for r in rows if r.get("top1") is not None and r.get("infer_images_per_s")]
    teachers = list(dict.fromkeys(r["teacher"] for r in rows if r.get("teacher")))
    colour = {t: _COLOURS[i % len(_COLOURS)] for i, t in enumerate(teachers)}
    tops = {}
    for t in teachers:  # a random-weights teacher differs by seed: its mean
        vals = [r["teacher_top1"] for r in rows
                if r.get("teacher") == t and r.get("teacher_top1") is not None]
        tops[t] = sum(vals) / len(vals) if vals else None
    w, h = size
    left, right, top, bottom = 80, 300, 50, 70
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(15), _font(13)
    xs = [r["infer_images_per_s"] for r in pts] or [0.0, 1.0]
    ys = [r["top1"] for r in pts] + [v for v in tops.values() if v is not None] or [0.0, 1.0]
    xlo, xhi = min(xs), max(xs)
    ylo, yhi = min(ys), max(ys)
    xpad, ypad = max((xhi - xlo) * 0.1, xhi * 0.05, 1.0), max((yhi - ylo) * 0.1, 0.5)
    xlo, xhi, ylo, yhi = max(0.0, xlo - xpad), xhi + xpad, ylo - ypad, yhi + ypad

    def px(v: float) -> float:
        return left + (v - xlo) / (xhi - xlo) * (w - left - right)

    def py(v: float) -> float:
        return h - bottom - (v - ylo) / (yhi - ylo) * (h - top - bottom)

    draw.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    for v in nice_ticks(xlo, xhi):
        if xlo <= v <= xhi:
            draw.line([(px(v), h - bottom), (px(v), h - bottom + 5)], fill=(0, 0, 0))
            draw.line([(px(v), top), (px(v), h - bottom)], fill=(235, 235, 235))
            draw.text((px(v), h - bottom + 8), f"{v:g}", fill=(0, 0, 0), font=small, anchor="ma")
    for v in nice_ticks(ylo, yhi):
        if ylo <= v <= yhi:
            draw.line([(left - 5, py(v)), (left, py(v))], fill=(0, 0, 0))
            draw.line([(left, py(v)), (w - right, py(v))], fill=(235, 235, 235))
            draw.text((left - 8, py(v)), f"{v:g}", fill=(0, 0, 0), font=small, anchor="rm")
    draw.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    for t, v in tops.items():
        if v is not None:
            x = left
            while x < w - right:
                draw.line([(x, py(v)), (min(x + 8, w - right), py(v))], fill=colour[t], width=2)
                x += 14
    losses = list(dict.fromkeys(r["loss"] for r in rows))
    for r in pts:  # strategies side by side at one throughput, so none hides another
        dodge = (losses.index(r["loss"]) - (len(losses) - 1) / 2) * 11
        _marker(draw, _SHAPES.get(r["loss"], "circle"), px(r["infer_images_per_s"]) + dodge,
                py(r["top1"]), 7, colour.get(r.get("teacher"), _GREY))
    draw.text(((left + w - right) / 2, h - 25), "student inference throughput (images/s, the model alone)",
              fill=(0, 0, 0), font=font, anchor="mm")
    label = Image.new("RGB", (260, 24), "white")
    ImageDraw.Draw(label).text((130, 12), "top-1 accuracy (%)", fill=(0, 0, 0), font=font,
                               anchor="mm")
    img.paste(label.rotate(90, expand=True), (8, int((top + h - bottom) / 2 - 130)))
    draw.text((left, 18), title, fill=(0, 0, 0), font=font)
    # legend: strategies by shape, teachers by colour (a dashed line: the teacher's top-1)
    lx, ly = w - right + 20, top
    draw.text((lx, ly), "strategy", fill=(0, 0, 0), font=font)
    for loss in losses:
        ly += 24
        _marker(draw, _SHAPES.get(loss, "circle"), lx + 8, ly + 8, 6, _GREY)
        draw.text((lx + 24, ly), loss, fill=(0, 0, 0), font=small)
    ly += 36
    draw.text((lx, ly), "teacher (dashed: its top-1)", fill=(0, 0, 0), font=font)
    for t in teachers:
        ly += 24
        draw.rectangle([lx + 2, ly + 2, lx + 14, ly + 14], fill=colour[t])
        adapter, _, target = t.partition(":")
        name = t if len(t) <= 30 else f"{adapter}:{Path(target.rstrip('/')).name}"[:30]
        top1 = f" ({tops[t]:.2f})" if tops[t] is not None else ""
        draw.text((lx + 24, ly), name + top1, fill=(0, 0, 0), font=small)
    if any(r.get("teacher") is None for r in rows):
        ly += 24
        draw.rectangle([lx + 2, ly + 2, lx + 14, ly + 14], fill=_GREY)
        draw.text((lx + 24, ly), "no teacher", fill=(0, 0, 0), font=small)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
