"""Process-wide runtime settings of a node."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys

#: Python's default first-generation threshold is 700 allocations.
DEFAULT_YOUNG_THRESHOLD = 50_000
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def tune_gc(young_threshold: int = DEFAULT_YOUNG_THRESHOLD) -> None:
    """Set the cyclic garbage collector up for a long-running node.

    A node keeps a large settled state (routing records, sessions, caches, configuration)
    and allocates many short-lived objects per packet, decision and request. What exists
    once the node has started is frozen (``gc.freeze``: full collections stop walking it),
    and the youngest generation is collected every ``young_threshold`` net allocations
    instead of every 700, so that the collector does not run inside nearly every routing
    decision (bench/routing.py measures the difference). ``0`` keeps Python's defaults.
    """
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, max(older, 20), oldest)


def die_with_parent(parent: int) -> None:
    """Initializer of a node's child processes (the ASR pool): the kernel kills the child
    when the node dies, even by SIGKILL (Linux ``prctl(PR_SET_PDEATHSIG)``), so that no
    orphan is left re-parented to init. The multiprocessing resource tracker then sees its
    pipe close and exits by itself."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the call above took effect
        os._exit(1)
