"""The long-poll fallback ``GET /api/v1/events``: a polling client misses nothing either."""

from __future__ import annotations

import asyncio
import random

from tests.api.helpers import demo_admin, new_tenant, signed
from tests.events.conftest import EventsNode
from tests.events.test_stream_ws import agent_login


async def poll(en: EventsNode, headers: dict[str, str], **params: object) -> dict:
    r = await en.client.get("/api/v1/events", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_polling_client_receives_everything_once_in_order(events_node: EventsNode) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    start = await poll(en, admin)  # no since: nothing yet, and where "now" is
    assert start["events"] == [] and start["next"] == en.bus.last_seq(en.demo_tenant)
    total = 400
    rng = random.Random(7)

    async def publish() -> None:
        for i in range(total):
            en.bus.publish(en.demo_tenant, "test.tick", {"i": i})
            if rng.random() < 0.1:
                await asyncio.sleep(rng.random() / 100)

    task = asyncio.create_task(publish())
    got: list[dict] = []
    position = start["next"]
    while not got or got[-1]["data"]["i"] < total - 1:
        page = await poll(
            en, admin, since=position, wait=2, limit=rng.randint(1, 40), types="test.*"
        )
        got += page["events"]
        position = page["next"]
    await task
    assert [m["data"]["i"] for m in got] == list(range(total))
    assert [m["seq"] for m in got] == sorted({m["seq"] for m in got})


async def test_long_poll_waits_for_the_next_event(events_node: EventsNode) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    position = en.bus.last_seq(en.demo_tenant)
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, en.bus.publish, en.demo_tenant, "test.tick", {"late": True})
    started = loop.time()
    page = await poll(en, admin, since=position, wait=5)
    assert 0.25 < loop.time() - started < 4
    assert [m["data"] for m in page["events"]] == [{"late": True}]
    assert page["next"] == page["events"][0]["seq"]
    started = loop.time()
    empty = await poll(en, admin, since=page["next"], wait=0.2)
    assert empty["events"] == [] and empty["next"] == page["next"]
    assert loop.time() - started >= 0.2


async def test_filtered_poll_moves_past_events_it_does_not_want(events_node: EventsNode) -> None:
    en = events_node
    alice_headers, alice = await agent_login(en, 0)
    position = en.bus.last_seq(en.demo_tenant)
    for _ in range(5):
        en.bus.publish(en.demo_tenant, "queue.stats", {"queue": "support"})
    mine = en.bus.publish(en.demo_tenant, "agent.state_changed", {"agent_id": alice}).seq
    last = en.bus.publish(en.demo_tenant, "queue.stats", {"queue": "support"}).seq
    page = await poll(en, alice_headers, since=position)
    assert [m["seq"] for m in page["events"]] == [mine]
    assert page["next"] == last  # the next poll does not scan the skipped events again


async def test_poll_gap_and_reset_and_last_event_id(events_node: EventsNode) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    t = en.demo_tenant
    early = en.bus.publish(t, "test.marker", {}).seq
    for _ in range(10_001):
        en.bus.publish(t, "test.filler", {})
    page = await poll(en, admin, since=early, types="test.marker", limit=5)
    gap = page["events"][0]
    assert gap["type"] == "stream.gap" and gap["data"]["reason"] == "history"
    assert page["next"] == en.bus.last_seq(t)
    reset = await poll(en, admin, since=10**9, types="test.marker")
    assert reset["events"][0]["type"] == "stream.gap"
    assert reset["events"][0]["data"]["reason"] == "reset"
    r = await en.client.get(
        "/api/v1/events", params={"types": "test.*"}, headers={**admin, "Last-Event-ID": "5"}
    )
    assert r.json()["events"][0]["type"] == "stream.gap"


async def test_poll_is_scoped_authorised_and_isolated(events_node: EventsNode) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    alice_headers, _ = await agent_login(en, 0)
    other = await new_tenant(en.client, en.node, "rival")
    position = en.bus.last_seq(en.demo_tenant)
    en.bus.publish(en.demo_tenant, "contact.offered", {"secret": "demo only"})

    r = await en.client.get("/api/v1/events?scope=tenant", headers=alice_headers)
    assert r.status_code == 403 and "events:tenant" in r.json()["detail"]
    r = await en.client.get("/api/v1/events?since=-1", headers=admin)
    assert r.status_code == 422
    r = await en.client.get("/api/v1/events?colour=blue", headers=admin)
    assert r.status_code == 422
    r = await en.client.get("/api/v1/events")
    assert r.status_code == 401
    theirs = await poll(en, other, since=0)
    assert all("secret" not in m["data"] for m in theirs["events"])

    key = (
        await en.client.post(
            "/api/v1/api-keys", json={"name": "poller", "role": "admin"}, headers=admin
        )
    ).json()
    path = f"/api/v1/events?since={position}&types=contact.*"
    headers, _ = signed(key["access_key"], key["secret"], "GET", path)
    r = await en.client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    assert [m["data"] for m in r.json()["events"]] == [{"secret": "demo only"}]
