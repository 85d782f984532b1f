"""Queue positions (an order-statistics list) and estimated wait times (EWT).

EWT of the contact at position p = p x the mean interval between answers of its queue
(an exponentially weighted moving average); before any answer it falls back to
p x default handle time / signed-in member agents.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

Key = tuple[float, int]

_LOAD = 512


class RankedKeys:
    """A sorted set of unique keys with insert/remove in O(log n + load) and rank in
    O(n / load): a list of sorted blocks, the way sortedcontainers does it, minus the index."""

    __slots__ = ("_blocks", "_len", "_maxes")

    def __init__(self) -> None:
        self._blocks: list[list[Key]] = []
        self._maxes: list[Key] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, key: Key) -> int:
        """Insert ``key``; returns its rank (how many keys are smaller)."""
        blocks, maxes = self._blocks, self._maxes
        n = self._len
        self._len = n + 1
        if not blocks:
            blocks.append([key])
            maxes.append(key)
            return 0
        if key > maxes[-1]:  # the common case: a later arrival goes last
            i = len(blocks) - 1
            block = blocks[i]
            block.append(key)
            maxes[i] = key
            rank = n
        else:
            i = bisect_left(maxes, key)
            block = blocks[i]
            j = bisect_left(block, key)
            block.insert(j, key)
            rank = j + (sum(map(len, blocks[:i])) if i else 0)
        if len(block) > 2 * _LOAD:
            blocks.insert(i + 1, block[_LOAD:])
            del block[_LOAD:]
            maxes[i] = block[-1]
            maxes.insert(i + 1, blocks[i + 1][-1])
        return rank

    def remove(self, key: Key) -> None:
        blocks, maxes = self._blocks, self._maxes
        if blocks and (blocks[0][0] is key or blocks[0][0] == key):  # the head leaves
            i, j = 0, 0
            block = blocks[0]
        else:
            i = bisect_left(maxes, key)
            block = blocks[i] if i < len(blocks) else []
            j = bisect_left(block, key)
            if j == len(block) or block[j] != key:
                raise KeyError(key)
        del block[j]
        self._len -= 1
        if not block:
            del blocks[i]
            del maxes[i]
        elif j == len(block):
            maxes[i] = block[-1]

    def rank(self, key: Key) -> int:
        """How many keys are smaller than ``key``."""
        blocks, maxes = self._blocks, self._maxes
        i = bisect_left(maxes, key)
        before = sum(map(len, blocks[:i])) if i else 0
        return before + (bisect_left(blocks[i], key) if i < len(blocks) else 0)


class AnswerPace:
    """Moving average of the interval between answers in one queue."""

    __slots__ = ("interval", "last", "samples")

    ALPHA = 0.1

    def __init__(self) -> None:
        self.interval = 0.0
        self.last: float | None = None
        self.samples = 0

    def answered(self, now: float) -> None:
        if self.last is not None:
            gap = now - self.last
            self.interval = (
                gap if self.samples == 0 else (self.interval + self.ALPHA * (gap - self.interval))
            )
            self.samples += 1
        self.last = now

    def estimate(self, position: int, default_handle: float, staffed: Callable[[], int]) -> float:
        """Seconds until the contact at ``position`` (1 = next) is answered; ``staffed``
        (signed-in agents) is only asked for before the pace is measured."""
        if self.samples >= 3:
            return position * self.interval
        return position * default_handle / max(1, staffed())
