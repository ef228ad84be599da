"""Ctrl-C held back until a block ends: what the block writes or updates is never left half done."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_holding = False
"""Whether the main thread is inside a sigint_deferred block."""


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt: a bag record (or a
    replayed frame's outputs, or a training step) is never half-done, so what is saved on the way
    out is whole. A nested block holds until the outermost ends. Only the main thread receives
    signals; elsewhere the block runs as is."""
    global _holding
    if _holding or threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    _holding = True
    try:
        yield
    finally:
        _holding = False
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
