"""A user's own teacher factory, for `python:tests.plugins.user_teacher:make`."""

from torch import nn


def make(num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """A linear classifier on 32×32 images."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * 32 * 32, num_classes))


def not_a_model() -> str:
    return "nope"
