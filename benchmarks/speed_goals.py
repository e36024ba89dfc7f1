"""The speed goals we hold `distill speed` to, checked on its JSON output.

    python benchmarks/speed_goals.py speed.json [more.json …]

Prints each goal with the measured value and whether it is met; exits 1 if any measured
goal is missed (a goal whose arms were not timed is "not measured"). The goals:

- cached teacher ≥ 0.97× no teacher (the cache costs at most 3% of a step);
- our live-teacher step ≥ 1.0× timm's `TokenDistillationTask` on a CPU, ≥ 1.25× on a GPU;
- DeiT-S⚗ with no teacher ≥ 10,000 images/s at 224² in bf16 on an H100 or H200.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (goal, ratio key in the JSON, target on a CPU, target on CUDA)
RATIO_GOALS = (("cached teacher vs no teacher", "cache_vs_none", 0.97, 0.97),
               ("our live-teacher step vs timm TokenDistillationTask", "live_vs_timm", 1.0, 1.25))
THROUGHPUT_GOAL = ("DeiT-S distilled, no teacher, 224², bf16 (images/s)", 10000.0)
HOPPER = ("H100", "H200")


def check(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per goal that applies to this run: goal, value, target, met (None: not
    measured)."""
    device = doc["device"]
    cuda = device.get("device") == "cuda"
    out = []
    for goal, key, cpu, gpu in RATIO_GOALS:
        value = doc["ratios"].get(key)
        target = gpu if cuda else cpu
        out.append({"goal": goal, "value": value, "target": target,
                    "met": None if value is None else value >= target})
    name = str(device.get("device_name", ""))
    if (cuda and any(h in name for h in HOPPER) and device.get("precision") == "bf16"
            and doc.get("image_size") == 224
            and str(doc.get("student", "")).startswith("deit_small_distilled")):
        value = doc["arms"].get("none", {}).get("images_per_s")
        goal, target = THROUGHPUT_GOAL
        out.append({"goal": goal, "value": value, "target": target,
                    "met": None if value is None else value >= target})
    return out


def main(paths: list[str]) -> int:
    missed = False
    for path in paths:
        doc = json.loads(Path(path).read_text())
        print(f"{path}: {doc['student']} ← {doc['teacher']}, {doc['device']['device_name']}")
        for g in check(doc):
            verdict = "not measured" if g["met"] is None else "met" if g["met"] else "below"
            value = "–" if g["value"] is None else f"{g['value']:.3f}"
            print(f"  {g['goal']}: {value} (goal ≥ {g['target']:g}) {verdict}")
            missed |= g["met"] is False
    return 1 if missed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
