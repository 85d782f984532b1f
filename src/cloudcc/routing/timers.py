"""The engine's timers: due-time order at O(1) per timer for the common case.

Nearly every timer is armed a fixed delay after the engine's clock (ring timeout, wrap-up,
relaxation step, max wait...), and the clock never goes back, so the timers of one delay
come due in the order they were armed. Each delay gets a FIFO; a small heap holds only the
first timer of each FIFO (plus the rare timer armed out of order), so arming is an append
and the heap stays as small as the number of distinct delays. Timers fire in exactly the
(due time, sequence) order a single heap of all timers would give.
"""

from __future__ import annotations

import heapq
from collections import deque

#: (due, sequence, kind, object, its FIFO or None); sequences are unique, so entries never
#: compare beyond the second field.
Entry = tuple[float, int, int, object, "deque[Entry] | None"]


class TimerQueue:
    """Timers ordered by (due, sequence). Cancellation is lazy: the owner checks each entry
    it pops (or finds first) against its records and skips dead ones."""

    __slots__ = ("fifos", "heap")

    def __init__(self) -> None:
        self.heap: list[Entry] = []
        self.fifos: dict[float, deque[Entry]] = {}

    def add(self, at: float, seq: int, kind: int, obj: object, delay: float) -> None:
        """Arm a timer due at ``at``, usually the clock + ``delay`` (``delay`` only groups)."""
        fifo = self.fifos.get(delay)
        if fifo is None:
            fifo = self.fifos[delay] = deque()
        if fifo:
            if fifo[-1][0] <= at:
                fifo.append((at, seq, kind, obj, fifo))
                return
            heapq.heappush(self.heap, (at, seq, kind, obj, None))  # armed out of order
            return
        entry: Entry = (at, seq, kind, obj, fifo)
        fifo.append(entry)
        heapq.heappush(self.heap, entry)

    def first(self) -> Entry | None:
        heap = self.heap
        return heap[0] if heap else None

    def pop(self) -> Entry:
        """Remove and return the first timer (the queue must not be empty)."""
        heap = self.heap
        entry = heap[0]
        fifo = entry[4]
        if fifo is None:
            heapq.heappop(heap)
            return entry
        fifo.popleft()
        if fifo:
            heapq.heapreplace(heap, fifo[0])
        else:
            heapq.heappop(heap)
        return entry
