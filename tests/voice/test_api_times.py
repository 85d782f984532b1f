"""One time format in the API: after a real call, no time field of any response is an epoch
number; every one is ISO 8601 with its zone (CDR path and legs, events, listings)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudcc.timefmt import is_time_key, with_iso_times
from tests.conftest import LiveNode
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, sipp_call
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def time_fields(value: Any, where: str = "") -> list[tuple[str, Any]]:
    """(path, value) of every ``at`` / ``*_at`` field, nested anywhere."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if is_time_key(key) and item is not None:
                found.append((f"{where}.{key}", item))
            found += time_fields(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += time_fields(item, f"{where}[{i}]")
    return found


def assert_iso(body: Any, name: str) -> int:
    fields = time_fields(body, name)
    for where, value in fields:
        assert isinstance(value, str), f"{where} = {value!r} is not ISO 8601"
        assert datetime.fromisoformat(value).tzinfo is not None, f"{where} = {value!r} has no zone"
    return len(fields)


def test_with_iso_times_rewrites_only_time_fields() -> None:
    out = with_iso_times({"at": 0.5, "n_at": 1, "count": 3, "x": [{"ended_at": 2.0}], "ok": True})
    assert out == {
        "at": "1970-01-01T00:00:00.500+00:00",
        "n_at": "1970-01-01T00:00:01.000+00:00",
        "count": 3,
        "x": [{"ended_at": "1970-01-01T00:00:02.000+00:00"}],
        "ok": True,
    }


def test_no_api_response_carries_an_epoch_time_after_a_call(tmp_path: Path) -> None:
    node = LiveNode(tmp_path / "data")
    try:
        node.wait_ready()
        api = Api(node)
        phone = SippAgentPhone(tmp_path / "agent").start()
        try:
            api.login("1001", phone.uri)
            result = sipp_call(
                tmp_path / "caller", node.sip_port, digit="2", dtmf_after_ms=4500, talk_ms=2000
            )
            assert result.returncode == 0, result.stdout[-3000:] + phone.errors()
        finally:
            phone.stop()
        cdr = wait_until_cdr(api, lambda c: c["state"] in ("wrapup", "ended"))
        checked = assert_iso(api.get(f"/contacts/{cdr['id']}"), "contact")
        assert checked >= 10  # created/answered/ended, path[].at, legs[].*_at ...
        assert isinstance(cdr["path"][0]["at"], str) and isinstance(
            cdr["legs"][0]["ringing_at"] or "", str
        )
        paths = ["/contacts", "/contacts/live", "/recordings", "/agents", "/queues", "/trunks",
                 "/users", "/audit", "/webhooks", "/api-keys", "/flows", "/prompts"]  # fmt: skip
        for path in paths:
            r = httpx.get(api.base + path, headers=api.headers, timeout=30)
            if r.status_code == 404:
                continue  # not an endpoint of this build
            assert r.status_code == 200, (path, r.text)
            assert_iso(r.json(), path)
        for agent in api.agents.values():
            assert_iso(api.get(f"/agents/{agent['id']}/status"), "status")
        events = api.get("/events", params={"since": 0, "limit": 500})["events"]
        assert len(events) > 10 and assert_iso(events, "events") >= len(events)
    finally:
        node.stop()
