"""Voicemail with a real caller (baresip): a queue's and an agent's mailboxes, a message ended
by the key, by silence, by the maximum length and by hanging up; the messages through the
API with their permissions and tenant scoping, and the event of a new message."""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import pytest

from tests.voice.peers import Baresip, level, sine, wait_until, write_wav
from tests.voice.test_inbound import wait_until_cdr
from tests.voice.test_voice_isolation import _rival

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _headers_of(api, username: str, password: str) -> dict[str, str]:
    r = httpx.post(
        api.base + "/auth/login",
        json={"tenant": "demo", "username": username, "password": password},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _agent_headers(api, extension: str) -> dict[str, str]:
    return _headers_of(api, extension, api.passwords[extension])


def _messages(api, headers=None, **params) -> list[dict]:
    r = httpx.get(f"{api.base}/voicemail", params=params, headers=headers or api.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def _audio(api, message_id: str, headers=None) -> np.ndarray:
    r = httpx.get(f"{api.base}/voicemail/{message_id}/audio", headers=headers or api.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav", r.text
    import wave

    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def _ended(api) -> bool:
    items = api.contacts()
    return bool(items) and items[0]["state"] == "ended"


def test_a_caller_leaves_a_queue_a_message_ended_by_the_key(voice_node, api, tmp_path):
    support = api.queue_id("support")
    api.patch(f"/queues/{support}", {"overflow": {"no_agents": {"action": "voicemail"}}})
    r = httpx.put(
        f"{api.base}/mailboxes/queue/{support}",
        json={"silence_seconds": 0, "greeting": "Leave support a message."},
        headers=api.headers,
    )
    assert r.status_code == 200 and r.json()["end_key"] == "#", r.text

    async def scenario() -> None:
        caller = await Baresip(tmp_path / "caller", user="customer", tone_hz=1000).start()
        try:
            await caller.dial(f"sip:4000@127.0.0.1:{voice_node.sip_port}")
            await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
            await asyncio.sleep(4)
            await caller.send_dtmf("2")  # support: nobody signed in, so voicemail
            await asyncio.sleep(8)  # the greeting, the tone, then three seconds of "speech"
            assert not _ended(api), "silence does not end this mailbox's messages"
            await caller.send_dtmf("#")
            await wait_until(lambda: _ended(api), 15)
        finally:
            await caller.stop()

    asyncio.run(scenario())
    cdr = wait_until_cdr(api, lambda c: c["state"] == "ended")
    assert cdr["disposition"] == "voicemail" and cdr["end_cause"] == "system_hangup", cdr
    (message,) = _messages(api)
    assert message["owner_type"] == "queue" and message["owner_id"] == support
    assert message["ended_by"] == "key" and not message["read"]
    assert 1.5 < message["duration_seconds"] < 8, message
    assert cdr["attributes"]["voicemail_message"] == message["id"]
    assert message["recording_id"] in cdr["recordings"]
    heard = _audio(api, message["id"])
    assert level(heard, 1000) > -30, "the message holds what the caller said"
    # A new message is an event.
    events = api.get("/events?since=0&types=voicemail.new&limit=10")["events"]
    assert [e["data"]["id"] for e in events] == [message["id"]]
    assert events[0]["data"]["queue_id"] == support
    (box,) = [b for b in api.get("/mailboxes") if b["owner_id"] == support]
    assert box["messages"] == 1 and box["unread"] == 1
    # Read and unread.
    mid = message["id"]
    assert api.patch(f"/voicemail/{mid}", {"read": True})["read"]
    assert _messages(api, unread="true") == [] and len(_messages(api, unread="false")) == 1
    assert not api.patch(f"/voicemail/{mid}", {"read": False})["read"]
    # Scoping: an agent without voicemail:read sees no queue's messages; another tenant
    # does not see that it exists.
    agent = _agent_headers(api, "1001")
    assert _messages(api, agent) == []
    for method in ("get", "patch", "delete"):
        kw = {"json": {"read": True}} if method == "patch" else {}
        r = httpx.request(method, f"{api.base}/voicemail/{mid}", headers=agent, **kw)
        assert r.status_code == 404, r.text
    r = httpx.get(f"{api.base}/mailboxes/queue/{support}", headers=agent)
    assert r.status_code == 403, r.text
    rival, _ = _rival(api)
    assert httpx.get(f"{api.base}/voicemail/{mid}", headers=rival).status_code == 404
    assert httpx.get(f"{api.base}/voicemail", headers=rival).json()["items"] == []
    r = httpx.put(f"{api.base}/mailboxes/queue/{support}", json={}, headers=rival)
    assert r.status_code == 404, r.text
    # Deleting a message deletes its audio.
    api.delete(f"/voicemail/{mid}")
    assert _messages(api) == []
    r = httpx.get(f"{api.base}/recordings/{message['recording_id']}", headers=api.headers)
    assert r.status_code == 404


def test_an_unreachable_agents_caller_leaves_a_message_ended_by_silence(voice_node, api, tmp_path):
    agent_id = api.agents["1001"]["id"]
    api.provision("4300")
    api.post("/numbers", {"number": "4300", "target_type": "agent", "target": "1001"})
    r = httpx.put(
        f"{api.base}/mailboxes/agent/{agent_id}",
        json={"silence_seconds": 2, "max_seconds": 40},
        headers=api.headers,
    )
    assert r.status_code == 200, r.text
    # The caller says something for 2 s, then is silent for 8 s (and again).
    speech = np.concatenate([sine(700.0, 2.0, -12.0), np.zeros(8 * 8000, dtype=np.int16)])
    mic = write_wav(tmp_path / "speech.wav", speech)

    async def scenario() -> float:
        caller = await Baresip(tmp_path / "caller", user="customer", audio=mic).start()
        try:
            await caller.dial(f"sip:4300@127.0.0.1:{voice_node.sip_port}")
            await wait_until(lambda: any(True for _ in api.live()), 10)
            started = asyncio.get_running_loop().time()
            # Nobody answers for 1001: its mailbox; the message ends 2 s after the speech.
            await wait_until(lambda: _ended(api), 40)
            return asyncio.get_running_loop().time() - started
        finally:
            await caller.stop()

    took = asyncio.run(scenario())
    assert took < 35, took  # not the 40 s maximum
    (message,) = _messages(api)
    assert message["owner_type"] == "agent" and message["owner_id"] == agent_id
    assert message["ended_by"] == "silence", message
    heard = _audio(api, message["id"])
    assert level(heard, 700) > -30
    # Silence ended it: at most a speech burst, the silence before it, and 2 s after.
    assert message["duration_seconds"] < 13, message
    # The agent reaches its own mailbox and messages (and its event); another agent does not.
    mine = _agent_headers(api, "1001")
    assert [m["id"] for m in _messages(api, mine)] == [message["id"]]
    r = httpx.patch(f"{api.base}/voicemail/{message['id']}", json={"read": True}, headers=mine)
    assert r.status_code == 200 and r.json()["read"], r.text
    r = httpx.get(f"{api.base}/events?since=0&types=voicemail.*", headers=mine)
    assert r.status_code == 200, r.text
    assert [e["type"] for e in r.json()["events"]] == ["voicemail.new", "voicemail.read"]
    other = _agent_headers(api, "1002")
    assert _messages(api, other) == []
    assert httpx.get(f"{api.base}/voicemail/{message['id']}", headers=other).status_code == 404
    r = httpx.get(f"{api.base}/voicemail/{message['id']}/audio", headers=other)
    assert r.status_code == 404
    r = httpx.put(f"{api.base}/mailboxes/agent/{agent_id}", json={}, headers=mine)
    assert r.status_code == 403, r.text  # configuring needs voicemail:write


def test_a_message_ends_at_the_maximum_length_or_when_the_caller_hangs_up(
    voice_node, api, tmp_path
):
    support = api.queue_id("support")
    api.patch(f"/queues/{support}", {"overflow": {"no_agents": {"action": "voicemail"}}})
    # A flow's voicemail node names the mailbox (a queue's name here) and may shorten it.
    flow = api.post("/flows", {"document": _voicemail_flow("support")})
    api.post(f"/flows/{flow['id']}/publish", {})
    api.provision("4400")
    api.post("/numbers", {"number": "4400", "target_type": "flow", "target": "vm"})
    for bad in ({"max_seconds": 2}, {"end_key": "x"}, {"silence_seconds": -1}, {"bogus": 1}):
        r = httpx.put(f"{api.base}/mailboxes/queue/{support}", json=bad, headers=api.headers)
        assert r.status_code == 422, (bad, r.text)
    r = httpx.put(
        f"{api.base}/mailboxes/queue/{support}",
        json={"max_seconds": 5, "silence_seconds": 0},
        headers=api.headers,
    )
    assert r.status_code == 200, r.text

    async def call(number: str, hang_up_after: float | None) -> None:
        caller = await Baresip(tmp_path / f"caller{number}", user="customer").start()
        try:
            await caller.dial(f"sip:{number}@127.0.0.1:{voice_node.sip_port}")
            if number == "4000":
                await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
                await asyncio.sleep(4)
                await caller.send_dtmf("2")
            else:
                await wait_until(lambda: bool(api.live()), 10)
            if hang_up_after is not None:
                await asyncio.sleep(hang_up_after)
                await caller.hangup()
            await wait_until(lambda: not api.live(), 30)
        finally:
            await caller.stop()

    asyncio.run(call("4400", None))
    (first,) = _messages(api)
    assert first["owner_type"] == "queue" and first["owner_id"] == support
    assert first["ended_by"] == "max_length" and 4.5 < first["duration_seconds"] < 5.6, first
    asyncio.run(call("4000", 7.5))  # the greeting and tone take ~4 s: hung up ~3 s into the message
    second = _messages(api)[0]
    assert second["id"] != first["id"]
    assert second["ended_by"] == "hangup" and 1 < second["duration_seconds"] < 5, second
    assert level(_audio(api, second["id"]), 1000) > -30


def _voicemail_flow(mailbox: str) -> dict:
    return {
        "format": "cloudcc.flow/1",
        "id": "vm",
        "name": "vm",
        "start": "box",
        "nodes": [{"id": "box", "type": "voicemail", "mailbox": mailbox, "max_seconds": 10}],
    }


def test_a_mailboxs_own_greeting_is_heard_and_its_own_key_ends_the_message(
    voice_node, api, tmp_path
):
    from cloudcc.ai.tts import EspeakNg
    from tests.voice.test_inbound import best_match

    text = "You have reached the mailbox of Alice. Speak after the tone, then press star."
    greeting = asyncio.run(EspeakNg().synthesize(text, language="en-US"))
    agent_id = api.agents["1001"]["id"]
    api.provision("4300")
    api.post("/numbers", {"number": "4300", "target_type": "agent", "target": "1001"})
    r = httpx.put(
        f"{api.base}/mailboxes/agent/{agent_id}",
        json={"silence_seconds": 0, "end_key": "*", "greeting": text},
        headers=api.headers,
    )
    assert r.status_code == 200 and r.json()["end_key"] == "*", r.text

    async def scenario() -> np.ndarray:
        caller = await Baresip(tmp_path / "caller", user="customer", tone_hz=1000).start()
        try:
            await caller.dial(f"sip:4300@127.0.0.1:{voice_node.sip_port}")
            await wait_until(lambda: bool(api.live()), 10)
            # Nobody answers for 1001: its mailbox greets the caller with its own words.
            reference = greeting.samples[8000:16000]

            def greeted() -> bool:
                if not any(caller.dir.glob("dump-*-dec.wav")):
                    return False  # no audio yet
                heard = caller.heard()
                return len(heard) > len(reference) and best_match(heard, reference) > 0.9

            await wait_until(greeted, 30)
            await asyncio.sleep(greeting.duration + 2)  # the rest of it, the tone, speech
            await caller.send_dtmf("#")  # the default key, not this mailbox's
            await asyncio.sleep(3)
            assert not _ended(api), "'#' does not end a message of a mailbox whose key is '*'"
            await caller.send_dtmf("*")
            await wait_until(lambda: _ended(api), 15)
            return caller.heard()
        finally:
            await caller.stop()

    heard = asyncio.run(scenario())
    # The whole greeting as rendered, not the default one naming '#'.
    assert best_match(heard, greeting.samples) > 0.8
    (message,) = _messages(api)
    assert message["owner_type"] == "agent" and message["owner_id"] == agent_id
    assert message["ended_by"] == "key", message
    assert 3 < message["duration_seconds"] < 12, message
    assert level(_audio(api, message["id"]), 1000) > -30
