"""`Batch`, what the engine, the losses and the teachers see, and the loaders' collate."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

__all__ = ["Batch", "collate"]


class Batch(NamedTuple):
    """A batch as the engine, the losses and the teachers see it.

    `images` are student-normalised (after mixup/cutmix when on); `labels` are class indices
    or, after mixing, soft targets; `cached` are a cached teacher's rows for these samples;
    `lam` is the mixing weight (a float, or a B×1 tensor in pair/elem mode) with partner
    `flip(0)`: None when the run does not mix, 1.0 where a step's draw left the batch unmixed.
    """

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    cached: Any = None
    lam: Any = None

    def to(self, device: torch.device) -> Batch:
        def move(t: Any) -> Any:
            if isinstance(t, torch.Tensor):
                return t.to(device, non_blocking=True)
            if isinstance(t, dict):
                return {k: move(v) for k, v in t.items()}
            return t

        return Batch(*(move(t) for t in self))


def collate(items: list[tuple]) -> Batch:
    """`ReplayDataset` items `(image, label, index, row)` stacked into a `Batch`."""
    xs, ys, idx, cached = zip(*items)
    rows = None
    if cached[0] is not None:  # a cached teacher's rows: a tensor or a dict of tensors each
        first = cached[0]
        rows = ({k: torch.stack([c[k] for c in cached]) for k in first}
                if isinstance(first, dict) else torch.stack(cached))
    return Batch(torch.stack(xs), torch.tensor(ys), torch.tensor(idx), rows)
