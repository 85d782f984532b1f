"""The WebSocket event stream, driven by a real ``websockets`` client over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.api.helpers import demo_admin, login, new_tenant, signed
from tests.events.conftest import EventsNode, eventually, serve


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].split(" ", 1)[1]


async def agent_login(en: EventsNode, index: int) -> tuple[dict[str, str], str]:
    """Headers and agent id of demo agent ``index`` (0: Alice 1001, 1: Bob 1002)."""
    agent = en.node.demo["agents"][index]
    r = await en.client.post(
        "/api/v1/auth/login",
        json={
            "tenant": "demo",
            "username": agent["web_username"],
            "password": agent["web_password"],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return {"Authorization": f"Bearer {body['access_token']}"}, body["agent_id"]


def url(en: EventsNode, **params: Any) -> str:
    return en.ws_url + ("?" + urlencode(params) if params else "")


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def hello(ws: ClientConnection) -> dict[str, Any]:
    message = await recv(ws)
    assert message["type"] == "stream.hello", message
    return message


async def events_until(ws: ClientConnection, done: Any, timeout: float = 10.0) -> list[dict]:
    """Bus events (not stream.* messages) until ``done(message)`` holds for a message."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        message = await recv(ws, max(0.1, deadline - time.monotonic()))
        if not message["type"].startswith("stream."):
            got.append(message)
        if done(message):
            return got


def through(seq: int) -> Any:
    """Done once the stream has shown it examined every event up to ``seq``."""
    return lambda m: m["seq"] is not None and m["seq"] >= seq


async def closed_with(ws: ClientConnection, timeout: float = 5.0) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    rcvd = info.value.rcvd
    assert rcvd is not None, "closed without a close frame"
    return rcvd.code, rcvd.reason


async def test_receives_every_event_in_order(events_node: EventsNode) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    async with connect(url(en, access_token=token_of(admin), scope="tenant")) as ws:
        start = await hello(ws)
        assert start["data"]["scope"] == "tenant"

        async def publish() -> None:
            for i in range(300):
                en.bus.publish(en.demo_tenant, "test.tick", {"i": i})
                if i % 7 == 0:
                    await asyncio.sleep(0)

        task = asyncio.create_task(publish())
        got = await events_until(ws, lambda m: m["data"].get("i") == 299)
        await task
    assert [m["data"]["i"] for m in got] == list(range(300))
    seqs = [m["seq"] for m in got]
    assert seqs == sorted(set(seqs)) and seqs[0] > start["seq"]
    assert set(got[0]) == {"seq", "type", "at", "data"}


async def test_resumes_after_forced_disconnect_with_nothing_lost_or_doubled(
    events_node: EventsNode,
) -> None:
    en = events_node
    token = token_of(await demo_admin(en.client, en.node))
    total = 600

    async def publish() -> None:
        for i in range(total):
            en.bus.publish(en.demo_tenant, "test.tick", {"i": i})
            if i % 5 == 0:
                await asyncio.sleep(0.001)

    received: list[dict] = []
    ws = await connect(url(en, access_token=token))
    await hello(ws)
    task = asyncio.create_task(publish())
    while len(received) < 150:
        message = await recv(ws)
        if message["type"] == "test.tick":
            received.append(message)
    ws.transport.abort()  # the network drops: no close handshake
    await ws.wait_closed()
    await asyncio.sleep(0.05)  # events keep coming while the client is away

    last = received[-1]["seq"]
    async with connect(url(en, access_token=token, since=last)) as ws2:
        assert (await hello(ws2))["seq"] == last
        received += await events_until(ws2, lambda m: m["data"].get("i") == total - 1)
    await task
    assert [m["data"]["i"] for m in received] == list(range(total))
    await eventually(lambda: _true(en.service.streams_open(en.demo_tenant) == 0))


async def _true(value: bool) -> bool:
    return value


async def test_resume_by_first_message_and_last_event_id_header(events_node: EventsNode) -> None:
    en = events_node
    token = token_of(await demo_admin(en.client, en.node))
    first = [en.bus.publish(en.demo_tenant, "test.tick", {"i": i}).seq for i in range(5)]
    async with connect(en.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "access_token": token, "since": first[1]}))
        assert (await hello(ws))["seq"] == first[1]
        got = await events_until(ws, through(first[-1]))
    assert [m["seq"] for m in got] == first[2:]
    async with connect(
        url(en, access_token=token), additional_headers={"Last-Event-ID": str(first[3])}
    ) as ws:
        await hello(ws)
        got = await events_until(ws, through(first[-1]))
    assert [m["seq"] for m in got] == first[4:]


async def test_gap_message_when_history_no_longer_reaches_back(events_node: EventsNode) -> None:
    en = events_node
    token = token_of(await demo_admin(en.client, en.node))
    tenant = en.demo_tenant
    early = en.bus.publish(tenant, "test.marker", {"n": 0}).seq
    for _ in range(10_050):  # the bus keeps 10 000 events per tenant
        en.bus.publish(tenant, "test.filler", {})
    late = en.bus.publish(tenant, "test.marker", {"n": 1}).seq
    oldest, complete = en.bus.since(tenant, 0)
    assert not complete
    async with connect(url(en, access_token=token, since=early, types="test.marker")) as ws:
        await hello(ws)
        gap = await recv(ws)
        assert gap["type"] == "stream.gap"
        assert gap["data"]["reason"] == "history"
        assert gap["data"]["requested_since"] == early
        assert gap["seq"] == gap["data"]["resumed_from"] == oldest[0].seq - 1
        assert gap["data"]["missed"] == oldest[0].seq - 1 - early
        following = await recv(ws)
    assert following["seq"] == late and following["data"] == {"n": 1}


async def test_gap_message_when_the_sequence_restarted(events_node: EventsNode) -> None:
    en = events_node
    token = token_of(await demo_admin(en.client, en.node))
    seqs = [en.bus.publish(en.demo_tenant, "test.tick", {}).seq for _ in range(3)]
    # A client that saw seq 999 999 of a node that has since restarted.
    async with connect(url(en, access_token=token, since=999_999, types="test.*")) as ws:
        await hello(ws)
        gap = await recv(ws)
        assert gap["type"] == "stream.gap" and gap["data"]["reason"] == "reset"
        assert gap["seq"] == 0
        got = await events_until(ws, through(seqs[-1]))
    assert [m["seq"] for m in got] == seqs


async def scoped_events(en: EventsNode, first: int, last: int, **params: Any) -> list[tuple]:
    """What a stream resumed from before ``first`` shows of the events ``first``..``last``."""
    async with connect(url(en, since=first - 1, **params)) as ws:
        await hello(ws)
        got = await events_until(ws, through(last))
    return [(m["type"], m["data"]) for m in got]


async def test_scopes_agent_supervisor_tenant_and_type_filter(events_node: EventsNode) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    alice_headers, alice = await agent_login(en, 0)
    _, bob = await agent_login(en, 1)
    r = await en.client.post(
        "/api/v1/users",
        json={"username": "sue", "password": "supervisor-1", "role": "supervisor"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    sue = await login(en.client, "demo", "sue", "supervisor-1")
    t = en.demo_tenant
    script = [
        ("contact.offered", {"contact_id": "c1", "agent_id": alice}),
        ("leg.held", {"contact_id": "c1"}),  # names no agent: Alice holds c1
        ("contact.offered", {"contact_id": "c2", "agent_id": bob}),
        ("leg.held", {"contact_id": "c2"}),
        ("agent.state_changed", {"agent_id": bob, "state": "busy"}),
        ("agent.state_changed", {"agent_id": alice, "state": "busy"}),
        ("queue.stats", {"queue": "support", "waiting": 1}),
        ("tenant.updated", {"id": t, "fields": ["name"]}),
        ("contact.conferenced", {"contact_id": "c2", "agent_ids": [bob, alice]}),
        ("leg.added", {"contact_id": "c2", "leg": "supervisor"}),  # Alice joined c2
        ("contact.ended", {"contact_id": "c1"}),
    ]
    # Events from before the streams opened: the replay selects what live streaming would.
    seqs = [en.bus.publish(t, type_, data).seq for type_, data in script]
    first, last = seqs[0], seqs[-1]
    everything = [(ty, d) for ty, d in script]

    as_alice = await scoped_events(en, first, last, access_token=token_of(alice_headers))
    assert as_alice == [everything[i] for i in (0, 1, 5, 8, 9, 10)]
    as_sue = await scoped_events(en, first, last, access_token=token_of(sue), scope="supervisor")
    assert as_sue == [e for e in everything if e[0] != "tenant.updated"]
    as_admin = await scoped_events(en, first, last, access_token=token_of(admin))
    assert as_admin == everything
    only_contacts = await scoped_events(
        en, first, last, access_token=token_of(admin), types="contact.*,queue.stats"
    )
    assert only_contacts == [e for e in everything if e[0].startswith(("contact.", "queue."))]
    sue_watches_bob = await scoped_events(
        en, first, last, access_token=token_of(sue), scope="agent", agent_id=bob
    )
    assert sue_watches_bob == [everything[i] for i in (2, 3, 4, 8, 9)]


async def test_live_agent_stream_follows_the_contacts_it_holds(events_node: EventsNode) -> None:
    en = events_node
    alice_headers, alice = await agent_login(en, 0)
    t = en.demo_tenant
    async with connect(url(en, access_token=token_of(alice_headers))) as ws:
        start = await hello(ws)
        assert start["data"]["scope"] == "agent" and start["data"]["agent_id"] == alice
        en.bus.publish(t, "contact.queued", {"contact_id": "c9", "queue": "support"})
        en.bus.publish(t, "contact.assigned", {"contact_id": "c9", "agent_id": alice})
        en.bus.publish(t, "leg.answered", {"contact_id": "c9", "leg": "agent"})
        last = en.bus.publish(t, "contact.queued", {"contact_id": "c10"}).seq
        got = await events_until(ws, through(last))
    assert [m["type"] for m in got] == ["contact.assigned", "leg.answered"]


async def test_tenants_never_see_each_others_events(events_node: EventsNode) -> None:
    en = events_node
    admin_a = await demo_admin(en.client, en.node)
    admin_b = await new_tenant(en.client, en.node, "rival")
    tenant_b = (await en.client.get("/api/v1/tenant", headers=admin_b)).json()["id"]
    _, alice = await agent_login(en, 0)
    async with (
        connect(url(en, access_token=token_of(admin_a), since=0)) as ws_a,
        connect(url(en, access_token=token_of(admin_b), since=0)) as ws_b,
        connect(
            url(en, access_token=token_of(admin_b), scope="agent", agent_id=alice, since=0)
        ) as spy,
    ):
        for ws in (ws_a, ws_b, spy):
            await hello(ws)
        for i in range(20):
            en.bus.publish(en.demo_tenant, "contact.offered", {"agent_id": alice, "secret": i})
            en.bus.publish(tenant_b, "contact.offered", {"n": i})
        last_a = en.bus.last_seq(en.demo_tenant)
        last_b = en.bus.last_seq(tenant_b)
        got_a = await events_until(ws_a, through(last_a))
        got_b = await events_until(ws_b, through(last_b))
        got_spy = await events_until(spy, through(last_b))
    assert [m["data"]["secret"] for m in got_a if "secret" in m["data"]] == list(range(20))
    assert not any("secret" in m["data"] for m in got_b)
    assert [m["data"]["n"] for m in got_b if "n" in m["data"]] == list(range(20))
    assert got_spy == []


async def signed_stream(
    en: EventsNode, admin: dict[str, str]
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """A new admin API key, a stream path, and the signed headers of that one handshake."""
    r = await en.client.post(
        "/api/v1/api-keys", json={"name": "crm", "role": "admin"}, headers=admin
    )
    key = r.json()
    path = "/api/v1/events/ws?scope=tenant&types=test.*"
    headers, _ = signed(key["access_key"], key["secret"], "GET", path)
    return key, path, headers


async def test_signed_api_key_opens_a_stream(events_node: EventsNode) -> None:
    en = events_node
    admin = await demo_admin(en.client, en.node)
    _, path, headers = await signed_stream(en, admin)
    async with connect(f"ws://127.0.0.1:{en.port}{path}", additional_headers=headers) as ws:
        await hello(ws)
        seq = en.bus.publish(en.demo_tenant, "test.tick", {}).seq
        assert (await recv(ws))["seq"] == seq
    # The same signature again is a replay.
    async with connect(f"ws://127.0.0.1:{en.port}{path}", additional_headers=headers) as ws:
        code, reason = await closed_with(ws)
    assert code == 4401 and "signature" in reason


async def test_disabled_api_key_ends_its_busy_stream(events_node: EventsNode) -> None:
    # The stream was opened by one signed request; the key is asked again while it lasts,
    # also when events keep coming and no heartbeat is ever due.
    en = events_node
    en.service.revalidate_seconds = 0.2
    admin = await demo_admin(en.client, en.node)
    key, path, headers = await signed_stream(en, admin)
    async with connect(f"ws://127.0.0.1:{en.port}{path}", additional_headers=headers) as ws:
        await hello(ws)
        r = await en.client.patch(
            f"/api/v1/api-keys/{key['id']}", json={"status": "disabled"}, headers=admin
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 5
        with pytest.raises(ConnectionClosed) as info:
            while time.monotonic() < deadline:
                en.bus.publish(en.demo_tenant, "test.tick", {})
                await asyncio.wait_for(ws.recv(), 1)
    rcvd = info.value.rcvd
    assert rcvd is not None and rcvd.code == 4401 and "disabled" in rcvd.reason


REFUSALS: list[tuple[dict[str, str], Any, int, str]] = [
    ({}, {"type": "hello"}, 4401, "authenticate first"),
    ({}, "not json", 4401, "authenticate first"),
    ({"access_token": "not-a-token"}, None, 4401, "token"),
    ({"as": "alice", "scope": "tenant"}, None, 4403, "events:tenant"),
    ({"as": "alice", "scope": "supervisor"}, None, 4403, "calls:monitor"),
    ({"as": "alice", "agent_id": "b" * 32}, None, 4403, "calls:monitor"),
    ({"as": "admin", "scope": "agent"}, None, 4400, "agent"),
    ({"as": "admin", "since": "-1"}, None, 4400, "since"),
    ({"as": "admin", "since": "yesterday"}, None, 4400, "since"),
    ({"as": "admin", "scope": "everyone"}, None, 4400, "scope"),
    ({"as": "admin", "types": "Contact.*"}, None, 4400, "pattern"),
]


async def test_refusals_close_with_a_code_and_a_reason(events_node: EventsNode) -> None:
    en = events_node
    tokens = {
        "alice": token_of((await agent_login(en, 0))[0]),
        "admin": token_of(await demo_admin(en.client, en.node)),
    }
    for params, first, code, words in REFUSALS:
        params = dict(params)
        who = params.pop("as", None)
        if who:
            params["access_token"] = tokens[who]
        async with connect(url(en, **params)) as ws:
            if first is not None:
                await ws.send(first if isinstance(first, str) else json.dumps(first))
            got_code, reason = await closed_with(ws)
        assert got_code == code and words in reason, (params, got_code, reason)
    assert en.service.streams_open(en.demo_tenant) == 0
    # A handshake without credentials waits for the auth message, not forever.
    en.service.auth_timeout = 0.3
    async with connect(en.ws_url) as ws:
        got_code, reason = await closed_with(ws)
    assert got_code == 4401 and "no credentials" in reason


async def test_revoked_token_ends_the_stream(events_node: EventsNode) -> None:
    en = events_node
    en.service.revalidate_seconds = 0.2
    admin = await demo_admin(en.client, en.node)
    r = await en.client.post(
        "/api/v1/users",
        json={"username": "temp", "password": "temporary-1", "role": "supervisor"},
        headers=admin,
    )
    user = r.json()
    temp = await login(en.client, "demo", "temp", "temporary-1")
    async with connect(url(en, access_token=token_of(temp))) as ws:
        await hello(ws)
        r = await en.client.patch(
            f"/api/v1/users/{user['id']}", json={"status": "disabled"}, headers=admin
        )
        assert r.status_code == 200, r.text
        code, reason = await closed_with(ws, timeout=5)
    assert code == 4401 and "disabled" in reason


async def test_heartbeat_and_pong_carry_a_resume_position(events_node: EventsNode) -> None:
    en = events_node
    alice_headers, _ = await agent_login(en, 0)
    async with connect(url(en, access_token=token_of(alice_headers))) as ws:
        await hello(ws)
        # Not Alice's: her stream skips them, and the heartbeat says so.
        last = [en.bus.publish(en.demo_tenant, "queue.stats", {}).seq for _ in range(3)][-1]
        beat = await recv(ws)
        assert beat["type"] == "stream.heartbeat" and beat["seq"] == last
        await ws.send(json.dumps({"type": "ping", "data": "x"}))
        pong = await recv(ws)
        while pong["type"] == "stream.heartbeat":
            pong = await recv(ws)
        assert pong["type"] == "stream.pong" and pong["seq"] == last and pong["data"]["echo"] == "x"


def small_buffer_socket(port: int) -> socket.socket:
    """A connected socket with a fixed 64 KiB receive buffer (no autotuning to 32 MiB)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)
    sock.connect(("127.0.0.1", port))
    return sock


async def test_slow_client_is_cut_off_and_resumes_without_loss(events_node: EventsNode) -> None:
    en = events_node
    en.service.stream_buffer = 200
    token = token_of(await demo_admin(en.client, en.node))
    pad = "x" * 16_384
    total = 1_200
    fast_messages: list[dict] = []
    slow_got: list[int] = []
    last = 0
    # Default keepalive here: the stalled client must be cut off for being slow, not dead.
    async with serve(en.node.app) as port:
        ws_url = f"ws://127.0.0.1:{port}/api/v1/events/ws?" + urlencode(
            {"access_token": token, "types": "test.*"}
        )
        # No permessage-deflate: the padding would shrink to nothing.
        async with (
            connect(ws_url, max_size=None, compression=None) as fast,
            connect(
                ws_url,
                max_queue=1,
                max_size=None,
                compression=None,
                sock=small_buffer_socket(port),
            ) as slow,
        ):
            await hello(fast)
            await hello(slow)

            async def read_fast() -> None:
                while True:
                    message = await recv(fast)
                    fast_messages.append(message)
                    if message["data"].get("i") == total - 1:
                        return

            reader = asyncio.create_task(read_fast())
            for i in range(total):  # 20 MB, far more than a stalled client's buffers hold
                en.bus.publish(en.demo_tenant, "test.big", {"i": i, "pad": pad})
                if i % 10 == 0:
                    await asyncio.sleep(0.002)
            await asyncio.wait_for(reader, 30)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    message = json.loads(await asyncio.wait_for(slow.recv(), 10))
                    if message["type"] == "test.big":
                        slow_got.append(message["data"]["i"])
                        last = message["seq"]
                    assert len(slow_got) < total, "the stalled client was never cut off"
    got_fast = [m["data"]["i"] for m in fast_messages if m["type"] == "test.big"]
    assert got_fast == list(range(total))
    assert info.value.rcvd is not None and info.value.rcvd.code == 1013
    assert f"since={last}" in info.value.rcvd.reason
    assert 0 < len(slow_got) < total
    async with connect(
        url(en, access_token=token, types="test.*", since=last), max_size=None
    ) as ws:
        await hello(ws)
        rest = await events_until(ws, lambda m: m["data"].get("i") == total - 1, timeout=30)
    assert slow_got + [m["data"]["i"] for m in rest] == list(range(total))


async def test_dead_client_is_noticed_and_its_stream_released(events_node: EventsNode) -> None:
    en = events_node
    token = token_of(await demo_admin(en.client, en.node))
    # A client that completes the handshake, then neither reads nor answers pings.
    sock = socket.create_connection(("127.0.0.1", en.port))
    try:
        sock.sendall(
            (
                f"GET /api/v1/events/ws?access_token={token} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{en.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await eventually(lambda: _true(en.service.streams_open(en.demo_tenant) == 1), 5)
        # The server pings every 0.5 s and gives up 0.5 s later (this test's server settings).
        await eventually(lambda: _true(en.service.streams_open(en.demo_tenant) == 0), 5)
    finally:
        sock.close()
