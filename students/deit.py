"""DeiT students: vision transformers with a class token and, optionally, a distillation token.

Paper: "Training data-efficient image transformers & distillation through attention",
Touvron et al., ICML 2021 (https://arxiv.org/abs/2012.12877).

The state dict uses timm's key names (`cls_token`, `dist_token`, `pos_embed`,
`patch_embed.proj`, `blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`, `norm`,
`head`, `head_dist`), so weights move both ways between this module and
`timm.create_model(model.timm_model, **model.timm_kwargs)` with `strict=True`.

Training forward of a distilled model returns `(cls_logits, dist_logits)`; eval forward
returns their average, as DeiT and timm do. `forward_heads` always returns both.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from distill.registry import STUDENTS

__all__ = ["DeiT", "adapt_deit_state", "builder_args", "shape_problem"]


def _grid_problem(img_size: int, patch_size: int) -> str:
    return f"img_size {img_size} is not a multiple of patch_size {patch_size}"


def _heads_problem(dim: int, num_heads: int) -> str:
    return f"embed_dim {dim} is not divisible by num_heads {num_heads}"


class PatchEmbed(nn.Module):
    """Image to patch tokens with one strided convolution (`patch_embed.proj`)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(_grid_problem(img_size, patch_size))
        self.grid = img_size // patch_size
        self.num_patches = self.grid * self.grid
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(_heads_problem(dim, num_heads))
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop whole residual branches per sample."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep.div_(1.0 - p)


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path_rate: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)


class DeiT(nn.Module):
    """A DeiT vision transformer; `distilled=True` adds the distillation token and head."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        distilled: bool = False,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.distilled = distilled
        self.num_prefix_tokens = 2 if distilled else 1
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if distilled else None
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.patch_embed.num_patches + self.num_prefix_tokens, embed_dim))
        # timm's linear rule, in Python so that the model also builds on the meta device
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(
            *[Block(embed_dim, num_heads, mlp_ratio, rates[i]) for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self.head_dist = nn.Linear(embed_dim, num_classes) if distilled else None
        self._init_weights()
        # What timm needs to build the same module: `timm.create_model(timm_model, **timm_kwargs)`.
        self.timm_model = ""
        self.timm_kwargs: dict[str, Any] = dict(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
            embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio)

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.dist_token is not None:
            nn.init.trunc_normal_(self.dist_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def adapt_state(self, state: dict[str, torch.Tensor]) -> tuple[dict, list[str]]:
        """A timm/DeiT state dict fitted to this model (`adapt_deit_state`): what
        `student.init` uses for a plug-in student that builds a `DeiT` but declares no
        `adapt_state` fact. Returns (state, notes)."""
        return adapt_deit_state(state, self)

    def no_weight_decay(self) -> set[str]:
        """Parameters that DeiT trains without weight decay (besides norms and biases)."""
        return {"pos_embed", "cls_token", "dist_token"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        prefix = [self.cls_token.expand(x.shape[0], -1, -1)]
        if self.dist_token is not None:
            prefix.append(self.dist_token.expand(x.shape[0], -1, -1))
        x = torch.cat([*prefix, x], dim=1) + self.pos_embed
        return self.norm(self.blocks(x))

    def forward_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits of the class head and of the distillation head (None without one)."""
        x = self.forward_features(x)
        cls = self.head(x[:, 0])
        dist = self.head_dist(x[:, 1]) if self.head_dist is not None else None
        return cls, dist

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        cls, dist = self.forward_heads(x)
        if dist is None:
            return cls
        if self.training:
            return cls, dist
        return (cls + dist) / 2


def adapt_deit_state(state: dict[str, torch.Tensor], model: DeiT) -> tuple[dict, list[str]]:
    """Fit a timm/DeiT state dict to `model`: resample `pos_embed` to its grid, drop or add
    the distillation token, drop heads of another class count. Returns (state, notes)."""
    state = dict(state)
    notes: list[str] = []
    own = model.state_dict()
    if "pos_embed" in state and state["pos_embed"].shape != own["pos_embed"].shape:
        src = state["pos_embed"]
        src_prefix = 2 if "dist_token" in state else 1
        prefix, grid = src[:, :src_prefix], src[:, src_prefix:]
        old = math.isqrt(grid.shape[1])
        new = model.patch_embed.grid
        if old != new:
            grid = grid.reshape(1, old, old, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid.float(), size=(new, new), mode="bicubic", align_corners=False)
            grid = grid.permute(0, 2, 3, 1).reshape(1, new * new, -1).to(src.dtype)
            notes.append(f"pos_embed resampled from {old}x{old} to {new}x{new}")
        if model.num_prefix_tokens == 1 and src_prefix == 2:
            prefix = prefix[:, :1]
        elif model.num_prefix_tokens == 2 and src_prefix == 1:
            prefix = torch.cat([prefix, prefix], dim=1)
        state["pos_embed"] = torch.cat([prefix, grid], dim=1)
    if model.dist_token is None:
        for key in ("dist_token", "head_dist.weight", "head_dist.bias"):
            if state.pop(key, None) is not None and key == "dist_token":
                notes.append("distillation token dropped (class-token student)")
    elif "dist_token" not in state and "cls_token" in state:
        state["dist_token"] = state["cls_token"].clone()
        notes.append("distillation token initialised from the class token")
    for head in ("head", "head_dist"):
        w = state.get(f"{head}.weight")
        if w is not None and f"{head}.weight" in own and w.shape != own[f"{head}.weight"].shape:
            state.pop(f"{head}.weight")
            state.pop(f"{head}.bias", None)
            notes.append(f"{head} left at random init ({w.shape[0]} classes in the file)")
    return state, notes


def _create_deit(variant: str, distilled: bool, **kwargs: Any) -> DeiT:
    model = DeiT(distilled=distilled, **kwargs)
    model.timm_model = variant
    return model


_SIZES = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
}


def _variant_name(size: str, distilled: bool) -> str:
    return f"deit_{size}_{'distilled_' if distilled else ''}patch16_224"


def _variant(size: str, distilled: bool, **kwargs: Any) -> DeiT:
    args = dict(patch_size=16, **_SIZES[size])
    return _create_deit(_variant_name(size, distilled), distilled, **{**args, **kwargs})


_VARIANTS = {_variant_name(size, d): (size, d) for size in _SIZES for d in (False, True)}


def _args(size: str, distilled: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    defaults = {k: p.default for k, p in inspect.signature(DeiT).parameters.items()}
    return {**defaults, "patch_size": 16, **_SIZES[size], **kwargs, "distilled": distilled}


def builder_args(name: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The `DeiT(...)` arguments that the registered student `name` builds with `kwargs`,
    or None if `name` is not one of this module's variants."""
    if name not in _VARIANTS or STUDENTS.get(name).__module__ != __name__:
        return None
    return _args(*_VARIANTS[name], kwargs)


def shape_problem(args: dict[str, Any]) -> str | None:
    """What `DeiT(**args)` would refuse, found without building it; None if it builds.
    Stricter than the constructor on nonsense it would accept: a bool or a size below 1
    (depth below 0)."""
    for key in ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth",
                "num_heads"):
        value = args[key]
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{key} must be an integer (got {value!r})"
        if value < (0 if key == "depth" else 1):
            return f"{key} must be {'>= 0' if key == 'depth' else '>= 1'} (got {value})"
    for key in ("mlp_ratio", "drop_path_rate"):
        value = args[key]
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"{key} must be a number (got {value!r})"
    if args["mlp_ratio"] < 0:
        return f"mlp_ratio must be >= 0 (got {args['mlp_ratio']})"
    if args["img_size"] % args["patch_size"]:
        return _grid_problem(args["img_size"], args["patch_size"])
    if args["embed_dim"] % args["num_heads"]:
        return _heads_problem(args["embed_dim"], args["num_heads"])
    return None


def _shape_problem(size: str, distilled: bool, kwargs: dict[str, Any]) -> str | None:
    return shape_problem(_args(size, distilled, kwargs))


def _facts(size: str, distilled: bool) -> dict[str, Any]:
    """A variant's `StudentFacts`: its shape rules checked without building it, and a
    timm/DeiT state dict fitted to it (`adapt_deit_state`)."""
    return dict(distilled=distilled, family="deit", signature=DeiT,
                shape_problem=functools.partial(_shape_problem, size, distilled),
                adapt_state=adapt_deit_state)


@STUDENTS.register(**_facts("tiny", False))
def deit_tiny_patch16_224(**kwargs: Any) -> DeiT:
    """DeiT-Ti, class token only (5M parameters)."""
    return _variant("tiny", False, **kwargs)


@STUDENTS.register(**_facts("small", False))
def deit_small_patch16_224(**kwargs: Any) -> DeiT:
    """DeiT-S, class token only (22M parameters)."""
    return _variant("small", False, **kwargs)


@STUDENTS.register(**_facts("base", False))
def deit_base_patch16_224(**kwargs: Any) -> DeiT:
    """DeiT-B, class token only (86M parameters)."""
    return _variant("base", False, **kwargs)


@STUDENTS.register(**_facts("tiny", True))
def deit_tiny_distilled_patch16_224(**kwargs: Any) -> DeiT:
    """DeiT-Ti⚗, class and distillation tokens (6M parameters)."""
    return _variant("tiny", True, **kwargs)


@STUDENTS.register(**_facts("small", True))
def deit_small_distilled_patch16_224(**kwargs: Any) -> DeiT:
    """DeiT-S⚗, class and distillation tokens (22M parameters)."""
    return _variant("small", True, **kwargs)


@STUDENTS.register(**_facts("base", True))
def deit_base_distilled_patch16_224(**kwargs: Any) -> DeiT:
    """DeiT-B⚗, class and distillation tokens (87M parameters)."""
    return _variant("base", True, **kwargs)
