"""Calls that end badly still leave a complete record: a contact's crash, a shutdown, a killed
node, a caller that vanished. One call's failure never touches another."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudcc.app import Node
from cloudcc.contacts.session import ContactSession
from tests.conftest import LiveNode, free_port, make_settings
from tests.voice.conftest import Api
from tests.voice.peers import (
    Baresip,
    SippAgentPhone,
    kill_group,
    sipp_call,
    start_sipp_call,
    wait_until,
)
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


async def test_a_crash_in_one_contact_leaves_the_other_call_talking(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, sip={"port": free_port("both")})
    settings.ai.asr_enabled = False
    node = Node(settings)
    await node.prepare()
    await node.start_voice()
    voice = node.voice_node.voice
    phones = [SippAgentPhone(tmp_path / f"agent{i}").start() for i in (1, 2)]
    original = ContactSession._talk

    async def faulty_talk(self: ContactSession, target):  # type: ignore[no-untyped-def]
        if self.contact.customer.startswith("+1666"):  # the first caller's contact only
            await asyncio.sleep(1.5)
            raise RuntimeError("injected fault in one contact")
        return await original(self, target)

    monkeypatch.setattr(ContactSession, "_talk", faulty_talk)
    try:
        tenant_id = node.demo["tenant_id"]
        agents = sorted((await voice.acd.engine(tenant_id)).agent_ids())
        async with node.db.session() as s:
            from sqlalchemy import select

            from cloudcc.store.tables import Agent

            ext = {a.extension: a.id for a in (await s.scalars(select(Agent))).all()}
        assert set(ext.values()) <= set(agents)
        await voice.agent_login(tenant_id, ext["1001"], phones[0].uri)
        await voice.agent_login(tenant_id, ext["1002"], phones[1].uri)
        port = node.settings.sip.port
        calls = await asyncio.gather(
            asyncio.to_thread(
                lambda: sipp_call(tmp_path / "c1", port, talk_ms=9000, caller="+1666")
            ),
            asyncio.to_thread(
                lambda: _later(
                    0.2, lambda: sipp_call(tmp_path / "c2", port, talk_ms=9000, caller="+1777")
                )
            ),
        )
        from sqlalchemy import select

        from cloudcc.store.tables import ContactRecord

        async def records() -> list[ContactRecord]:
            await node.voice_node.contacts.flush()
            async with node.db.session() as s:
                rows = (
                    await s.scalars(select(ContactRecord).order_by(ContactRecord.created_at))
                ).all()
            return list(rows) if all(r.end_cause for r in rows) else []

        rows = await wait_until(records, 15)
        assert len(rows) == 2
        crashed, healthy = rows if rows[0].customer.startswith("+1666") else rows[::-1]
        assert crashed.end_cause == "error" and crashed.state == "ended"
        assert all(leg["state"] == "ended" for leg in crashed.legs)
        assert healthy.end_cause == "customer_hangup" and healthy.disposition == "answered"
        assert healthy.talk_seconds > 4
        healthy_call = calls[1] if rows[1] is healthy else calls[0]
        assert healthy_call.returncode == 0, healthy_call.stdout[-2000:]
    finally:
        for p in phones:
            p.stop()
        await node.close()


def _later(delay: float, fn):  # type: ignore[no-untyped-def]
    time.sleep(delay)
    return fn()


@contextlib.contextmanager
def _agent_phone_dies_mid_call(
    voice_node: LiveNode, api: Api, tmp_path: Path, talk_ms: int
) -> Iterator[subprocess.Popen[bytes]]:
    """A SIPp caller connected to agent 1001's SIPp phone, which then dies (no BYE); yields
    the caller, killed afterwards."""
    phone = SippAgentPhone(tmp_path / "agent").start()
    api.login("1001", phone.uri)
    caller = start_sipp_call(tmp_path / "caller", voice_node.sip_port, talk_ms=talk_ms, timeout=60)
    try:
        _wait_connected(api)
        phone.stop()
        yield caller
    finally:
        kill_group(caller)


def test_an_agent_phone_that_vanished_does_not_hold_the_record_back(voice_node, api, tmp_path):
    # The agent's phone dies mid-call (no BYE); when the customer hangs up, the node's BYE to
    # the phone goes unanswered for 32 s, but the record and the agent's wrap-up do not wait.
    with _agent_phone_dies_mid_call(voice_node, api, tmp_path, talk_ms=8000) as caller:
        assert caller.wait(30) == 0
        hung_up = time.monotonic()
        cdr = wait_until_cdr(api, lambda c: c["state"] in ("wrapup", "ended"), timeout=10)
        assert time.monotonic() - hung_up < 5
    assert cdr["end_cause"] == "customer_hangup" and cdr["disposition"] == "answered"
    assert all(leg["state"] == "ended" for leg in cdr["legs"])
    agent = api.agents["1001"]["id"]
    assert api.get(f"/agents/{agent}/status")["state"] == "wrap_up"


def test_an_agent_hangup_towards_a_vanished_phone_is_not_held_back(voice_node, api, tmp_path):
    # The agent's phone dies mid-call; the agent ends the call from the desktop. The BYE to
    # the dead phone goes unanswered for 32 s, but the operation, the customer's BYE and the
    # record do not wait for it.
    with _agent_phone_dies_mid_call(voice_node, api, tmp_path, talk_ms=40000) as caller:
        cid = api.live()[0]["contact_id"]
        started = time.monotonic()
        api.post(f"/contacts/{cid}/hangup", None)
        assert time.monotonic() - started < 5
        assert caller.wait(10) == 0  # our BYE reached the customer (SIPp took it)
        cdr = wait_until_cdr(api, lambda c: c["state"] in ("wrapup", "ended"), timeout=5)
    assert cdr["end_cause"] == "agent_hangup" and cdr["disposition"] == "answered"


def test_a_shutdown_mid_call_writes_the_cdr_and_closes_the_recording(tmp_path):
    node = LiveNode(tmp_path / "data")
    node.wait_ready()
    api = Api(node)
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        api.login("1001", phone.uri)
        caller = start_sipp_call(tmp_path, node.sip_port, talk_ms=30000, timeout=60)
        _wait_connected(api)
        time.sleep(2)
        assert node.stop() == 0
        caller.wait(20)
    finally:
        phone.stop()
    restarted = LiveNode(tmp_path / "data")
    try:
        restarted.wait_ready()
        api = Api(restarted)
        (cdr,) = api.contacts()
        assert cdr["state"] == "ended" and cdr["end_cause"] == "node_shutdown"
        assert cdr["disposition"] == "answered" and cdr["talk_seconds"] > 1.5
        (rid,) = cdr["recordings"]
        rec = api.get(f"/recordings/{rid}")
        assert rec["state"] == "complete" and rec["duration_seconds"] > 1.5
    finally:
        restarted.stop()


def test_a_killed_node_leaves_its_calls_recorded_and_closed_after_restart(tmp_path):
    node = LiveNode(tmp_path / "data")
    node.wait_ready()
    api = Api(node)
    phone = SippAgentPhone(tmp_path / "agent").start()
    caller = start_sipp_call(tmp_path, node.sip_port, talk_ms=30000, timeout=60)
    try:
        api.login("1001", phone.uri)
        _wait_connected(api)
        time.sleep(3)
        killed_at = time.time()
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait()
        node.stop()
    finally:
        kill_group(caller)
        phone.stop()
    restarted = LiveNode(tmp_path / "data")
    try:
        restarted.wait_ready()
        api = Api(restarted)
        (cdr,) = api.contacts()
        assert cdr["state"] == "ended" and cdr["end_cause"] == "node_failure"
        # The talk known at the last checkpoint (every 2 s) is kept; the record ends when the
        # node was last known alive, not at the restart.
        assert cdr["disposition"] == "node_failure"
        assert 1.0 < cdr["talk_seconds"] <= cdr["total_seconds"]
        assert _ts(cdr["ended_at"]) <= killed_at + 0.5
        assert all(leg["state"] == "ended" for leg in cdr["legs"])
        (rid,) = cdr["recordings"]
        rec = api.get(f"/recordings/{rid}")
        # Written at least once a second: at most the last second is lost.
        assert rec["state"] == "recovered" and rec["duration_seconds"] > 1.5
        assert rec["sha256"] and rec["bytes"] > 44
        audio = httpx.get(f"{api.base}/recordings/{rid}/audio", headers=api.headers)
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    finally:
        restarted.stop()


async def test_a_caller_who_vanishes_is_cleared_by_the_media_timeout(tmp_path):
    node = LiveNode(tmp_path / "data", env={"CLOUDCC_MEDIA__INACTIVITY_TIMEOUT": "3"})
    node.wait_ready()
    api = Api(node)
    try:
        agent = await Baresip(
            tmp_path / "agent",
            user="1001",
            password=api.passwords["1001"],
            registrar_port=node.sip_port,
            tone_hz=1500,
        ).start()
        caller = await Baresip(tmp_path / "caller", user="customer").start()
        try:
            await wait_until(lambda: "200 OK" in agent.output(), 10)
            api.login("1001")
            await caller.dial(f"sip:4000@127.0.0.1:{node.sip_port}")
            await asyncio.sleep(4)
            await caller.send_dtmf("2")
            await wait_until(lambda: any(c["state"] == "connected" for c in api.live()), 15)
            caller.kill()  # gone: no BYE, no more RTP
            cdr = await asyncio.to_thread(
                wait_until_cdr, api, lambda c: c["state"] in ("ended", "wrapup"), 20
            )
        finally:
            await caller.stop()
            await agent.stop()
        assert cdr["end_cause"] == "peer_lost"
        assert cdr["legs"][0]["end_cause"] == "media_timeout"
        assert cdr["disposition"] == "answered"
    finally:
        node.stop()


def _ts(value: str | float) -> float:
    from datetime import datetime

    return value if isinstance(value, float) else datetime.fromisoformat(value).timestamp()


def _wait_connected(api: Api, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c["state"] == "connected" for c in api.live()):
            return
        time.sleep(0.2)
    raise AssertionError("the call never connected")
