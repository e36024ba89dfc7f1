"""Redraw every recorded `accuracy_vs_throughput.png` from the `results.json` beside it.

Nothing is re-run: the figure is drawn again (by `distill.plots`, as `distill bench` draws
it) from the rows that run recorded, with the recipe as its title.

    python benchmarks/redraw_figures.py [FOLDER ...]     # default: benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.plots import accuracy_vs_throughput  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", type=Path, default=[ROOT / "benchmarks" / "results"])
    args = ap.parse_args()
    figures = sorted({p for f in args.folders for p in f.rglob("accuracy_vs_throughput.png")})
    if not figures:
        sys.exit("no accuracy_vs_throughput.png under " + ", ".join(map(str, args.folders)))
    for png in figures:
        data = png.with_name("results.json")
        if not data.is_file():
            sys.exit(f"{png}: no results.json beside it to redraw from")
        doc = json.loads(data.read_text())
        accuracy_vs_throughput(doc["cells"], png, title=str(doc.get("recipe", "")))
        print(f"{os.path.relpath(png)}: {len(doc['cells'])} cells from {data.name}")


if __name__ == "__main__":
    main()
