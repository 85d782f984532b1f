"""Transfers beyond agent to agent: to a queue, to a flow, and to an outside number through
the tenant's trunk (blind and consultative), each checked by what the parties hear."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.voice.peers import Baresip, level, wait_until
from tests.voice.test_call_control import (
    HEARD,
    SILENT,
    TONES,
    connect_caller,
    hang_up,
    hears,
    phones,
)
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]

OUTSIDE = "15558888"
OUTSIDE_HZ = 3000  # the outside party's own tone, unlike any other party's


@asynccontextmanager
async def outside_party(tmp_path, api) -> AsyncIterator[Baresip]:
    """The phone behind the carrier, reached through the tenant's trunk."""
    far = await Baresip(tmp_path / "outside", user=OUTSIDE, tone_hz=OUTSIDE_HZ).start()
    api.post("/trunks", {"name": "carrier", "host": "127.0.0.1", "port": far.sip_port})
    try:
        yield far
    finally:
        await far.stop()


@asynccontextmanager
async def talking_with_an_outside_party(
    voice_node, api, tmp_path
) -> AsyncIterator[tuple[dict[str, Baresip], Baresip, str]]:
    """Agent 1001 talking with a caller, an outside party behind the trunk; the caller hangs
    up at the end. Yields the phones, the outside party and the contact id."""
    async with (
        phones(api, voice_node, tmp_path, ("1001",)) as p,
        outside_party(tmp_path, api) as far,
    ):
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        await asyncio.sleep(1)
        yield p, far, cid
        await hang_up(api, p["caller"])


def connected_to(api, ext: str) -> list[dict]:
    agent_id = api.agents[ext]["id"]
    return [c for c in api.live() if c["state"] == "connected" and c["agent_id"] == agent_id]


async def test_blind_transfer_to_a_queue_reaches_another_agent(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        api.login("1002")
        await asyncio.sleep(1)
        api.post(f"/contacts/{cid}/transfer", {"target_type": "queue", "target": "support"})
        await wait_until(lambda: connected_to(api, "1002"), 15)
        await asyncio.sleep(2)
        assert hears(p["caller"], "1002") > HEARD and hears(p["1002"], "caller") > HEARD
        assert hears(p["caller"], "1001") < SILENT
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(
        api,
        lambda c: c["state"] in ("ended", "wrapup") and c["agent_id"] == api.agents["1002"]["id"],
    )
    (transfer,) = cdr["transfers"]
    assert transfer["kind"] == "blind" and transfer["to_type"] == "queue"
    assert [step["type"] for step in cdr["path"]] == ["flow", "queue", "agent", "queue", "agent"]


async def test_blind_transfer_to_a_flow_puts_the_caller_back_in_the_menu(voice_node, api, tmp_path):
    # No after-call work: the agent is free again as soon as the caller leaves it.
    api.patch(f"/queues/{api.queue_id('support')}", {"wrapup_seconds": 0})
    async with phones(api, voice_node, tmp_path, ("1001",)) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        await asyncio.sleep(1)
        api.post(f"/contacts/{cid}/transfer", {"target_type": "flow", "target": "demo-main"})
        await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
        # The menu again: the same choice leads back to the same (now free) agent.
        await asyncio.sleep(3.5)
        await p["caller"].send_dtmf("2")
        await wait_until(lambda: connected_to(api, "1001"), 20)
        await asyncio.sleep(2)
        assert hears(p["caller"], "1001") > HEARD
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(api, lambda c: c["state"] in ("ended", "wrapup"))
    assert cdr["transfers"][0]["to_type"] == "flow"
    assert [step["type"] for step in cdr["path"]][:5] == ["flow", "queue", "agent", "flow", "queue"]


async def test_blind_transfer_to_an_outside_number_goes_through_the_trunk(
    voice_node, api, tmp_path
):
    async with talking_with_an_outside_party(voice_node, api, tmp_path) as (p, far, cid):
        api.post(f"/contacts/{cid}/transfer", {"target_type": "external", "target": OUTSIDE})
        await asyncio.sleep(4)
        assert level(p["caller"].heard_since(1.5), OUTSIDE_HZ) > HEARD
        assert level(far.heard_since(1.5), TONES["caller"]) > HEARD
        assert hears(p["caller"], "1001") < SILENT
    cdr = wait_until_cdr(api, lambda c: c["state"] in ("ended", "wrapup"))
    (transfer,) = cdr["transfers"]
    assert transfer["kind"] == "blind" and transfer["to_type"] == "external"
    assert transfer["to"] == OUTSIDE and transfer["connected_at"] > transfer["at"]
    external = cdr["legs"][-1]
    assert external["role"] == "external" and external["end_cause"] == "customer_hangup"


async def test_consultative_transfer_to_an_outside_number(voice_node, api, tmp_path):
    async with talking_with_an_outside_party(voice_node, api, tmp_path) as (p, far, cid):
        api.post(f"/contacts/{cid}/consult", {"target_type": "external", "target": OUTSIDE})
        await asyncio.sleep(3.5)
        assert level(p["1001"].heard_since(1.5), OUTSIDE_HZ) > HEARD, "agent and outside talk"
        assert level(far.heard_since(1.5), TONES["1001"]) > HEARD
        assert level(far.heard_since(1.5), TONES["caller"]) < SILENT, "the customer waits"
        api.post(f"/contacts/{cid}/complete-transfer")
        await asyncio.sleep(2.5)
        assert level(p["caller"].heard_since(1.5), OUTSIDE_HZ) > HEARD
        assert level(far.heard_since(1.5), TONES["caller"]) > HEARD
    cdr = wait_until_cdr(api, lambda c: c["state"] in ("ended", "wrapup"))
    assert cdr["transfers"][-1]["kind"] == "consultative"
    assert [leg["role"] for leg in cdr["legs"]] == ["customer", "agent", "consult"]


async def test_consultation_in_a_queue_reaches_the_agent_the_acd_offers(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        r = api.post(
            f"/contacts/{cid}/consult", {"target_type": "queue", "target": "nowhere"}, expect=422
        )
        assert "nowhere" in r["detail"]
        api.login("1002")
        # The ACD chooses 1002 (1001 is busy with the call) and its phone answers.
        api.post(f"/contacts/{cid}/consult", {"target_type": "queue", "target": "support"})
        await asyncio.sleep(2)
        assert hears(p["1001"], "1002") > HEARD and hears(p["1002"], "1001") > HEARD
        assert hears(p["1002"], "caller") < SILENT, "the customer waits on hold"
        status = api.get(f"/agents/{api.agents['1002']['id']}/status")
        assert status["state"] == "busy", "the ACD counts the consultation as the agent's work"
        api.post(f"/contacts/{cid}/complete-transfer")
        await asyncio.sleep(2)
        assert hears(p["caller"], "1002") > HEARD and hears(p["1002"], "caller") > HEARD
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(
        api,
        lambda c: c["state"] in ("ended", "wrapup") and c["agent_id"] == api.agents["1002"]["id"],
    )
    assert cdr["transfers"][-1]["kind"] == "consultative"
    assert [leg["role"] for leg in cdr["legs"]] == ["customer", "agent", "consult"]
    assert api.get(f"/agents/{api.agents['1002']['id']}/status")["state"] == "wrap_up"
