"""When a webhook attempt is retried: the verdict on an answer and the back-off before the next.

Transport failures (timeout, refused or reset connection), 5xx, 408 and 429 are worth another
attempt; any other non-2xx answer is the receiver refusing the event and ends the delivery.
Delays grow exponentially with "equal jitter" (half fixed, half random) so that receivers
recovering from an outage are not hit by every sender at the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


def judge(status: int | None) -> Verdict:
    """The verdict on an HTTP status (None: no answer at all)."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status >= 500 or status in (408, 429):
        return Verdict.RETRY
    return Verdict.REJECTED


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 12
    base: float = 5.0  # seconds before the second attempt (before jitter)
    cap: float = 3600.0
    jitter: float = 0.5  # the randomised fraction of each delay

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base < 0 or self.cap < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("max_attempts >= 1, base and cap >= 0, jitter in [0, 1]")

    def delay(self, failed: int, rand: float, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failed``-th failed attempt; ``rand`` is uniform in [0, 1)."""
        raw = min(self.cap, self.base * 2.0 ** max(0, failed - 1))
        delay = raw * (1.0 - self.jitter) + raw * self.jitter * rand
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
