"""The NATS JetStream event bus between nodes: one order and one numbering on every node,
tenant scoping, hooks, resumption from another node, and a queue while NATS is away."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cloudcc.bus.nats import NatsBus


async def started(url: str, node: str, stream: str, **kw: Any) -> NatsBus:
    bus = NatsBus(url, node, stream=stream, **kw)
    await bus.start()
    return bus


async def until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_events_reach_every_node_in_one_order(nats_url: str, stream_name: str) -> None:
    a = await started(nats_url, "a", stream_name)
    b = await started(nats_url, "b", stream_name)
    try:
        hooks_a: list[tuple[str, int]] = []
        hooks_b: list[tuple[str, int]] = []
        once_a: list[int] = []
        once_b: list[int] = []
        a.on(lambda e: e.type.startswith("user."), lambda e: hooks_a.append((e.type, e.seq)))
        b.on(lambda e: e.type.startswith("user."), lambda e: hooks_b.append((e.type, e.seq)))
        a.on(lambda e: True, lambda e: once_a.append(e.seq), origin_only=True)
        b.on(lambda e: True, lambda e: once_b.append(e.seq), origin_only=True)
        sub_a = a.subscribe("t1")
        sub_b = b.subscribe("t1")
        other = b.subscribe("t2")
        for i in range(20):
            (a if i % 2 else b).publish("t1", "queue.updated", {"i": i})
        a.publish("t1", "user.created", {"id": "u1"})
        got_a = [await asyncio.wait_for(sub_a.get(), 5) for _ in range(21)]
        got_b = [await asyncio.wait_for(sub_b.get(), 5) for _ in range(21)]
        # Every node sees the same events with the same numbers, in the same order.
        assert [(e.seq, e.type, e.data) for e in got_a] == [(e.seq, e.type, e.data) for e in got_b]
        seqs = [e.seq for e in got_a]
        assert seqs == sorted(seqs) and len(set(seqs)) == 21
        assert {e.origin for e in got_a} == {"a", "b"}
        # Each node's order of its own events is kept.
        assert [e.data["i"] for e in got_a if e.origin == "a" and "i" in e.data] == list(
            range(1, 20, 2)
        )
        assert a.last_seq("t1") == b.last_seq("t1") == seqs[-1]
        # Hooks run on every node once, with the event's number; origin-only hooks run on the
        # publishing node only, so that each event is handled once in the cluster.
        await until(lambda: hooks_a and hooks_b)
        assert hooks_a == hooks_b == [("user.created", seqs[-1])]
        assert sorted(once_a + once_b) == seqs
        assert set(once_a) == {e.seq for e in got_a if e.origin == "a"}
        # Another tenant's subscriber saw nothing.
        assert other.queue.empty()
    finally:
        await a.stop()
        await b.stop()


async def test_a_node_started_later_resumes_from_a_seq_seen_elsewhere(
    nats_url: str, stream_name: str
) -> None:
    a = await started(nats_url, "a", stream_name)
    try:
        for i in range(5):
            a.publish("t1", "contact.created", {"i": i})
            a.publish("t2", "contact.created", {"i": i})
        await until(lambda: a.pending == 0 and len(a.since("t1", 0)[0]) == 5)
        events, complete = a.since("t1", 0)
        seen = events[1].seq  # a client on node a saw two events
        c = await started(nats_url, "c", stream_name)
        try:
            rest, complete = c.since("t1", seen)
            assert complete
            assert [e.data["i"] for e in rest] == [2, 3, 4]
            assert [e.seq for e in rest] == [e.seq for e in events[2:]]
            assert c.last_seq("t1") == a.last_seq("t1")
            assert all(e.tenant_id == "t1" for e in rest)
        finally:
            await c.stop()
    finally:
        await a.stop()


async def test_history_trimmed_is_reported_incomplete(nats_url: str, stream_name: str) -> None:
    a = await started(nats_url, "a", stream_name, history=3)
    try:
        for i in range(6):
            a.publish("t1", "x", {"i": i})
        await until(lambda: a.pending == 0 and a.since("t1", 0)[0][-1:] and True)
        await until(lambda: [e.data["i"] for e in a.since("t1", 0)[0]] == [3, 4, 5])
        first = a.since("t1", 0)[0][0].seq
        assert a.since("t1", 0)[1] is False  # three events were pushed out
        assert a.since("t1", first - 1)[1] is True
    finally:
        await a.stop()


async def test_events_published_while_nats_is_unreachable_are_sent_later(
    nats_url: str, stream_name: str
) -> None:
    import nats

    a = await started(nats_url, "a", stream_name)
    b = await started(nats_url, "b", stream_name)
    try:
        sub = b.subscribe("t1")
        await a._nc.close()  # a loses NATS (its connection is gone, not the server)
        for i in range(3):
            a.publish("t1", "x", {"i": i})
        await asyncio.sleep(0.3)
        assert a.pending == 3 and sub.queue.empty()
        a._nc = await nats.connect(nats_url)  # a new connection, as after a reconnection
        a._js = a._nc.jetstream()
        a._wake.set()
        got = [await asyncio.wait_for(sub.get(), 5) for _ in range(3)]
        assert [e.data["i"] for e in got] == [0, 1, 2]
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.parametrize("tenant", ["t1"])
async def test_subjects_are_per_tenant(nats_url: str, stream_name: str, tenant: str) -> None:
    import nats

    a = await started(nats_url, "a", stream_name)
    try:
        a.publish(tenant, "x", {})
        await until(lambda: a.pending == 0)
        nc = await nats.connect(nats_url)
        info = await nc.jetstream().stream_info(stream_name, subjects_filter=">")
        await nc.close()
        assert set(info.state.subjects or {}) == {f"{stream_name}.{tenant}"}
    finally:
        await a.stop()
