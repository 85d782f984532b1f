"""Outgoing webhooks against a real HTTP receiver on 127.0.0.1 (allowed for these tests)."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from typing import Any

import pytest

from cloudcc.bus import LocalBus
from cloudcc.events import RetryPolicy, TargetPolicy
from cloudcc.events.delivery import WebhookDispatcher
from cloudcc.ivr.webhook import verify_signature
from tests.api.helpers import demo_admin, login, new_tenant
from tests.events.conftest import EventsNode, Received, Receiver, eventually, serve
from tests.events.test_stream_ws import agent_login


async def secret_of(en: EventsNode, headers: dict[str, str]) -> bytes:
    r = await en.client.post("/api/v1/tenant/webhook-secret", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["webhook_secret"]).encode()


async def subscribe(
    en: EventsNode, headers: dict[str, str], url: str, types: list[str], **extra: Any
) -> dict[str, Any]:
    r = await en.client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": types, **extra}, headers=headers
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliveries(en: EventsNode, headers: dict[str, str], hook: dict, **params: Any) -> list:
    r = await en.client.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries",
        params={"limit": 500, **params},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return sorted(r.json()["items"], key=lambda d: d["event_seq"])


async def settled(en: EventsNode, headers: dict[str, str], hook: dict, count: int) -> list:
    """The hook's deliveries once ``count`` of them are no longer pending."""
    found: list = []

    async def check() -> bool:
        nonlocal found
        found = await deliveries(en, headers, hook)
        return sum(d["status"] != "pending" for d in found) >= count

    await eventually(check, 15)
    return found


# These run on PostgreSQL too (skipped when no server is reachable).
BOTH_STORES = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_signed_events_arrive_and_verify(events_node: EventsNode, receiver: Receiver) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    secret = await secret_of(en, admin)
    hook = await subscribe(en, admin, receiver.url, ["contact.*"], description="CRM")
    assert hook["active"] is True and hook["event_types"] == ["contact.*"]
    t = en.demo_tenant
    seqs = [en.bus.publish(t, "contact.offered", {"contact_id": f"c{i}"}).seq for i in range(3)]
    en.bus.publish(t, "queue.stats", {"queue": "support"})  # not subscribed
    got = await receiver.wait_for(3)
    await asyncio.sleep(0.2)
    assert len(receiver.requests) == 3
    for request, seq in zip(got, seqs, strict=True):
        verify_signature(secret, request.headers, request.body, time.time())
        body = json.loads(request.body)
        assert body["seq"] == seq and body["type"] == "contact.offered"
        assert body["tenant_id"] == t and body["subscription_id"] == hook["id"]
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-cloudcc-event"] == "contact.offered"
        assert request.headers["x-cloudcc-tenant"] == t
        assert request.headers["x-cloudcc-request-id"] == body["id"]
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    with pytest.raises(Exception, match="signature"):
        verify_signature(b"another secret", got[0].headers, got[0].body, time.time())
    done = await settled(en, admin, hook, 3)
    assert [(d["status"], d["attempts"], d["last_status"]) for d in done] == [
        ("delivered", 1, 200)
    ] * 3
    assert [d["payload"]["data"]["contact_id"] for d in done] == ["c0", "c1", "c2"]


async def test_receiver_failing_twice_then_ok_gets_it_with_back_off(
    events_node: EventsNode, receiver: Receiver
) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    secret = await secret_of(en, admin)

    async def flaky(request: Received) -> int:
        return 503 if len(receiver.requests) <= 2 else 200

    receiver.respond = flaky
    hook = await subscribe(en, admin, receiver.url, ["agent.*"])
    en.bus.publish(en.demo_tenant, "agent.state_changed", {"agent_id": "a1", "state": "ready"})
    got = await receiver.wait_for(3)
    # Policy of these tests: 0.2 s then 0.4 s, each with up to half taken off at random.
    assert got[1].at - got[0].at >= 0.1 - 0.02
    assert got[2].at - got[1].at >= 0.2 - 0.02
    assert len({r.headers["x-cloudcc-request-id"] for r in got}) == 1  # one delivery
    assert [r.headers["x-cloudcc-attempt"] for r in got] == ["1", "2", "3"]
    assert len({r.body for r in got}) == 1
    for request in got:
        verify_signature(secret, request.headers, request.body, time.time())
    [delivery] = await settled(en, admin, hook, 1)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [entry["status"] for entry in delivery["log"]] == [503, 503, 200]


async def test_dead_receiver_is_given_up_and_recorded(events_node: EventsNode) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    hook = await subscribe(en, admin, f"http://127.0.0.1:{closed_port()}/hook", ["test.*"])
    en.bus.publish(en.demo_tenant, "test.tick", {})
    [delivery] = await settled(en, admin, hook, 1)
    assert delivery["status"] == "failed" and delivery["attempts"] == 4  # this suite's limit
    assert "ConnectError" in delivery["last_error"] and delivery["last_status"] is None
    assert len(delivery["log"]) == 4 and delivery["completed_at"]
    failed = await deliveries(en, admin, hook, status="failed")
    assert [d["id"] for d in failed] == [delivery["id"]]


async def test_receiver_refusing_an_event_is_not_retried(
    events_node: EventsNode, receiver: Receiver
) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)

    async def refuse(request: Received) -> int:
        return 400 if json.loads(request.body)["data"].get("bad") else 200

    receiver.respond = refuse
    hook = await subscribe(en, admin, receiver.url, ["test.*"])
    en.bus.publish(en.demo_tenant, "test.tick", {"bad": True})
    en.bus.publish(en.demo_tenant, "test.tick", {"bad": False})
    done = await settled(en, admin, hook, 2)
    assert [(d["status"], d["attempts"], d["last_status"]) for d in done] == [
        ("failed", 1, 400),
        ("delivered", 1, 200),
    ]
    # Sent again on request: it keeps its place and is delivered this time.
    receiver.respond = None
    r = await en.client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{done[0]['id']}/retry", headers=admin
    )
    assert r.status_code == 202, r.text
    await eventually(lambda: _count_is(receiver, 3))
    again = await settled(en, admin, hook, 2)
    assert again[0]["status"] == "delivered" and again[0]["attempts"] == 1


async def _count_is(receiver: Receiver, count: int) -> bool:
    return len(receiver.requests) >= count


@BOTH_STORES
async def test_deliveries_keep_order_per_subscription(
    database_url: str, events_node: EventsNode, receiver: Receiver
) -> None:
    en = events_node
    en.service.dispatcher.retry = RetryPolicy(max_attempts=30, base=0.01, cap=0.05)
    admin = await demo_admin(en.client, en.node)
    rng = random.Random(3)

    async def unreliable(request: Received) -> int:
        await asyncio.sleep(rng.random() / 200)
        return 503 if rng.random() < 0.3 else 200

    receiver.respond = unreliable
    hook = await subscribe(en, admin, receiver.url, ["test.*"])
    total = 25
    for i in range(total):
        en.bus.publish(en.demo_tenant, "test.tick", {"i": i})
        if i % 5 == 0:
            await asyncio.sleep(0.01)
    done = await settled(en, admin, hook, total)
    assert all(d["status"] == "delivered" for d in done)
    seen = [json.loads(r.body)["data"]["i"] for r in receiver.requests]
    assert seen == sorted(seen)  # a later event is never sent before an earlier one succeeded
    assert sorted(set(seen)) == list(range(total))


async def test_slow_receiver_does_not_delay_another_tenant(
    events_node: EventsNode, receiver: Receiver
) -> None:
    en = events_node
    admin_a = await demo_admin(en.client, en.node)
    admin_b = await new_tenant(en.client, en.node, "rival")
    tenant_b = (await en.client.get("/api/v1/tenant", headers=admin_b)).json()["id"]
    stuck = Receiver()

    async def hang(request: Received) -> int:
        await asyncio.sleep(10)
        return 200

    stuck.respond = hang
    async with serve(stuck, timeout_graceful_shutdown=0) as port:
        stuck.port = port
        for i in range(3):  # several subscriptions of A, all stuck
            await subscribe(en, admin_a, stuck.url, ["test.*"], description=f"stuck {i}")
        await subscribe(en, admin_b, receiver.url, ["test.*"])
        for i in range(10):
            en.bus.publish(en.demo_tenant, "test.tick", {"i": i})
        await receiver_has_nothing_yet(receiver)
        started = time.monotonic()
        for i in range(10):
            en.bus.publish(tenant_b, "test.tick", {"i": i})
        got = await receiver.wait_for(10, timeout=5)
        assert time.monotonic() - started < 1.5  # not behind A's 2 s timeouts
        assert [json.loads(r.body)["data"]["i"] for r in got] == list(range(10))
        assert {r.headers["x-cloudcc-tenant"] for r in got} == {tenant_b}
        assert len(stuck.requests) >= 3  # A's receiver is being tried meanwhile


async def receiver_has_nothing_yet(receiver: Receiver) -> None:
    await asyncio.sleep(0.1)
    assert receiver.requests == []


async def test_tenants_see_and_receive_only_their_own(
    events_node: EventsNode, receiver: Receiver
) -> None:
    en = events_node
    admin_a = await demo_admin(en.client, en.node)
    admin_b = await new_tenant(en.client, en.node, "rival")
    secret_b = await secret_of(en, admin_b)
    tenant_b = (await en.client.get("/api/v1/tenant", headers=admin_b)).json()["id"]
    hook_a = await subscribe(en, admin_a, f"http://127.0.0.1:{closed_port()}/a", ["test.*"])
    hook_b = await subscribe(en, admin_b, receiver.url, ["*"])
    en.bus.publish(en.demo_tenant, "test.tick", {"secret": "of demo"})
    mine = en.bus.publish(tenant_b, "test.tick", {"n": 1}).seq
    got = await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert all(b["tenant_id"] == tenant_b for b in bodies)
    assert not any("secret" in b["data"] for b in bodies)
    assert mine in {b["seq"] for b in bodies}
    for request in got:
        verify_signature(secret_b, request.headers, request.body, time.time())
    listing = (await en.client.get("/api/v1/webhooks", headers=admin_b)).json()
    assert [h["id"] for h in listing["items"]] == [hook_b["id"]]
    for path in (f"/api/v1/webhooks/{hook_a['id']}", f"/api/v1/webhooks/{hook_a['id']}/deliveries"):
        r = await en.client.get(path, headers=admin_b)
        assert r.status_code == 404, (path, r.text)
    r = await en.client.patch(
        f"/api/v1/webhooks/{hook_a['id']}", json={"active": False}, headers=admin_b
    )
    assert r.status_code == 404


REFUSED_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.5/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "ftp://example.com/hook",
    "http://user:password@example.com/hook",
    "not a url",
]


async def test_webhook_urls_into_private_networks_are_refused(events_node: EventsNode) -> None:
    en = events_node
    en.service.policy.allowed = ()  # what a node has unless its settings allow more
    admin = await demo_admin(en.client, en.node)
    for url in REFUSED_URLS:
        r = await en.client.post(
            "/api/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=admin
        )
        assert r.status_code == 422, (url, r.text)
    assert (await en.client.get("/api/v1/webhooks", headers=admin)).json()["total"] == 0


async def test_names_are_checked_by_address_and_again_before_sending() -> None:
    answers = {"hooks.example.com": ["93.184.216.34"], "sneaky.example.com": ["10.0.0.5"]}

    async def resolver(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    policy = TargetPolicy(resolver=resolver)
    target = await policy.check("https://hooks.example.com/in?x=1")
    assert str(target.request_url()) == "https://93.184.216.34/in?x=1"
    with pytest.raises(Exception, match="private"):
        await policy.check("http://sneaky.example.com/")
    with pytest.raises(Exception, match="does not resolve"):
        await policy.check("http://nowhere.example.com/")
    answers["hooks.example.com"] = ["93.184.216.34", "127.0.0.1"]  # rebinding to loopback
    with pytest.raises(Exception, match="private"):
        await policy.check("https://hooks.example.com/in")
    allowed = TargetPolicy(["10.0.0.0/8"], resolver=resolver)
    assert str((await allowed.check("http://sneaky.example.com:81/")).address) == "10.0.0.5"


async def test_target_refused_at_send_time_is_recorded(
    events_node: EventsNode, receiver: Receiver
) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    hook = await subscribe(en, admin, receiver.url, ["test.*"])
    en.service.policy.allowed = ()  # the node's rule tightened after the webhook was made
    en.bus.publish(en.demo_tenant, "test.tick", {})
    [delivery] = await settled(en, admin, hook, 1)
    assert delivery["status"] == "failed" and "refused" in delivery["last_error"]
    assert receiver.requests == []


@BOTH_STORES
async def test_pending_deliveries_survive_a_restart(
    database_url: str, events_node: EventsNode, receiver: Receiver
) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    down = f"http://127.0.0.1:{closed_port()}/hook"
    en.service.dispatcher.retry = RetryPolicy(max_attempts=50, base=1, cap=1, jitter=0)
    hook = await subscribe(en, admin, down, ["test.*"])
    for i in range(3):
        en.bus.publish(en.demo_tenant, "test.tick", {"i": i})

    async def first_failed() -> bool:
        found = await deliveries(en, admin, hook)
        return len(found) == 3 and found[0]["attempts"] == 1

    await eventually(first_failed)
    await en.service.stop()  # the node stops; its rows stay pending
    pending = await deliveries(en, admin, hook, status="pending")
    assert len(pending) == 3
    r = await en.client.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"url": receiver.url}, headers=admin
    )
    assert r.status_code == 200

    # A new process: another bus, another dispatcher, the same database.
    policy = TargetPolicy(["127.0.0.0/8"])
    fresh = WebhookDispatcher(en.node.db, LocalBus(), policy, retry=RetryPolicy(base=0.05))
    await fresh.start()
    try:
        got = await receiver.wait_for(3)
        assert [json.loads(r.body)["data"]["i"] for r in got] == [0, 1, 2]
        done = await settled(en, admin, hook, 3)
        assert [(d["status"], d["attempts"]) for d in done] == [
            ("delivered", 2),
            ("delivered", 1),
            ("delivered", 1),
        ]
    finally:
        await fresh.stop()


async def test_webhook_crud_validation_and_permissions(
    events_node: EventsNode, receiver: Receiver
) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    alice, _ = await agent_login(en, 0)
    r = await en.client.post(
        "/api/v1/users",
        json={"username": "sue", "password": "supervisor-1", "role": "supervisor"},
        headers=admin,
    )
    sue = await login(en.client, "demo", "sue", "supervisor-1")
    body = {"url": receiver.url, "event_types": ["contact.*"]}
    assert (await en.client.post("/api/v1/webhooks", json=body, headers=alice)).status_code == 403
    assert (await en.client.get("/api/v1/webhooks", headers=alice)).status_code == 403
    assert (await en.client.post("/api/v1/webhooks", json=body, headers=sue)).status_code == 403
    for bad in (
        {**body, "event_types": []},
        {**body, "event_types": ["Contact.Offered"]},
        {**body, "event_types": ["contact offered"]},
        {**body, "colour": "blue"},
        {"event_types": ["*"]},
    ):
        r = await en.client.post("/api/v1/webhooks", json=bad, headers=admin)
        assert r.status_code == 422, (bad, r.text)
    hook = await subscribe(en, admin, receiver.url, ["contact.*", "contact.*", "agent.*"])
    assert hook["event_types"] == ["contact.*", "agent.*"]
    assert (await en.client.get("/api/v1/webhooks", headers=sue)).json()["total"] == 1
    audit = (
        await en.client.get(f"/api/v1/audit-log?resource_id={hook['id']}", headers=admin)
    ).json()
    assert audit["items"][0]["action"] == "create"

    r = await en.client.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers=admin
    )
    assert r.status_code == 200 and r.json()["active"] is False
    en.bus.publish(en.demo_tenant, "contact.offered", {"n": 0})
    await asyncio.sleep(0.3)
    assert receiver.requests == []  # inactive: nothing recorded or sent
    assert await deliveries(en, admin, hook) == []
    await en.client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": True}, headers=admin)
    en.bus.publish(en.demo_tenant, "contact.offered", {"n": 1})
    await receiver.wait_for(1)
    r = await en.client.get("/api/v1/webhooks?active=true", headers=admin)
    assert r.json()["total"] == 1
    r = await en.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin)
    assert r.status_code == 204
    r = await en.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=admin)
    assert r.status_code == 404
