"""Process-wide runtime settings of a node."""

from __future__ import annotations

import gc

#: Python's default first-generation threshold is 700 allocations.
DEFAULT_YOUNG_THRESHOLD = 50_000


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
