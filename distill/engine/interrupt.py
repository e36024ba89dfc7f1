"""Ctrl-C that is not lost.

Python turns SIGINT into a `KeyboardInterrupt` raised wherever the main thread happens to
be. Where that is a callback whose exceptions CPython only prints ("Exception ignored in
..."): a fork hook as a data loader starts its workers, a `__del__`, a weakref callback,
the interrupt is swallowed and the run goes on. Two defences:

- `deferred()` holds Ctrl-C back while loader workers start (the fork hooks run there, and
  an interrupt inside logging's would also leave its lock held) and raises it when the
  workers are up, in ordinary code.
- `install` (the CLI does, at the start of each command) replaces the handler with one that
  also records the request; the training, evaluation and cache-build loops call `check`
  after each batch, and before a run or a cache is marked finished, which raises the
  interrupt again if something swallowed it."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_pending = False


def _handler(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


def install() -> None:
    """Record Ctrl-C as well as raising it, where Python's default handler is in place (a
    process started with SIGINT ignored, or a host application's own handler, is left as
    it is). A request recorded before (an earlier command in this process) is forgotten."""
    clear()
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


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Ctrl-C held back inside the block and raised when it ends, in ordinary code.

    For the time the block runs, SIGINT's handler only notes the signal (blocking it with
    `pthread_sigmask` would not do: the kernel hands a process-directed signal to any
    thread that does not block it, torch's among them, and Python then runs the handler in
    the main thread all the same). Only Python's default handler and this module's are
    replaced; SIG_IGN or a host application's own handler is left as it is. Forked loader
    workers inherit the noting handler until `distill.data.loaders.worker_init` makes them
    ignore SIGINT."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous not in (_handler, signal.default_int_handler):
        yield
        return
    held: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        global _pending
        held.append(signum)
        if previous is _handler:
            _pending = True  # `check` raises it too, should the raise below be swallowed

    signal.signal(signal.SIGINT, note)  # a nested block sees `note` and leaves it in place
    try:
        yield
    finally:
        # `signal.signal` first runs the handlers of signals already pending, and one of
        # them may raise (torch's SIGCHLD handler, when a worker died): try again, so SIGINT's
        # handler is back whatever happens, then raise what came first.
        error: BaseException | None = None
        for _ in range(100):
            try:
                signal.signal(signal.SIGINT, previous)
                break
            except BaseException as exc:  # re-raised below
                error = error or exc
        if held:
            raise KeyboardInterrupt from error
        if error is not None:
            raise error
