"""Numbers that more than one part of the toolkit reads, defined once.

- ImageNet's per-channel mean and std (of RGB values in 0..1): the recipe's default
  normalisation, and a teacher's when neither the recipe nor its model says otherwise.
- Bounds on what a recipe may ask for, so that a typo (an extra digit or ten) is refused
  before any check can ask for terabytes: 4096² images, 65,536-image batches.
"""

from __future__ import annotations

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MAX_BATCH", "MAX_SIZE"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MAX_SIZE = 4096  # pixels on an image's side (data.img_size, teacher.input_size)
MAX_BATCH = 65536  # images in a batch
