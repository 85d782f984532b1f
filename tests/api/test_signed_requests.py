"""Signed requests: strict integer timestamps, a signed nonce, replays refused on any node."""

from __future__ import annotations

import secrets
import time

import pytest

from cloudcc.tenancy.credentials import ReplayGuard, sign_request
from tests.api.helpers import demo_admin


@pytest.fixture
async def key(client, node):
    admin = await demo_admin(client, node)
    return (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=admin)).json()


def _headers(key, path: str, ts: str, nonce: str | None = None) -> dict[str, str]:
    sig = sign_request(key["secret"], "GET", path, ts, b"", nonce)
    headers = {"X-CC-Key": key["access_key"], "X-CC-Timestamp": ts, "X-CC-Signature": sig}
    if nonce is not None:
        headers["X-CC-Nonce"] = nonce
    return headers


@pytest.mark.parametrize("ts", ["nan", "+{now}", "{now}.5", "1_{now}", " {now}", "{now}e0", "-1"])
async def test_timestamps_other_than_decimal_seconds_are_refused(client, key, ts):
    stamp = ts.format(now=int(time.time()))
    r = await client.get("/api/v1/queues", headers=_headers(key, "/api/v1/queues", stamp))
    assert r.status_code == 401, r.text


async def test_a_nonce_lets_identical_requests_through_and_stops_its_replay(client, key):
    ts = str(int(time.time()))
    first = _headers(key, "/api/v1/queues", ts, secrets.token_urlsafe(16))
    second = _headers(key, "/api/v1/queues", ts, secrets.token_urlsafe(16))
    assert (await client.get("/api/v1/queues", headers=first)).status_code == 200
    assert (await client.get("/api/v1/queues", headers=second)).status_code == 200
    r = await client.get("/api/v1/queues", headers=first)
    assert r.status_code == 401 and "replay" in r.json()["detail"]
    # The nonce is signed: another nonce on a captured signature is a bad signature.
    forged = {**first, "X-CC-Nonce": secrets.token_urlsafe(16)}
    assert (await client.get("/api/v1/queues", headers=forged)).status_code == 401
    bad = _headers(key, "/api/v1/queues", ts, "short")
    assert (await client.get("/api/v1/queues", headers=bad)).status_code == 401


async def test_a_replay_is_refused_after_a_restart_or_on_another_node(client, node, key):
    ts = str(int(time.time()))
    for nonce in (None, secrets.token_urlsafe(16)):
        headers = _headers(key, "/api/v1/agents", ts, nonce)
        assert (await client.get("/api/v1/agents", headers=headers)).status_code == 200
        # A restarted node (or another one) has none of this process's memory ...
        node.ctx.auth.replays = ReplayGuard(node.settings.signature_window_seconds)
        node.ctx.auth.forget()
        # ... but the database remembers.
        r = await client.get("/api/v1/agents", headers=headers)
        assert r.status_code == 401 and "replay" in r.json()["detail"], nonce
