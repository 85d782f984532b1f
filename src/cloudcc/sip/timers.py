"""Timer values of RFC 3261 §17 (Table 4, Appendix A) and a deadline queue.

All cores take ``now`` (seconds, any monotonic origin) and report their next
deadline; ``TimerQueue`` is the single sans-I/O heap the endpoint drives with one
asyncio timer, so no core ever owns a clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class TimerSettings:
    """T1, T2, T4 (RFC 3261 Table 4) and what derives from them."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
    t4: float = 5.0  # maximum duration a message remains in the network
    timer_c: float = 180.0  # proxy INVITE transaction timeout; we use it as the UAC ring limit

    @property
    def timer_b(self) -> float:
        """INVITE transaction timeout (64*T1)."""
        return 64 * self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE transaction timeout (64*T1)."""
        return 64 * self.t1

    @property
    def timer_h(self) -> float:
        """Wait time for ACK receipt (64*T1)."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        """Wait time for response retransmits: >32 s for UDP, 0 for reliable transports."""
        return 0.0 if reliable else max(32.0, 64 * self.t1)

    def timer_i(self, reliable: bool) -> float:
        """Wait time for ACK retransmits: T4 for UDP, 0 for reliable."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """Wait time for non-INVITE request retransmits: 64*T1 for UDP, 0 for reliable."""
        return 0.0 if reliable else 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        """Wait time for response retransmits: T4 for UDP, 0 for reliable."""
        return 0.0 if reliable else self.t4

    @property
    def timer_l(self) -> float:
        """RFC 6026 Accepted-state wait for retransmitted INVITEs / ACK (64*T1)."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """RFC 6026 client Accepted-state wait for retransmitted 2xx (64*T1)."""
        return 64 * self.t1


DEFAULT_TIMERS = TimerSettings()


class TimerQueue:
    """Deadlines of many objects in one heap.

    ``schedule(key, when)`` replaces the key's deadline; ``due(now)`` pops the keys
    whose deadline has passed. The heap holds integer tokens, not keys, so cancelling
    or rescheduling releases the key at once; stale tokens are skipped when popped and
    the heap is rebuilt when they outnumber live ones.
    """

    __slots__ = ("_counter", "_deadlines", "_heap", "_keys")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._deadlines: dict[Hashable, tuple[float, int]] = {}
        self._keys: dict[int, Hashable] = {}
        self._counter = itertools.count()

    def schedule(self, key: Hashable, when: float | None) -> None:
        old = self._deadlines.get(key)
        if old is not None:
            if old[0] == when:
                return
            del self._keys[old[1]]
        if when is None:
            if old is not None:
                del self._deadlines[key]
            return
        token = next(self._counter)
        self._deadlines[key] = (when, token)
        self._keys[token] = key
        heapq.heappush(self._heap, (when, token))
        if len(self._heap) > 2 * len(self._deadlines) + 1024:
            self._heap = [entry for entry in self._heap if entry[1] in self._keys]
            heapq.heapify(self._heap)

    def cancel(self, key: Hashable) -> None:
        old = self._deadlines.pop(key, None)
        if old is not None:
            del self._keys[old[1]]

    def due(self, now: float) -> list[Hashable]:
        heap = self._heap
        keys = self._keys
        out: list[Hashable] = []
        while heap and heap[0][0] <= now:
            _, token = heapq.heappop(heap)
            key = keys.pop(token, None)
            if key is not None:
                del self._deadlines[key]
                out.append(key)
        return out

    def next_deadline(self) -> float | None:
        heap = self._heap
        keys = self._keys
        while heap and heap[0][1] not in keys:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._deadlines
