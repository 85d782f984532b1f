"""Inputs an attacker controls get a 4xx, never a 500, and leave no traceback in the log."""

from __future__ import annotations

import logging
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

from cloudcc.store.tables import ContactRecord
from cloudcc.tenancy.credentials import sign_request
from tests.api.helpers import demo_admin
from tests.api.test_flows_api import SIMPLE


async def test_non_ascii_signature_is_a_401(client, node):
    admin = await demo_admin(client, node)
    key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=admin)).json()
    ts = str(int(time.time()))
    good = sign_request(key["secret"], "GET", "/api/v1/agents", ts, b"")
    r = await client.get(
        "/api/v1/agents",
        headers={
            "X-CC-Key": key["access_key"],
            "X-CC-Timestamp": ts,
            "X-CC-Signature": ("\xe9" + good[1:]).encode("latin-1"),
        },
    )
    assert r.status_code == 401, r.text


async def test_flow_version_beyond_64_bits_is_a_422(client, node):
    admin = await demo_admin(client, node)
    flow = (await client.post("/api/v1/flows", json={"document": SIMPLE}, headers=admin)).json()
    huge = 2**70
    for path in (f"/versions/{huge}", f"/versions/{huge}/edit"):
        method = client.post if path.endswith("edit") else client.get
        r = await method(f"/api/v1/flows/{flow['id']}{path}", headers=admin)
        assert r.status_code == 422, (path, r.text)
    r = await client.post(
        f"/api/v1/flows/{flow['id']}/rollback", json={"to_version": huge}, headers=admin
    )
    assert r.status_code == 422, r.text
    r = await client.put(
        f"/api/v1/flows/{flow['id']}/draft",
        json={"document": SIMPLE, "expected_revision": huge},
        headers=admin,
    )
    assert r.status_code == 422, r.text


def _wav(rate: int, channels: int = 1) -> bytes:
    data = b"\x00\x01" * 800
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


async def test_wav_at_0_hz_or_0_channels_is_a_422(client, node):
    admin = await demo_admin(client, node)
    for wav in (_wav(0), _wav(8000, channels=0)):
        r = await client.put("/api/v1/prompts/zero", content=wav, headers=admin)
        assert r.status_code == 422, r.text
    assert (
        await client.put("/api/v1/prompts/ok", content=_wav(8000), headers=admin)
    ).status_code == 200


async def test_prompt_deleted_between_check_and_read_is_a_404(client, node, monkeypatch):
    admin = await demo_admin(client, node)
    assert (
        await client.put("/api/v1/prompts/gone", content=_wav(8000), headers=admin)
    ).status_code == 200
    got = await client.get("/api/v1/prompts/gone", headers=admin)
    assert got.status_code == 200 and got.content[:4] == b"RIFF"
    assert int(got.headers["content-length"]) == len(got.content)
    path = next(Path(node.settings.data_dir, "prompts").glob("*/gone.wav"))
    path.unlink()
    # The file went away right after any existence check: a 404, not a 500.
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: True if p == path else real_exists(p))
    r = await client.get("/api/v1/prompts/gone", headers=admin)
    assert r.status_code == 404, r.text


async def test_like_wildcards_in_contact_search_are_literal(client, node):
    admin = await demo_admin(client, node)
    tenant_id = node.demo["tenant_id"]
    async with node.db.transaction() as s:
        for i, customer in enumerate(["alice", "bob_x", "100%", "back\\slash"]):
            s.add(
                ContactRecord(
                    id=f"c-like-{i}",
                    tenant_id=tenant_id,
                    channel="voice",
                    direction="inbound",
                    customer=customer,
                    dialed="4000",
                    state="ended",
                    created_at=datetime.now(UTC),
                )
            )
    for q, expected in (
        ("_", ["bob_x"]),
        ("%", ["100%"]),
        ("\\", ["back\\slash"]),
        ("li", ["alice"]),
    ):
        r = await client.get("/api/v1/contacts", params={"q": q}, headers=admin)
        assert r.status_code == 200, (q, r.text)
        assert sorted(x["customer"] for x in r.json()["items"]) == expected, q


async def test_client_leaving_mid_body_logs_no_traceback(node, caplog):
    sent: list[dict] = []
    messages = [
        {"type": "http.request", "body": b'{"tenant": "demo", "user', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/login",
        "raw_path": b"/api/v1/auth/login",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"cc.test"), (b"content-type", b"application/json")],
        "client": ("203.0.113.9", 5000),
        "server": ("cc.test", 80),
    }
    with caplog.at_level(logging.WARNING):
        await node.app(scope, receive, send)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not any(m.get("status") == 500 for m in sent)
