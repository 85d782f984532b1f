"""Browser legs in the media engine against aiortc (as a browser would): ICE-lite, DTLS-SRTP,
rtcp-mux and BUNDLE, bridged to a plain RTP peer, audio judged both ways."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cloudcc.contacts import sdp as glue
from cloudcc.media.bridge import BridgeMode
from cloudcc.media.engine import MediaEngine
from cloudcc.media.testing import RtpPeer, tone_level_dbfs
from cloudcc.sip.sdp import parse_sdp
from cloudcc.webrtc.testing import BrowserPeer, loopback_only
from cloudcc.webrtc.transport import transport_of

loopback_only()


_OPEN: list[RtpPeer] = []


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = random.randrange(40000, 59000, 2)
    eng = MediaEngine("127.0.0.1", base, base + 400, rtcp_interval=0.5, seed=None)
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop()
        while _OPEN:
            _OPEN.pop().close()
    assert eng.tick_errors == 0


async def _phone(engine: MediaEngine, codec: str = "PCMU") -> tuple[Any, RtpPeer]:
    peer = await RtpPeer.open(codec=codec)
    _OPEN.append(peer)
    leg = await engine.open_leg()
    leg.configure(peer.address, codec)
    peer.connect((leg.host, leg.port))
    return leg, peer


async def _judge(browser: BrowserPeer, phone: RtpPeer) -> None:
    """The phone sends 1 kHz, the browser 500 Hz: each hears the other."""
    start = time.monotonic()
    await phone.send_tone(1000, 2.0)
    steady = start + 0.6
    heard_by_browser = browser.audio(steady)
    heard_by_phone = phone.received_audio(steady)
    assert len(heard_by_browser) > 8000 * 0.8
    assert tone_level_dbfs(heard_by_browser, 1000) > -16
    assert len(heard_by_phone) > 8000 * 0.8
    assert tone_level_dbfs(heard_by_phone, 500) > -16


async def test_a_browser_offer_is_answered_and_audio_flows_both_ways_without_transcoding(
    engine: MediaEngine,
) -> None:
    browser = BrowserPeer(500.0)
    try:
        offer = parse_sdp(await browser.offer())
        leg = await engine.open_leg()
        answer = glue.answer_for(offer, leg, "127.0.0.1")
        text = str(answer)
        assert re.search(
            r"m=audio \d+ UDP/TLS/RTP/SAVPF 0\b", text
        )  # PCMU chosen over the browser's first (Opus)
        for line in ("a=ice-lite", "a=rtcp-mux", "a=setup:passive", "a=group:BUNDLE"):
            assert line in text
        await browser.accept(text)
        transport = transport_of(leg)
        assert transport is not None
        await asyncio.wait_for(transport.connected, 5)
        phone, peer = await _phone(engine)
        bridge = engine.bridge(leg, phone)
        assert bridge.mode is BridgeMode.RELAY  # G.711 both sides: packets relayed
        await _judge(browser, peer)
        assert transport.ice.nominated
        assert leg.stats().packets_received > 50
    finally:
        await browser.close()


async def test_the_node_offers_to_a_browser_and_configures_from_its_answer(
    engine: MediaEngine,
) -> None:
    browser = BrowserPeer(500.0)
    try:
        leg = await engine.open_leg()
        offer = glue.offer_for(leg, "127.0.0.1", webrtc=True, prefer="PCMA")  # the caller's
        assert "a=setup:actpass" in str(offer)
        assert re.search(r"m=audio \d+ UDP/TLS/RTP/SAVPF 8 0 ", str(offer))
        answer = parse_sdp(await browser.answer(str(offer)))
        glue.configure(leg, offer, answer)
        transport = transport_of(leg)
        assert transport is not None
        await asyncio.wait_for(transport.connected, 5)
        phone, peer = await _phone(engine, "PCMA")
        assert engine.bridge(leg, phone).mode is BridgeMode.RELAY  # PCMA both sides
        await _judge(browser, peer)
    finally:
        await browser.close()


async def test_forged_media_and_checks_with_a_wrong_password_are_refused(
    engine: MediaEngine,
) -> None:
    browser = BrowserPeer(500.0)
    try:
        leg = await engine.open_leg()
        answer = glue.answer_for(parse_sdp(await browser.offer()), leg, "127.0.0.1")
        await browser.accept(str(answer))
        transport = transport_of(leg)
        assert transport is not None
        await asyncio.wait_for(transport.connected, 5)
        intruder = await RtpPeer.open(codec="PCMU")
        _OPEN.append(intruder)
        intruder.connect((leg.host, leg.port))
        await intruder.send_tone(300, 0.3)  # plain RTP to a DTLS-SRTP port
        assert transport.srtp_failures >= 10
        from aioice import stun

        check = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        check.attributes["USERNAME"] = f"{transport.ice.local.ufrag}:x"
        check.add_message_integrity(b"not the password")
        intruder.send_raw(bytes(check))
        await asyncio.sleep(0.1)
        assert transport.ice.refused >= 1
        assert transport.ice.selected != intruder.address
    finally:
        await browser.close()


async def test_opus_is_transcoded_only_when_it_is_all_the_browser_offers(
    engine: MediaEngine,
) -> None:
    from aiortc.rtcrtpparameters import RTCRtpCodecCapability

    browser = BrowserPeer(500.0)
    try:
        transceiver = browser.pc.getTransceivers()[0]
        transceiver.setCodecPreferences([RTCRtpCodecCapability("audio/opus", 48000, 2)])
        offer = parse_sdp(await browser.offer())
        assert offer.audio is not None and offer.audio.codec("PCMU") is None
        leg = await engine.open_leg()
        answer = glue.answer_for(offer, leg, "127.0.0.1")
        assert "opus/48000/2" in str(answer)
        await browser.accept(str(answer))
        transport = transport_of(leg)
        assert transport is not None
        await asyncio.wait_for(transport.connected, 5)
        phone, peer = await _phone(engine)
        assert engine.bridge(leg, phone).mode is not BridgeMode.RELAY
        await _judge(browser, peer)
    finally:
        await browser.close()


def _check(transport_ufrag: str, browser_ufrag: str, pwd: str, nominate: bool = True) -> bytes:
    from aioice import stun

    check = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    check.attributes["USERNAME"] = f"{transport_ufrag}:{browser_ufrag}"
    check.attributes["PRIORITY"] = 1853817087
    check.attributes["ICE-CONTROLLING"] = 1
    if nominate:
        check.attributes["USE-CANDIDATE"] = None
    check.add_message_integrity(pwd.encode())
    check.add_fingerprint()
    return bytes(check)


async def test_an_ice_restart_offer_is_answered_with_new_credentials_and_keeps_the_keys(
    engine: MediaEngine,
) -> None:
    browser = BrowserPeer(500.0)
    try:
        offer_text = await browser.offer()
        leg = await engine.open_leg()
        first = glue.answer_for(parse_sdp(offer_text), leg, "127.0.0.1")
        await browser.accept(str(first))
        transport = transport_of(leg)
        assert transport is not None
        await asyncio.wait_for(transport.connected, 5)
        phone, peer = await _phone(engine)
        engine.bridge(leg, phone)
        old = transport.ice.local
        keys = transport._protect
        # The browser's re-offer after its network dropped (RFC 8445 §9): new ufrag and pwd,
        # the same certificate, setup actpass as JSEP re-offers say.
        ufrag = re.search(r"a=ice-ufrag:(\S+)", offer_text)
        assert ufrag is not None
        restart = re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:rst1", offer_text)
        restart = re.sub(r"a=ice-pwd:\S+", "a=ice-pwd:restartrestartrestart1234", restart)
        answer = str(glue.answer_for(parse_sdp(restart), leg, "127.0.0.1"))
        assert transport.ice_restarts == 1
        new = transport.ice.local
        assert new.ufrag != old.ufrag and new.pwd != old.pwd
        assert f"a=ice-ufrag:{new.ufrag}" in answer and f"a=ice-pwd:{new.pwd}" in answer
        assert "a=setup:passive" in answer  # the DTLS association and its roles are kept
        assert transport._protect is keys
        # Until a check of the new generation comes, media goes where it went (§9): the
        # browser (still on its old path) and the phone hear each other.
        await _judge(browser, peer)
        checker = await RtpPeer.open(codec="PCMU")
        _OPEN.append(checker)
        checker.connect((leg.host, leg.port))
        checker.send_raw(_check(old.ufrag, ufrag.group(1), old.pwd))  # the old generation
        await asyncio.sleep(0.1)
        assert transport.ice.refused == 1 and transport.ice.selected is None
        checker.send_raw(_check(new.ufrag, "rst1", new.pwd))
        await asyncio.sleep(0.1)
        assert transport.ice.selected == checker.address and transport.ice.nominated
        # the same re-offer again (a hold, say) is no new restart
        glue.answer_for(parse_sdp(restart), leg, "127.0.0.1")
        assert transport.ice_restarts == 1 and transport.ice.local == new
    finally:
        await browser.close()


async def test_media_moves_only_to_a_pair_that_passed_a_check(engine: MediaEngine) -> None:
    """Chromium moves its media to another valid pair without nominating it again: authentic
    SRTP from an address that passed an ICE check moves the leg there (RFC 8445 §12.1);
    from an address that never passed one it does not."""
    import struct

    browser = BrowserPeer(500.0)
    try:
        offer_text = await browser.offer()
        leg = await engine.open_leg()
        await browser.accept(str(glue.answer_for(parse_sdp(offer_text), leg, "127.0.0.1")))
        transport = transport_of(leg)
        assert transport is not None
        await asyncio.wait_for(transport.connected, 5)
        first = transport._dest
        ufrag = re.search(r"a=ice-ufrag:(\S+)", offer_text)
        assert ufrag is not None
        # the browser's own outbound SRTP key (aiortc's DTLS transport keeps it), on a
        # stream of its own; aiortc itself stops sending so that only these packets count
        sender = browser.pc.getTransceivers()[0].sender
        sender.replaceTrack(None)
        await asyncio.sleep(0.2)
        tx = sender.transport._tx_srtp

        def srtp(seq: int) -> bytes:
            header = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x5EC0DE)
            return bytes(tx.protect(header + b"\xff" * 160))

        stranger, other = await RtpPeer.open(codec="PCMU"), await RtpPeer.open(codec="PCMU")
        _OPEN.extend((stranger, other))
        for peer in (stranger, other):
            peer.connect((leg.host, leg.port))
        stranger.send_raw(srtp(1))  # authentic, but from where no check came
        await asyncio.sleep(0.1)
        assert transport._dest == first and transport.path_moves == 0
        local = transport.ice.local
        other.send_raw(_check(local.ufrag, ufrag.group(1), local.pwd, nominate=False))
        await asyncio.sleep(0.1)
        assert transport._dest == first  # a check without USE-CANDIDATE selects nothing
        other.send_raw(srtp(2))
        await asyncio.sleep(0.1)
        assert transport._dest == other.address and transport.path_moves == 1
        assert leg.stats().packets_received > 0
    finally:
        await browser.close()
