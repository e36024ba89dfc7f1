"""A user's own teacher factory, for `python:tests.plugins.user_teacher:make`."""

from torch import nn


def make(num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """A linear classifier on 32×32 images."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * 32 * 32, num_classes))


def not_a_model() -> str:
    return "nope"


class _SlowOnRank0(nn.Module):
    """On torchrun's rank 0, sleeps `delay` seconds in forward passes skip+1 … skip+calls
    (the first pass is the toolkit's probe of the output shape)."""

    def __init__(self, inner: nn.Module, delay: float, calls: int, skip: int):
        super().__init__()
        self.inner, self.delay, self.calls, self.skip = inner, delay, calls, skip

    def forward(self, x):
        import os
        import time

        if os.environ.get("RANK") == "0":
            if self.skip > 0:
                self.skip -= 1
            elif self.calls > 0:
                self.calls -= 1
                time.sleep(self.delay)
        return self.inner(x)


def slow_on_rank0(num_classes: int = 10, in_chans: int = 3, delay: float = 3.0,
                  calls: int = 1, skip: int = 1) -> nn.Module:
    """`make`'s classifier, slow on rank 0 for a while: uneven work under torchrun."""
    return _SlowOnRank0(make(num_classes, in_chans), delay, calls, skip)
