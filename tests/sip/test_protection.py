"""Protection cores: per-source rate limit, bans after auth failures, call admission."""

from __future__ import annotations

from cloudcc.sip.protection import (
    CallAdmission,
    Flood,
    Protection,
    ProtectionSettings,
    TokenBucket,
)


def test_token_bucket_refills_at_its_rate():
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.take(0.1)  # one token after 100 ms at 10/s


def test_flooding_source_is_limited_while_another_passes():
    p = Protection(ProtectionSettings(messages_per_second=100, burst=50))
    flood = sum(p.accept_packet("203.0.113.9", i / 10_000) for i in range(5000))  # 0.5 s
    assert flood <= 50 + 100 * 0.5 + 1
    assert p.accept_packet("198.51.100.7", 0.5)
    assert p.limiter.dropped >= 4900


def test_exempt_sources_are_never_limited():
    p = Protection(
        ProtectionSettings(messages_per_second=1, burst=1, exempt_sources=frozenset({"10.0.0.1"}))
    )
    assert all(p.accept_packet("10.0.0.1", 0.0) for _ in range(100))


def test_repeated_auth_failures_ban_the_source_for_a_while():
    p = Protection(
        ProtectionSettings(auth_failures_to_ban=3, auth_failure_window=60, ban_seconds=300)
    )
    assert not p.bans.record_failure("203.0.113.9", 0.0)
    assert not p.bans.record_failure("203.0.113.9", 1.0)
    assert p.bans.record_failure("203.0.113.9", 2.0)
    assert not p.accept_packet("203.0.113.9", 3.0)
    assert p.accept_packet("203.0.113.9", 303.0)


def test_failures_outside_the_window_do_not_add_up():
    p = Protection(ProtectionSettings(auth_failures_to_ban=3, auth_failure_window=10))
    for t in (0.0, 20.0, 40.0, 60.0):
        assert not p.bans.record_failure("203.0.113.9", t)


def test_admission_over_call_limit_and_cps_returns_retry_after():
    limit = CallAdmission(ProtectionSettings(max_calls=2, retry_after=7))
    assert limit.admit(1, 0.0) is None
    assert limit.admit(2, 0.0) == 7
    cps = CallAdmission(ProtectionSettings(max_calls_per_second=2), 0.0)
    results = [cps.admit(0, 0.0) for _ in range(4)]
    assert results[:2] == [None, None] and all(r is not None and r >= 1 for r in results[2:])


def test_dialogs_per_source_are_capped_and_released():
    p = Protection(ProtectionSettings(max_dialogs_per_source=2))
    assert p.dialog_opened("a") and p.dialog_opened("a") and not p.dialog_opened("a")
    p.dialog_closed("a")
    assert p.dialog_opened("a")


def test_source_table_is_bounded():
    p = Protection(ProtectionSettings(max_tracked_sources=100))
    for i in range(1000):
        p.accept_packet(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(p.limiter._buckets) == 100


def test_unauthenticated_flood_is_dropped_then_banned_while_trusted_sources_pass():
    p = Protection(ProtectionSettings(unauthenticated_per_second=10, unauthenticated_burst=5,
                                      flood_drops_to_ban=20, ban_seconds=100))  # fmt: skip
    p.unauthenticated.trust("198.51.100.7", 0.0)
    verdicts = [p.unauthenticated.check("203.0.113.9", i / 100) for i in range(40)]
    assert verdicts[:5] == [Flood.ALLOW] * 5
    assert Flood.DROP in verdicts and verdicts.count(Flood.BAN) == 1
    assert not p.accept_packet("203.0.113.9", 1.0)  # banned like a password guesser
    assert p.accept_packet("203.0.113.9", 101.0)
    assert all(p.unauthenticated.check("198.51.100.7", 0.0) is Flood.ALLOW for _ in range(100))
    assert p.unauthenticated.check("198.51.100.7", 3601.0) is Flood.ALLOW  # the burst again


def test_unauthenticated_drops_outside_the_window_do_not_ban():
    p = Protection(ProtectionSettings(unauthenticated_per_second=1, unauthenticated_burst=1,
                                      flood_drops_to_ban=3, auth_failure_window=10))  # fmt: skip
    assert p.unauthenticated.check("203.0.113.9", 0.0) is Flood.ALLOW
    assert p.unauthenticated.check("203.0.113.9", 0.1) is Flood.DROP
    assert p.unauthenticated.check("203.0.113.9", 0.2) is Flood.DROP
    assert p.unauthenticated.check("203.0.113.9", 20.5) is Flood.ALLOW
    assert p.unauthenticated.check("203.0.113.9", 20.6) is Flood.DROP  # a new window
    assert p.unauthenticated.check("203.0.113.9", 20.7) is Flood.DROP
    assert not p.bans.is_banned("203.0.113.9", 21.0)
