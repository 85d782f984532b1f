"""Password guessing: per-source and per-account throttling, backoff and lockout.

- Each source address has a token bucket of failed attempts (``source_per_minute``).
- Each account name (tenant + username, whether or not the user exists, so the answers
  never tell which users exist) counts its failures inside a window (``window_seconds``):
  after ``free_failures`` every next attempt waits ``2^(n - free_failures)`` seconds (capped
  at ``max_backoff_seconds``), and at ``lock_after`` failures the account is locked for
  ``lock_seconds`` or until an admin unlocks it: at most ``lock_after`` guesses an hour.
  While it must wait, no password is checked.
- The counts live in the database: every node and a restarted one see them.
- The audit log gets one ``login_failed`` entry when a window's first failure happens and
  one ``login_locked`` entry when the lock engages (with the count), not a row per guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.tenancy.credentials import SecretBox
from cloudcc.tenancy.exceptions import RateLimited
from cloudcc.tenancy.ratelimit import TokenBucket
from cloudcc.tenancy.tables import LoginThrottle


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    source_per_minute: float = 30.0
    source_burst: int = 30
    free_failures: int = 5
    max_backoff_seconds: float = 2.0
    lock_after: int = 20
    window_seconds: float = 3600.0
    lock_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed attempt did to its account's count (for the audit log)."""

    failures: int
    first: bool  # the first of its window
    locked: bool  # this failure engaged the lock


class LoginGuard:
    def __init__(self, box: SecretBox, policy: LoginPolicy | None = None) -> None:
        self.box = box
        self.policy = policy or LoginPolicy()
        self._sources: dict[str, TokenBucket] = {}
        self._swept = 0.0  # full buckets (addresses that stopped failing) are forgotten

    def account(self, tenant_slug: str, username: str) -> str:
        """The account's key in the table: a keyed hash, so the table names nobody."""
        return self.box.tag(f"login|{tenant_slug}|{username.casefold()}", 40)

    def check_source(self, ip: str | None, now: float) -> None:
        """Refuse an address that spent its failed attempts (successes cost nothing)."""
        bucket = self._sources.get(ip or "-")
        if bucket is None:
            return
        bucket.take(now, 0.0)  # refill only
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / bucket.rate
            raise RateLimited("too many failed logins from this address", wait)

    def source_failed(self, ip: str | None, now: float) -> None:
        p = self.policy
        key = ip or "-"
        if now - self._swept >= 60.0:
            self._swept = now
            self._sources = {
                k: b
                for k, b in self._sources.items()
                if b.tokens + (now - b.updated) * b.rate < b.burst
            }
        bucket = self._sources.get(key)
        if bucket is None:
            if len(self._sources) >= 100_000:
                self._sources.clear()  # crude, but bounded: the account counts persist
            burst = float(p.source_burst)
            bucket = self._sources[key] = TokenBucket(p.source_per_minute / 60.0, burst, burst, now)
        bucket.take(now)

    async def check_account(self, s: AsyncSession, account: str, now: datetime) -> int:
        """Raise RateLimited while the account must wait; else its failures so far."""
        row = await s.get(LoginThrottle, account)
        if row is None or self._expired(row, now):
            return 0
        if row.locked_until is not None and row.locked_until > now:
            raise RateLimited(
                "too many failed logins: the account is locked; try again later or ask an "
                "admin to unlock it",
                (row.locked_until - now).total_seconds(),
            )
        p = self.policy
        if row.failures >= p.free_failures:
            backoff = min(p.max_backoff_seconds, 2.0 ** (row.failures - p.free_failures))
            ready = row.last_failure_at + timedelta(seconds=backoff)
            if ready > now:
                raise RateLimited(
                    "too many failed logins for this account: wait before trying again",
                    (ready - now).total_seconds(),
                )
        return row.failures

    async def failed(self, s: AsyncSession, account: str, now: datetime) -> Failure:
        p = self.policy
        row = await s.get(LoginThrottle, account, with_for_update=True)
        if row is None:
            row = LoginThrottle(
                account=account, failures=0, window_start=now, last_failure_at=now, reported=0
            )
            s.add(row)
        elif self._expired(row, now):
            row.failures, row.window_start, row.locked_until, row.reported = 0, now, None, 0
        row.failures += 1
        row.last_failure_at = now
        locked = row.failures >= p.lock_after and row.locked_until is None
        if locked:
            row.locked_until = now + timedelta(seconds=p.lock_seconds)
        return Failure(row.failures, row.failures == 1, locked)

    async def succeeded(self, s: AsyncSession, account: str) -> int:
        """Forget the account's failures; how many there were."""
        row = await s.get(LoginThrottle, account)
        if row is None:
            return 0
        failures = row.failures
        await s.delete(row)
        return failures

    async def unlock(self, s: AsyncSession, account: str) -> bool:
        result = await s.execute(delete(LoginThrottle).where(LoginThrottle.account == account))
        return bool(getattr(result, "rowcount", 0))

    async def locked_until(self, s: AsyncSession, account: str, now: datetime) -> datetime | None:
        until = await s.scalar(
            select(LoginThrottle.locked_until).where(LoginThrottle.account == account)
        )
        return until if until is not None and until > now else None

    def _expired(self, row: LoginThrottle, now: datetime) -> bool:
        window_over = row.window_start + timedelta(seconds=self.policy.window_seconds) < now
        lock_over = row.locked_until is None or row.locked_until <= now
        return window_over and lock_over


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
