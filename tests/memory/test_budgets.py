"""Structures that grow with traffic stay under their byte budgets when fed far more."""

from __future__ import annotations

import random
import string
import sys
import tracemalloc

from cloudcc.bus import Event, LocalBus
from cloudcc.events.audience import ContactAudience
from cloudcc.sizing import ByteRing, approx_size
from cloudcc.tenancy.ratelimit import RateLimiter

MB = 1024 * 1024


_TEXT = "".join(random.Random(0).choices(string.ascii_letters + " ", k=4096))


def _words(rng: random.Random, n: int) -> str:
    start = rng.randrange(len(_TEXT) - n) if n < len(_TEXT) else 0
    return _TEXT[start : start + n] + str(rng.random())  # a new string object each time


def _deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Real CPython size by traversal, to check the estimate."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(_deep_size(v, seen) for v in obj)
    return size


def test_approx_size_is_within_a_small_factor_of_the_real_size() -> None:
    rng = random.Random(1)
    for n in (0, 3, 30):
        data = {
            "contact_id": f"c-{rng.random()}",
            "text": _words(rng, 200 * n),
            "agents": [f"a{i}" for i in range(n)],
            "nested": {"n": n, "f": 1.5, "ok": True, "none": None},
        }
        real = _deep_size(data)
        assert real / 2 <= approx_size(data) <= real * 2


def test_byte_ring_stays_under_budget_and_keeps_the_newest() -> None:
    ring: ByteRing[str] = ByteRing(10_000)
    dropped = 0
    for i in range(10_000):
        dropped += len(ring.append(f"{i}:" + "x" * (i % 300)))
        assert ring.nbytes <= 10_000
    assert ring.last().startswith("9999:")
    assert dropped + len(ring) == 10_000
    ring.append("y" * 50_000)  # alone above the budget: still kept
    assert len(ring) == 1 and ring.nbytes > 10_000
    counted: ByteRing[int] = ByteRing(10**9, max_items=5)
    for i in range(20):
        counted.append(i)
    assert list(counted) == [15, 16, 17, 18, 19]


def test_bus_history_stays_under_its_byte_budget() -> None:
    rng = random.Random(2)
    budget = 256 * 1024
    bus = LocalBus(history=10**9, history_bytes=budget)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for i in range(8_000):  # ~8 MB of events, 30 times the budget
            tenant = f"t{i % 7}"
            bus.publish(
                tenant, "contact.updated", {"contact_id": f"c{i}", "note": _words(rng, 900)}
            )
            assert bus.history_bytes <= budget
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held - base < 2 * budget, f"{(held - base) / MB:.2f} MB held for 0.25 MB"
    # Every tenant still resumes from its recent events; an older position reports a gap.
    events, complete = bus.since("t3", bus.last_seq("t3") - 5)
    assert complete and len(events) == 5
    events, complete = bus.since("t3", 1)
    assert not complete and events and events[-1].seq == bus.last_seq("t3")


def test_bus_history_emptied_by_the_budget_reports_a_gap() -> None:
    bus = LocalBus(history_bytes=65_536)
    bus.publish("quiet", "agent.updated", {"id": "a1"})
    bus.publish("quiet", "agent.updated", {"id": "a1"})
    for i in range(2000):
        bus.publish("loud", "agent.updated", {"id": f"a{i}", "pad": "p" * 200})
    assert bus.since("quiet", 0) == ([], False)  # pushed out: the client must re-read
    assert bus.since("quiet", 2) == ([], True)  # up to date: nothing lost


def test_contact_audience_stays_under_its_byte_budget() -> None:
    budget = 128 * 1024
    audience = ContactAudience(budget)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        seq = 0
        for i in range(10_000):  # ~20 times the contacts and events the budget holds
            contact = {"contact_id": f"contact-{i}"}
            seq += 2
            first = Event(
                "t1", "contact.assigned", {**contact, "agent_id": f"agent-{i % 50}"}, seq - 1
            )
            audience.observe(first)
            audience.observe(Event("t1", "leg.held", contact, seq))
            assert audience.nbytes <= budget
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held - base < 2 * budget, f"{(held - base) / MB:.2f} MB held for 0.125 MB"
    last = Event("t1", "leg.held", {"contact_id": "contact-9999"}, seq + 1)
    audience.observe(last)
    assert audience(last) == {"agent-49"}  # recent contacts are still followed
    old = Event("t1", "leg.held", {"contact_id": "contact-0"}, 2)
    assert audience(old) == frozenset()  # pushed out: falls back to the agents it names


def test_rate_limiter_forgets_idle_keys() -> None:
    limiter = RateLimiter(default_rate=10.0, default_burst=20, sweep_seconds=60.0)
    for i in range(5000):  # one request each from many addresses, then silence
        assert limiter.check(f"10.0.{i // 256}.{i % 256}", now=1.0) == 0.0
    assert len(limiter) == 5000
    for _ in range(30):  # a busy key keeps its bucket (and its debt)
        limiter.check("busy", now=100.0)
    assert len(limiter) == 1
    assert limiter.check("busy", now=100.0) > 0  # still limited: nothing was forgotten early
