"""How teacher outputs are stored, and turned back into logits.

- `full`: fp16 logits, C values per row.
- `topk:K`: the K largest probabilities at temperature τ (fp16) and their class ids; on read
  the remaining mass is spread uniformly over the other C−K classes.
- `hard`: the argmax class id.

`decode` returns "logits" z whose softmax(z/τ) is the stored distribution, so every loss
reads a cache exactly as it reads a live teacher: the argmax is the teacher's, and the soft
term sees the stored probabilities (exactly for `full`, at the cache's τ for `topk`). With
`lam` (mixed batches, partner `flip(0)`), the per-sample distributions are mixed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from distill.errors import OptionError

__all__ = ["StoreFormat"]

_NEG = -1.0e4  # "log 0" that keeps softmax and KL finite


@dataclass(frozen=True)
class StoreFormat:
    kind: str  # full | topk | hard
    k: int = 0

    @classmethod
    def parse(cls, spec: str, num_classes: int | None = None) -> StoreFormat:
        kind, _, k = spec.partition(":")
        if kind in ("full", "hard") and not k:
            return cls(kind)
        if kind == "topk" and k.isdigit() and int(k) >= 1:
            if num_classes is not None and int(k) >= num_classes:
                raise OptionError("store", f"topk:{k} keeps every one of the {num_classes} "
                                  "classes; use 'full'")
            return cls("topk", int(k))
        raise OptionError("store", f"expected full, topk:K or hard, got '{spec}'")

    def __str__(self) -> str:
        return f"topk:{self.k}" if self.kind == "topk" else self.kind

    @property
    def soft(self) -> bool:
        """Whether a soft (KL) term can be read from it."""
        return self.kind != "hard"

    def _id_dtype(self, num_classes: int) -> torch.dtype:
        return torch.int16 if num_classes <= 32767 else torch.int32

    def bytes_per_row(self, num_classes: int) -> int:
        ids = 2 if num_classes <= 32767 else 4
        per = {"full": 2 * num_classes, "topk": (2 + ids) * self.k, "hard": ids}[self.kind]
        return per + 1  # + the valid flag

    def empty(self, rows: int, num_classes: int) -> dict[str, torch.Tensor]:
        """Buffers for `rows` rows, all marked not computed."""
        ids = self._id_dtype(num_classes)
        out: dict[str, torch.Tensor] = {"valid": torch.zeros(rows, dtype=torch.uint8)}
        if self.kind == "full":
            out["logits"] = torch.zeros(rows, num_classes, dtype=torch.float16)
        elif self.kind == "topk":
            out["probs"] = torch.zeros(rows, self.k, dtype=torch.float16)
            out["ids"] = torch.zeros(rows, self.k, dtype=ids)
        else:
            out["ids"] = torch.zeros(rows, dtype=ids)
        return out

    def encode(self, logits: torch.Tensor, tau: float) -> dict[str, torch.Tensor]:
        """Rows for a B×C block of teacher logits (any float dtype, any device)."""
        logits = logits.float()
        ids = self._id_dtype(logits.shape[-1])
        if self.kind == "full":
            return {"logits": logits.to(torch.float16).cpu()}
        if self.kind == "topk":
            p = F.softmax(logits / tau, dim=-1)
            top = p.topk(self.k, dim=-1)
            return {"probs": top.values.to(torch.float16).cpu(),
                    "ids": top.indices.to(ids).cpu()}
        return {"ids": logits.argmax(dim=-1).to(ids).cpu()}

    def probs(self, rows: dict[str, torch.Tensor], num_classes: int, tau: float) -> torch.Tensor:
        """The per-row distribution at τ (B×C, float32)."""
        if self.kind == "full":
            return F.softmax(rows["logits"].float() / tau, dim=-1)
        if self.kind == "topk":
            p_top = rows["probs"].float()
            rest = (1.0 - p_top.sum(-1, keepdim=True)).clamp_min(0.0) / (num_classes - self.k)
            full = rest.expand(-1, num_classes).clone()
            return full.scatter_(-1, rows["ids"].long(), p_top)
        return F.one_hot(rows["ids"].long(), num_classes).float()

    def decode(self, rows: dict[str, Any], num_classes: int, tau: float,
               lam: Any = None) -> torch.Tensor:
        """Logits-like B×C tensor for the losses; mixes per-sample outputs when `lam` is given."""
        if self.kind == "full" and lam is None:
            return rows["logits"].float()
        p = self.probs(rows, num_classes, tau)
        if lam is not None:
            p = lam * p + (1.0 - lam) * p.flip(0)
        return torch.where(p > 0, tau * torch.log(p.clamp_min(1e-30)), torch.full_like(p, _NEG))
