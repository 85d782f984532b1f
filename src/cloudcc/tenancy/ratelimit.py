"""Token buckets keyed by tenant or API key: the flow control of the API (流控)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_WAIT = 3600.0  # seconds; the longest Retry-After ever given


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    burst: float  # bucket size
    tokens: float
    updated: float

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0.0 on success or the seconds to wait before retrying."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        if self.rate <= 0:
            return MAX_WAIT
        return min(MAX_WAIT, (cost - self.tokens) / self.rate)


class RateLimiter:
    """Many buckets, created on first use; idle buckets are forgotten to bound memory."""

    def __init__(
        self,
        default_rate: float,
        default_burst: float,
        max_buckets: int = 100_000,
        sweep_seconds: float = 60.0,
    ):
        self.default_rate = default_rate
        self.default_burst = default_burst
        self.max_buckets = max_buckets
        # This node's part of every rate: 1/N on a cluster of N nodes, so that the nodes
        # together admit the configured rate (cloudcc.cluster.calls sets it).
        self.share = 1.0
        self._buckets: dict[str, TokenBucket] = {}
        # Full buckets are forgotten every sweep_seconds (a new one starts full: nothing is
        # lost), so the table follows the keys active lately, not every key ever seen.
        self.sweep_seconds = sweep_seconds
        self._swept = 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str, now: float, rate: float | None = None) -> float:
        """0.0 if allowed, else the Retry-After in seconds."""
        bucket = self._buckets.get(key)
        r = (rate if rate is not None else self.default_rate) * self.share
        if now - self._swept >= self.sweep_seconds:
            self._swept = now
            self._forget_full(now)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._evict(now)
            burst = self._burst(r)
            bucket = self._buckets[key] = TokenBucket(r, burst, burst, now)
        elif bucket.rate != r:
            bucket.rate = r
            bucket.burst = self._burst(r)
            bucket.tokens = min(bucket.tokens, bucket.burst)
        return bucket.take(now)

    def _burst(self, rate: float) -> float:
        return max(self.default_burst * (rate / self.default_rate), 1.0)

    def _forget_full(self, now: float) -> int:
        full = [
            k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * b.rate >= b.burst
        ]
        for key in full:
            del self._buckets[key]
        return len(full)

    def _evict(self, now: float) -> None:
        if not self._forget_full(now):
            for key in list(self._buckets)[: self.max_buckets // 10]:
                del self._buckets[key]
