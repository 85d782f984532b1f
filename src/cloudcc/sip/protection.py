"""Flood, scanner and overload protection, sans-I/O.

Per-source token buckets drop floods before parsing; repeated digest failures ban a
source for a while (scanner defence, like Kamailio's pike + a fail2ban rule); new
requests from a source that has not proved who it is (no digest success, not a trunk)
have a lower rate of their own, and a source that keeps exceeding it is banned too; call
admission answers 503 with Retry-After when the node is over its concurrent-call or
calls-per-second limit (RFC 3261 §21.5.4). Every table is bounded, so a spoofed
flood from many addresses cannot grow memory without limit.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProtectionSettings:
    """Limits; ``None`` disables the check. Defaults suit an edge facing the Internet."""

    messages_per_second: float | None = 200.0  # per source IP, sustained
    burst: float = 400.0  # bucket depth per source IP
    exempt_sources: frozenset[str] = frozenset()  # e.g. the Kamailio in front, trunks
    auth_failures_to_ban: int = 10  # within ``auth_failure_window``
    auth_failure_window: float = 60.0
    ban_seconds: float = 600.0
    # new requests per second from a source not authenticated recently (scans, floods)
    unauthenticated_per_second: float | None = 20.0
    unauthenticated_burst: float = 100.0
    flood_drops_to_ban: int = 200  # requests over that limit within ``auth_failure_window``
    trusted_seconds: float = 3600.0  # a digest success or trunk call trusts its source so long
    max_calls: int | None = None  # concurrent calls on this endpoint
    max_calls_per_second: float | None = None
    retry_after: int = 5  # seconds, in 503 responses
    max_dialogs_per_source: int = 200
    max_tracked_sources: int = 50_000
    max_transactions: int = 500_000
    max_connections: int = 10_000


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def wait_for(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens will be there."""
        return max(0.0, (cost - self.tokens) / self.rate) if self.rate else float("inf")


class SourceLimiter:
    """One token bucket per source IP, least recently seen evicted beyond the cap."""

    def __init__(self, settings: ProtectionSettings) -> None:
        self.settings = settings
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.dropped = 0

    def allow(self, source: str, now: float) -> bool:
        rate = self.settings.messages_per_second
        if rate is None or source in self.settings.exempt_sources:
            return True
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = TokenBucket(rate, self.settings.burst, now)
            self._buckets[source] = bucket
            if len(self._buckets) > self.settings.max_tracked_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
        if bucket.take(now):
            return True
        self.dropped += 1
        return False


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)
    banned_until: float = 0.0


class BanList:
    """Bans a source after ``auth_failures_to_ban`` failed digests within the window."""

    def __init__(self, settings: ProtectionSettings) -> None:
        self.settings = settings
        self._sources: OrderedDict[str, _Failures] = OrderedDict()

    def is_banned(self, source: str, now: float) -> bool:
        entry = self._sources.get(source)
        return entry is not None and entry.banned_until > now

    def record_failure(self, source: str, now: float) -> bool:
        """Count one authentication failure; True when the source is now banned."""
        if source in self.settings.exempt_sources:
            return False
        entry = self._sources.get(source)
        if entry is None:
            entry = self._sources[source] = _Failures()
            if len(self._sources) > self.settings.max_tracked_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        window_start = now - self.settings.auth_failure_window
        entry.times = [t for t in entry.times if t > window_start]
        entry.times.append(now)
        if len(entry.times) >= self.settings.auth_failures_to_ban:
            entry.banned_until = now + self.settings.ban_seconds
            entry.times.clear()
            return True
        return False

    def ban(self, source: str, now: float) -> None:
        """Ban ``source`` for ``ban_seconds`` from ``now`` (e.g. a persistent flooder)."""
        entry = self._sources.get(source)
        if entry is None:
            entry = self._sources[source] = _Failures()
            if len(self._sources) > self.settings.max_tracked_sources:
                self._sources.popitem(last=False)
        entry.banned_until = now + self.settings.ban_seconds
        entry.times.clear()

    def record_success(self, source: str) -> None:
        entry = self._sources.get(source)
        if entry is not None and entry.banned_until == 0.0:
            del self._sources[source]

    def banned(self, now: float) -> list[str]:
        return [s for s, e in self._sources.items() if e.banned_until > now]


class Flood(enum.Enum):
    """What to do with a new request from a source that has not authenticated."""

    ALLOW = "allow"
    DROP = "drop"  # over the source's unauthenticated rate: no answer
    BAN = "ban"  # this drop made the source a persistent offender: banned from now


class UnauthenticatedLimiter:
    """A rate for new requests from sources that have not authenticated lately.

    A source that passed digest authentication or carried a trunk's call is trusted for
    ``trusted_seconds`` and passes freely; the others share nothing but their own bucket,
    and ``flood_drops_to_ban`` drops within the window bans the source on ``bans``.
    """

    def __init__(self, settings: ProtectionSettings, bans: BanList) -> None:
        self.settings = settings
        self.bans = bans
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._drops: OrderedDict[str, tuple[float, int]] = OrderedDict()  # window start, count
        self._trusted: OrderedDict[str, float] = OrderedDict()  # source -> trusted until
        self.dropped = 0
        self.banned = 0

    def trust(self, source: str, now: float) -> None:
        self._trusted[source] = now + self.settings.trusted_seconds
        self._trusted.move_to_end(source)
        if len(self._trusted) > self.settings.max_tracked_sources:
            self._trusted.popitem(last=False)

    def is_trusted(self, source: str, now: float) -> bool:
        until = self._trusted.get(source)
        if until is None:
            return False
        if until > now:
            return True
        del self._trusted[source]
        return False

    def check(self, source: str, now: float) -> Flood:
        settings = self.settings
        rate = settings.unauthenticated_per_second
        if rate is None or source in settings.exempt_sources or self.is_trusted(source, now):
            return Flood.ALLOW
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = TokenBucket(rate, settings.unauthenticated_burst, now)
            if len(self._buckets) > settings.max_tracked_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
        if bucket.take(now):
            return Flood.ALLOW
        self.dropped += 1
        start, count = self._drops.get(source, (now, 0))
        if now - start > settings.auth_failure_window:
            start, count = now, 0
        count += 1
        if count >= settings.flood_drops_to_ban:
            self._drops.pop(source, None)
            self.bans.ban(source, now)
            self.banned += 1
            return Flood.BAN
        self._drops[source] = (start, count)
        self._drops.move_to_end(source)
        if len(self._drops) > settings.max_tracked_sources:
            self._drops.popitem(last=False)
        return Flood.DROP


class CallAdmission:
    """Concurrent-call and calls-per-second limits; ``admit`` returns None or Retry-After."""

    def __init__(self, settings: ProtectionSettings, now: float = 0.0) -> None:
        self.settings = settings
        rate = settings.max_calls_per_second
        self._cps = TokenBucket(rate, max(1.0, rate), now) if rate else None
        self.rejected = 0

    def admit(self, active_calls: int, now: float) -> int | None:
        limit = self.settings.max_calls
        if limit is not None and active_calls >= limit:
            self.rejected += 1
            return self.settings.retry_after
        if self._cps is not None and not self._cps.take(now):
            self.rejected += 1
            return max(1, min(self.settings.retry_after, round(self._cps.wait_for() + 0.5)))
        return None


class Protection:
    """The protections one endpoint applies, with their shared settings."""

    def __init__(self, settings: ProtectionSettings | None = None, now: float = 0.0) -> None:
        self.settings = settings or ProtectionSettings()
        self.limiter = SourceLimiter(self.settings)
        self.bans = BanList(self.settings)
        self.unauthenticated = UnauthenticatedLimiter(self.settings, self.bans)
        self.admission = CallAdmission(self.settings, now)
        self._dialogs: dict[str, int] = {}

    def accept_packet(self, source: str, now: float) -> bool:
        """Whether to process a message from ``source`` at all (ban, then rate)."""
        if self.bans.is_banned(source, now):
            return False
        return self.limiter.allow(source, now)

    def dialogs_of(self, source: str) -> int:
        return self._dialogs.get(source, 0)

    def dialog_opened(self, source: str) -> bool:
        """Count a dialog for ``source``; False (and nothing counted) over the cap."""
        count = self._dialogs.get(source, 0)
        if count >= self.settings.max_dialogs_per_source and (
            source not in self.settings.exempt_sources
        ):
            return False
        self._dialogs[source] = count + 1
        return True

    def dialog_closed(self, source: str) -> None:
        count = self._dialogs.get(source, 0) - 1
        if count > 0:
            self._dialogs[source] = count
        else:
            self._dialogs.pop(source, None)
