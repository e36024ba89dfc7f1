"""timm's training and evaluation transforms, configured from the recipe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distill.recipe import AugmentConfig, DataConfig

__all__ = ["eval_transform", "pil_mode", "train_transform"]


def train_transform(data: DataConfig, augment: AugmentConfig) -> Any:
    from timm.data import create_transform

    return create_transform(
        (data.in_chans, data.img_size, data.img_size),
        is_training=True,
        scale=tuple(augment.scale),
        ratio=tuple(augment.ratio),
        hflip=augment.hflip,
        vflip=augment.vflip,
        color_jitter=augment.color_jitter or None,  # 0/None: no ColorJitter at all
        auto_augment=augment.auto_augment,
        interpolation=data.interpolation,
        mean=tuple(data.mean),
        std=tuple(data.std),
        re_prob=augment.re_prob,
        re_mode=augment.re_mode,
        re_count=augment.re_count,
    )


def eval_transform(data: DataConfig) -> Any:
    from timm.data import create_transform

    return create_transform(
        (data.in_chans, data.img_size, data.img_size),
        is_training=False,
        crop_pct=data.crop_pct,
        interpolation=data.interpolation,
        mean=tuple(data.mean),
        std=tuple(data.std),
    )


def pil_mode(data: DataConfig) -> str:
    """The PIL mode images are converted to before the transform: "L" or "RGB"."""
    return "L" if data.in_chans == 1 else "RGB"
