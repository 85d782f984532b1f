"""The event surface's cores without sockets: type patterns, scopes, audiences, the resumable
cursor (property-tested against the bus), back-off and the address policy."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcc.bus import LocalBus
from cloudcc.errors import Invalid, PermissionDenied
from cloudcc.events import Feed, RetryPolicy, Scope, TargetPolicy, TypeFilter, select_for
from cloudcc.events.audience import ContactAudience
from cloudcc.events.model import Selection
from cloudcc.events.retry import Verdict, judge
from cloudcc.events.stream import CutOff, poll
from cloudcc.tenancy.model import Permission, Principal, PrincipalKind


def principal(*perms: Permission, agent_id: str | None = None) -> Principal:
    return Principal(
        "t1", PrincipalKind.USER, "u1", "u", frozenset(p.value for p in perms), agent_id=agent_id
    )


def test_type_patterns_match_with_wildcards() -> None:
    f = TypeFilter.parse("contact.*, agent.state_changed,*.deleted")
    assert f is not None
    assert f.matches("contact.offered") and f.matches("contact.leg.added")
    assert f.matches("agent.state_changed") and f.matches("queue.deleted")
    assert not f.matches("agent.created") and not f.matches("contacts.offered")
    assert TypeFilter.parse("") is None and TypeFilter.parse(None) is None
    assert TypeFilter(["*"]).matches("anything.at.all")
    for bad in ("Contact.*", "contact..x", "contact offered", ".x", "x.", "a" * 101):
        with pytest.raises(Invalid):
            TypeFilter([bad])


def test_scope_choice_follows_permissions() -> None:
    agent = principal(Permission.CALLS_OWN, agent_id="a1")
    sup = principal(Permission.CALLS_MONITOR, Permission.CALLS_OWN)
    admin = principal(Permission.EVENTS_TENANT, Permission.CALLS_MONITOR)
    assert select_for(agent).scope is Scope.AGENT and select_for(agent).agent_id == "a1"
    assert select_for(sup).scope is Scope.SUPERVISOR
    assert select_for(admin).scope is Scope.TENANT
    assert select_for(sup, "agent", "a2").agent_id == "a2"
    with pytest.raises(PermissionDenied):
        select_for(agent, "tenant")
    with pytest.raises(PermissionDenied):
        select_for(agent, "supervisor")
    with pytest.raises(PermissionDenied):
        select_for(agent, "agent", "a2")
    with pytest.raises(PermissionDenied):
        select_for(principal(Permission.AGENTS_READ))
    with pytest.raises(Invalid):
        select_for(admin, "agent")  # not an agent itself and no agent_id
    with pytest.raises(Invalid):
        select_for(admin, "tenant", "a1")
    with pytest.raises(Invalid):
        select_for(admin, "everything")


def test_agent_audience_is_decided_when_published() -> None:
    bus = LocalBus()
    audience = ContactAudience()
    audience.install(bus)
    bus.publish("t1", "contact.queued", {"contact_id": "c1", "queue": "q"})
    assigned = bus.publish("t1", "contact.assigned", {"contact_id": "c1", "agent_id": "a1"})
    held = bus.publish("t1", "leg.held", {"contact_id": "c1"})
    other_tenant = bus.publish("t2", "leg.held", {"contact_id": "c1"})  # same id, other tenant
    conf = bus.publish("t1", "contact.conferenced", {"contact_id": "c1", "agent_ids": ["a2"]})
    after = bus.publish("t1", "leg.added", {"contact_id": "c1"})
    queued = bus.since("t1", 0)[0][0]
    assert audience(queued) == frozenset()
    assert audience(assigned) == audience(held) == {"a1"}
    assert audience(other_tenant) == frozenset()
    assert audience(conf) == audience(after) == {"a1", "a2"}
    assert audience(bus.publish("t1", "agent.updated", {"id": "a3"})) == {"a3"}
    # Ring-all: offered to two agents, who see the offer but do not hold the contact.
    base = {"contact_id": "c5", "agent_id": None, "queue": "support"}
    offered = bus.publish("t1", "contact.offered", {**base, "agents": ["a7", "a8"]})
    ringing = bus.publish("t1", "leg.ringing", {**base})
    connected = bus.publish("t1", "contact.connected", {**base, "agent_id": "a7"})
    held = bus.publish("t1", "leg.held", {**base})
    assert audience(offered) == {"a7", "a8"} and audience(ringing) == frozenset()
    assert audience(connected) == audience(held) == {"a7"}


def test_each_agent_stream_gets_only_its_own_agents_events() -> None:
    bus = LocalBus()
    audience = ContactAudience()
    audience.install(bus)
    feeds = {}
    for agent in ("a1", "a2", "a3"):
        selection = Selection(Scope.AGENT, agent)
        feeds[agent] = Feed(bus, "t1", lambda e, s=selection: s.accepts(e, audience))
    for agent in ("a2", "a1", "a3", "a1"):
        bus.publish("t1", "agent.state_changed", {"id": agent, "agent_id": agent})
    got = {a: [f.ready() for _ in range(3)] for a, f in feeds.items()}
    seqs = {a: [m.seq for m in ms if m is not None] for a, ms in got.items()}  # type: ignore[union-attr]
    assert seqs == {"a1": [2, 4], "a2": [1], "a3": [3]}


@settings(max_examples=60, deadline=None)
@given(
    before=st.integers(0, 40),
    steps=st.lists(st.one_of(st.integers(1, 5), st.just(0)), max_size=30),
    since_back=st.integers(0, 45),
    history=st.integers(5, 60),
)
def test_feed_replays_then_streams_without_gap_or_duplicate(
    before: int, steps: list[int], since_back: int, history: int
) -> None:
    """Whatever the history size and resume point: either every event after ``since`` in
    order, or a gap message whose position is exactly where the events resume."""

    async def scenario() -> None:
        bus = LocalBus(history=history)
        odd = lambda e: e.data["n"] % 2 == 1  # noqa: E731 - a filter like a scope's
        for n in range(before):
            bus.publish("t", "x", {"n": n})
        since = max(0, bus.last_seq("t") - since_back)
        expected = [n for n in range(since, 10_000) if n % 2 == 1]
        feed = Feed(bus, "t", odd, since, maxsize=10_000)
        got: list[int] = []
        gap_at: int | None = None
        n = before
        for step in [*steps, 0]:
            for _ in range(step):
                bus.publish("t", "x", {"n": n})
                n += 1
            while (message := feed.ready()) is not None:
                if isinstance(message, dict):
                    assert message["type"] == "stream.gap" and gap_at is None and not got
                    gap_at = message["seq"]
                else:
                    got.append(message.data["n"])
        assert feed.idle_position() == bus.last_seq("t")
        feed.close()
        start = since if gap_at is None else gap_at  # n of the event with seq s is s - 1
        assert got == [m for m in expected if start <= m < n]
        assert gap_at is None or gap_at > since

    asyncio.run(scenario())


async def test_feed_cut_off_when_its_consumer_falls_behind() -> None:
    bus = LocalBus()
    feed = Feed(bus, "t", lambda e: True, None, maxsize=3)
    for n in range(5):
        bus.publish("t", "x", {"n": n})
    got = [feed.ready(), feed.ready(), feed.ready()]
    assert [m.data["n"] for m in got if not isinstance(m, dict) and m is not None] == [0, 1, 2]
    with pytest.raises(CutOff):
        feed.ready()
    assert feed.position == 3  # resume from here: events 4 and 5 are still in the history
    feed.close()


async def test_poll_pages_and_positions() -> None:
    bus = LocalBus()
    for n in range(10):
        bus.publish("t", "even" if n % 2 == 0 else "odd", {"n": n})
    accept = lambda e: e.type == "odd"  # noqa: E731
    page, nxt = await poll(bus, "t", accept, 0, limit=3)
    assert [m.data["n"] for m in page] == [1, 3, 5] and nxt == 6
    page, nxt = await poll(bus, "t", accept, nxt, limit=3)
    assert [m.data["n"] for m in page] == [7, 9] and nxt == 10
    page, nxt = await poll(bus, "t", accept, nxt, wait=0.05)
    assert page == [] and nxt == 10


def test_verdicts() -> None:
    assert judge(200) is judge(204) is Verdict.DELIVERED
    assert judge(None) is judge(500) is judge(503) is judge(429) is judge(408) is Verdict.RETRY
    assert judge(400) is judge(401) is judge(404) is judge(410) is judge(301) is Verdict.REJECTED


@given(failed=st.integers(1, 40), rand=st.floats(0, 1, exclude_max=True))
def test_back_off_grows_within_its_jitter_and_cap(failed: int, rand: float) -> None:
    policy = RetryPolicy(max_attempts=10, base=2.0, cap=300.0, jitter=0.5)
    raw = min(300.0, 2.0 * 2 ** (failed - 1))
    delay = policy.delay(failed, rand)
    assert raw / 2 <= delay <= raw
    assert policy.delay(failed, rand, retry_after=1000.0) == 300.0
    assert policy.delay(failed + 1, 0.0) >= policy.delay(failed, 0.0)


def test_address_policy() -> None:
    policy = TargetPolicy()
    public = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"]
    private = [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
    ]
    assert all(policy.allows(ipaddress.ip_address(a)) for a in public)
    assert not any(policy.allows(ipaddress.ip_address(a)) for a in private)
    opened = TargetPolicy(["127.0.0.0/8"])
    assert opened.allows(ipaddress.ip_address("127.0.0.1"))
    assert not opened.allows(ipaddress.ip_address("10.0.0.1"))
