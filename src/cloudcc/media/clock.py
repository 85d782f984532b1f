"""The media clock: 20 ms ticks scheduled against absolute deadlines (no drift),
with lateness measured. Sans-I/O: the engine passes ``now`` in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class TickStats:
    ticks: int
    late_ticks: int  # woke more than ``late_threshold`` after the deadline
    skipped_ticks: int  # frames given up after a stall longer than ``max_catch_up``
    max_lateness_ms: float
    p99_lateness_ms: float
    mean_lateness_ms: float


class TickClock:
    """Tick k is due at ``start + k * period``; a late wake-up runs the missed ticks."""

    HISTOGRAM_MS: Final = 100  # 0.1 ms buckets up to 100 ms

    def __init__(
        self,
        start: float,
        period: float = 0.020,
        late_threshold: float = 0.005,
        max_catch_up: int = 10,
    ) -> None:
        self.start = start
        self.period = period
        self.late_threshold = late_threshold
        self.max_catch_up = max_catch_up
        self.ticks = 0  # ticks run so far; tick ``ticks`` is the next one
        self.late_ticks = 0
        self.skipped_ticks = 0
        self.max_lateness = 0.0
        self._lateness_sum = 0.0
        self._buckets = [0] * (self.HISTOGRAM_MS * 10 + 1)

    @property
    def next_deadline(self) -> float:
        return self.start + self.ticks * self.period

    def due(self, now: float) -> int:
        """How many ticks to run now; records the lateness of the first one."""
        deadline = self.next_deadline
        if now < deadline:
            return 0
        count = int((now - deadline) / self.period) + 1
        lateness = now - deadline
        self._lateness_sum += lateness
        self.max_lateness = max(self.max_lateness, lateness)
        self._buckets[min(len(self._buckets) - 1, int(lateness * 10000))] += 1
        if lateness > self.late_threshold:
            self.late_ticks += 1
        if count > self.max_catch_up:  # a long stall: drop frames, keep the grid
            self.skipped_ticks += count - self.max_catch_up
            self.ticks += count - self.max_catch_up
            count = self.max_catch_up
        return count

    def advance(self) -> int:
        """Mark one tick as run; returns its index."""
        index = self.ticks
        self.ticks += 1
        return index

    def reset_stats(self) -> None:
        """Start a new measurement window (the grid and tick count are kept)."""
        self.late_ticks = 0
        self.skipped_ticks = 0
        self.max_lateness = 0.0
        self._lateness_sum = 0.0
        self._buckets = [0] * len(self._buckets)

    def stats(self) -> TickStats:
        wakes = sum(self._buckets)
        p99 = 0.0
        if wakes:
            target = 0.99 * wakes
            running = 0
            for i, n in enumerate(self._buckets):
                running += n
                if running >= target:
                    p99 = i / 10
                    break
        return TickStats(
            ticks=self.ticks,
            late_ticks=self.late_ticks,
            skipped_ticks=self.skipped_ticks,
            max_lateness_ms=self.max_lateness * 1000,
            p99_lateness_ms=p99,
            mean_lateness_ms=(self._lateness_sum / wakes * 1000) if wakes else 0.0,
        )
