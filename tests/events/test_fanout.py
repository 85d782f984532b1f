"""Fan-out to many streams: an agent's event asks only that agent's streams, each event is
encoded once whatever the number of streams, and a tenant's stream cap grows with its seats."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable

import pytest
from websockets.asyncio.client import connect

from cloudcc.bus import Event, LocalBus
from tests.api.helpers import demo_admin
from tests.events.conftest import EventsNode
from tests.events.test_stream_caps import refused_after
from tests.events.test_stream_ws import (
    agent_login,
    events_until,
    hello,
    through,
    token_of,
    url,
)


def _agents(event: Event) -> Iterable[str]:
    agent_id = event.data.get("agent_id")
    return (agent_id,) if isinstance(agent_id, str) else ()


def test_an_agent_event_asks_only_its_agents_streams() -> None:
    bus = LocalBus()
    bus.route_by(_agents)
    asked: Counter[str] = Counter()

    def accepting(name: str) -> object:
        def accept(event: Event) -> bool:
            asked[name] += 1
            return event.data.get("agent_id") == name

        return accept

    subs = {f"a{i}": bus.subscribe("t1", accepting(f"a{i}"), key=f"a{i}") for i in range(1000)}
    other_tenant = bus.subscribe("t2", accepting("a7"), key="a7")
    board = bus.subscribe("t1", lambda e: True)  # a supervisor's: every event of its tenant
    everyone = bus.subscribe(None)  # an internal consumer of every tenant

    bus.publish("t1", "agent.state_changed", {"agent_id": "a7", "state": "ready"})

    # One keyed stream asked, not 1,000; the other tenant's stream of a7 not at all.
    assert asked == Counter({"a7": 1})
    assert subs["a7"].queue.qsize() == 1
    assert sum(s.queue.qsize() for s in subs.values()) == 1
    assert other_tenant.queue.qsize() == 0
    assert board.queue.qsize() == 1 and everyone.queue.qsize() == 1

    # An event naming nobody reaches the unkeyed subscriptions only.
    bus.publish("t1", "queue.updated", {"queue": "sales"})
    assert sum(asked.values()) == 1
    assert board.queue.qsize() == 2 and everyone.queue.qsize() == 2

    for sub in [*subs.values(), other_tenant, board, everyone]:
        sub.close()
    assert bus._keyed == {} and bus._subs == {}


def test_a_keyed_stream_that_overflows_is_cut_off_alone() -> None:
    bus = LocalBus()
    bus.route_by(_agents)
    slow = bus.subscribe("t1", None, maxsize=1, key="a1")
    other = bus.subscribe("t1", None, maxsize=10, key="a1")
    for _ in range(2):
        bus.publish("t1", "agent.state_changed", {"agent_id": "a1"})
    assert slow.overflowed and not other.overflowed
    assert other.queue.qsize() == 2
    assert bus._keyed[("t1", "a1")] == {other}


def test_a_keyed_subscription_needs_a_router() -> None:
    with pytest.raises(ValueError, match="router"):
        LocalBus().subscribe("t1", None, key="a1")


async def test_one_event_to_many_streams_is_encoded_once(events_node: EventsNode) -> None:
    en = events_node
    admin = token_of(await demo_admin(en.client, en.node))
    alice_headers, alice = await agent_login(en, 0)
    bob_headers, _ = await agent_login(en, 1)
    async with contextlib.AsyncExitStack() as stack:
        boards = []
        for _ in range(5):
            ws = await stack.enter_async_context(
                connect(url(en, access_token=admin, scope="supervisor"))
            )
            await hello(ws)
            boards.append(ws)
        alice_ws = await stack.enter_async_context(
            connect(url(en, access_token=token_of(alice_headers)))
        )
        bob_ws = await stack.enter_async_context(
            connect(url(en, access_token=token_of(bob_headers)))
        )
        await hello(alice_ws)
        await hello(bob_ws)
        made = en.service.encode.made
        event = en.bus.publish(
            en.demo_tenant, "agent.state_changed", {"agent_id": alice, "state": "ready"}
        )
        for ws in [*boards, alice_ws]:
            got = await events_until(ws, through(event.seq))
            assert [m["seq"] for m in got] == [event.seq]
            assert got[0]["data"] == {"agent_id": alice, "state": "ready"}
        assert await events_until(bob_ws, through(event.seq)) == []
        # Six streams sent it; it was made into JSON once.
        assert en.service.encode.made == made + 1


async def test_a_tenants_stream_cap_grows_with_its_seats(events_node: EventsNode) -> None:
    en = events_node
    service = en.service
    assert service.tenant_cap(1000) == 2000  # the defaults: 1,000, or 2 a seat when more
    assert service.tenant_cap(None) == 1000
    # 50 seats (the demo tenant's) at 0.04 a seat: 2 streams, above the node's floor of 1.
    service.max_streams_per_tenant = 1
    service.streams_per_seat = 0.04
    admin = token_of(await demo_admin(en.client, en.node))
    async with contextlib.AsyncExitStack() as stack:
        code, reason = await refused_after(stack, en, admin, 2)
        assert code == 4429
        assert reason == "the tenant has 2 event streams open, its most for 50 seats; close some"
