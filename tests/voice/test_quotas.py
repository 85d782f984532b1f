"""A tenant's concurrent-call quota: the call over it is refused with 486 and an event, the
calls within it go on, and a raised quota admits calls at once."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.conftest import free_port
from tests.voice.conftest import Api
from tests.voice.peers import SIPP, VOICE_DATA, kill_group, start_sipp_call, wait_until

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _set_quota(api: Api, calls: int) -> None:
    creds = api.node.demo["platform"]
    root = httpx.post(
        api.base + "/auth/login",
        json={"tenant": "platform", "username": "root", "password": creds["password"]},
    ).json()
    headers = {"Authorization": f"Bearer {root['access_token']}"}
    tenants = httpx.get(api.base + "/tenants?limit=100", headers=headers).json()["items"]
    demo = next(t for t in tenants if t["slug"] == "demo")
    r = httpx.patch(
        api.base + f"/tenants/{demo['id']}", json={"max_concurrent_calls": calls}, headers=headers
    )
    assert r.status_code == 200, r.text


def _refused_call(tmp_path, sip_port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["timeout", "30", SIPP, "-sf", str(VOICE_DATA / "caller_refused.xml"), "-s", "4000",
         f"127.0.0.1:{sip_port}", "-i", "127.0.0.1", "-p", str(free_port("both")),
         "-mi", "127.0.0.1", "-mp", str(free_port("both")), "-m", "1", "-nostdin"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip


async def test_a_call_over_the_tenants_quota_is_refused_and_the_others_go_on(
    voice_node, api, tmp_path
):
    _set_quota(api, 1)
    first = start_sipp_call(tmp_path / "first", voice_node.sip_port, talk_ms=12_000, timeout=60)
    try:
        await wait_until(lambda: len(api.live()) == 1, 15)
        refused = _refused_call(tmp_path, voice_node.sip_port)
        assert refused.returncode == 0, refused.stdout[-2000:]
        events = api.get("/events?since=0&types=contact.refused&limit=10")["events"]
        assert [e["data"]["reason"] for e in events] == ["concurrent_calls"]
        assert len(api.live()) == 1, "the call within the quota goes on"
        # ... and a record: offered calls count it (issue 20).
        refusals = await wait_until(
            lambda: [c for c in api.contacts() if c["disposition"] == "refused"], 5
        )
        (cdr,) = refusals
        assert cdr["state"] == "ended" and cdr["end_cause"] == "refused"
        assert cdr["customer"] == "+15559999" and cdr["attributes"]["refused"] == "concurrent_calls"
        # The platform raises the quota: the next call is admitted while the first talks.
        _set_quota(api, 2)
        second = start_sipp_call(tmp_path / "second", voice_node.sip_port, talk_ms=1_000)
        await wait_until(lambda: len(api.live()) == 2, 15)
        kill_group(second)
        assert first.poll() is None, "the first call is still on"
    finally:
        kill_group(first)
