"""Ctrl-C that is never lost.

Python turns SIGINT into a `KeyboardInterrupt` raised wherever the main thread happens to
be. Where that is a callback whose exceptions CPython only prints ("Exception ignored in
..."): a fork hook as a data loader starts its workers, a `__del__`, a weakref callback,
the interrupt is swallowed and the run goes on. `install` (the CLI does, once) replaces the
handler with one that also records the request; the training and cache-build loops call
`check` after each batch, which raises the interrupt again if it was swallowed."""

from __future__ import annotations

import signal
import threading
from types import FrameType

_pending = False


def _handler(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


def install() -> None:
    """Record Ctrl-C as well as raising it, where Python's default handler is in place (a
    process started with SIGINT ignored, or a host application's own handler, is left as
    it is)."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _handler)


def check() -> None:
    """Raise the Ctrl-C that arrived since the last call, if nothing else raised it."""
    global _pending
    if _pending:
        _pending = False
        raise KeyboardInterrupt


def clear() -> None:
    """The interrupt was handled (raised and caught): forget it."""
    global _pending
    _pending = False
