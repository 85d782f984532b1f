"""SRTP keyed by SDES (RFC 4568) on SIP legs: the offer/answer by the tenant's policy, SRTP
between engine legs on real sockets, and baresip over SIP/TLS with mandatory SRTP."""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from cloudcc.contacts import sdp as glue
from cloudcc.contacts.sdes import SrtpPolicy, crypto_of
from cloudcc.media.engine import MediaEngine
from cloudcc.media.srtp import CryptoAttribute, sdes_of
from cloudcc.media.testing import RtpPeer, rms_dbfs, sine, tone_level_dbfs
from cloudcc.sip.exceptions import OfferAnswerError
from cloudcc.sip.sdp import parse_sdp

KEY = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")


def offer(proto: str = "RTP/AVP", crypto: CryptoAttribute | None = KEY, port: int = 40000) -> str:
    lines = [
        "v=0", "o=phone 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
        f"m=audio {port} {proto} 0 101", "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
    ]  # fmt: skip
    if crypto is not None:
        lines.append(f"a=crypto:{crypto}")
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = random.randrange(40000, 59000, 2)
    eng = MediaEngine("127.0.0.1", base, base + 200, rtcp_interval=0.5, seed=None)
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop()


def test_crypto_attributes_parse_and_refuse_what_we_cannot_do() -> None:
    assert CryptoAttribute.parse(str(KEY)) == KEY
    assert CryptoAttribute.parse("1 AES_256_CM_HMAC_SHA1_80 inline:" + "A" * 60) is None
    assert CryptoAttribute.parse("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=") is None  # short
    two_keys = f"1 AES_CM_128_HMAC_SHA1_80 inline:{str(KEY).split(':')[1]};inline:x"
    assert CryptoAttribute.parse(two_keys) is None


@pytest.mark.parametrize(
    ("policy", "tls", "proto", "crypto", "outcome"),
    [
        ("optional", True, "RTP/SAVP", True, "srtp"),
        ("optional", True, "RTP/AVP", True, "srtp"),  # best effort: crypto on RTP/AVP
        ("optional", False, "RTP/AVP", True, "plain"),  # keys over UDP are not taken
        ("optional", False, "RTP/SAVP", True, "488"),
        ("optional", True, "RTP/AVP", False, "plain"),
        ("off", True, "RTP/AVP", True, "plain"),
        ("off", True, "RTP/SAVP", True, "488"),
        ("required", True, "RTP/SAVP", True, "srtp"),
        ("required", True, "RTP/AVP", False, "488"),
        ("required", False, "RTP/SAVP", True, "488"),
    ],
)  # fmt: skip
async def test_the_answer_follows_the_tenant_policy_and_the_signalling(
    engine: MediaEngine, policy: str, tls: bool, proto: str, crypto: bool, outcome: str
) -> None:
    leg = await engine.open_leg()
    remote = parse_sdp(offer(proto, KEY if crypto else None))
    if outcome == "488":
        with pytest.raises(OfferAnswerError):
            glue.answer_for(remote, leg, "127.0.0.1", secure_signalling=tls,
                            srtp_policy=SrtpPolicy(policy))  # fmt: skip
        return
    answer = glue.answer_for(remote, leg, "127.0.0.1", secure_signalling=tls,
                             srtp_policy=SrtpPolicy(policy))  # fmt: skip
    ours = crypto_of(answer.audio)
    if outcome == "srtp":
        assert len(ours) == 1 and ours[0].tag == KEY.tag and ours[0].key != KEY.key
        assert answer.audio is not None and answer.audio.proto == proto
        assert sdes_of(leg) is not None
    else:
        assert ours == [] and sdes_of(leg) is None


def test_our_offer_carries_a_key_only_over_tls() -> None:
    async def run() -> None:
        eng = MediaEngine("127.0.0.1", 47000, 47100, seed=None)
        await eng.start()
        try:
            leg = await eng.open_leg()
            assert crypto_of(glue.offer_for(leg, "127.0.0.1").audio) == []
            sent = glue.offer_for(leg, "127.0.0.1", secure_signalling=True)
            assert len(crypto_of(sent.audio)) == 1 and sent.audio.proto == "RTP/AVP"
            required = glue.offer_for(leg, "127.0.0.1", secure_signalling=True,
                                      srtp_policy=SrtpPolicy.REQUIRED)  # fmt: skip
            assert required.audio is not None and required.audio.proto == "RTP/SAVP"
            with pytest.raises(OfferAnswerError):
                glue.offer_for(leg, "127.0.0.1", srtp_policy=SrtpPolicy.REQUIRED)
            # the peer answers with its key: the leg is keyed; a declined offer stays plain
            answer = parse_sdp(offer("RTP/AVP", CryptoAttribute.generate(1, KEY.suite)))
            glue.configure(leg, sent, answer)
            assert sdes_of(leg) is not None
        finally:
            await eng.stop()

    asyncio.run(run())


async def test_two_legs_talk_srtp_and_plain_rtp_is_refused(engine: MediaEngine) -> None:
    a = await engine.open_leg()
    b = await engine.open_leg()
    # a offers to b over TLS; b answers; each is configured to the other's port
    offer_a = glue.offer_for(a, "127.0.0.1", secure_signalling=True)
    answer_b = glue.answer_for(offer_a, b, "127.0.0.1", secure_signalling=True)
    glue.configure(a, offer_a, answer_b)
    heard: list[np.ndarray] = []
    b.add_listener(lambda f: heard.append(f.copy()))
    engine.play(a, sine(700, 2.0, -10.0))
    await asyncio.sleep(1.5)
    pcm = np.concatenate(heard[-40:])
    assert tone_level_dbfs(pcm, 700) > -14  # decrypted with the key a sent in its offer
    transport = sdes_of(b)
    assert transport is not None and transport.srtp_failures == 0
    intruder = await RtpPeer.open(codec="PCMU")
    try:
        intruder.connect((b.host, b.port))
        await intruder.send_tone(300, 0.3)
        assert transport.srtp_failures >= 10  # plain RTP to an SRTP leg: dropped
    finally:
        intruder.close()


@pytest.mark.peer
@pytest.mark.slow
def test_baresip_over_tls_with_mandatory_srtp_hears_the_ivr_and_its_keys_are_heard(
    tmp_path: Path,
) -> None:
    from tests.conftest import LiveNode, free_port
    from tests.voice.conftest import Api
    from tests.voice.peers import Baresip, wait_until

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["timeout", "30", "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    tls_port = free_port()
    node = LiveNode(
        tmp_path / "data",
        env={"CLOUDCC_SIP__TLS_PORT": str(tls_port), "CLOUDCC_SIP__TLS_CERT": str(cert),
             "CLOUDCC_SIP__TLS_KEY": str(key)},
    )  # fmt: skip
    try:
        node.wait_ready()
        api = Api(node)
        api.patch("/tenant", {"srtp_policy": "required"})

        async def scenario() -> tuple[np.ndarray, list[dict]]:
            caller = await Baresip(
                tmp_path / "caller", user="customer", tone_hz=1000,
                modules=("srtp.so",), account_params=";mediaenc=srtp-mand",
            ).start()  # fmt: skip
            try:
                await caller.dial(f"sip:4000@127.0.0.1:{tls_port};transport=tls")
                await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 15)
                await asyncio.sleep(3.0)
                await caller.send_dtmf("1")  # RFC 4733 inside SRTP: the node must decrypt
                live = await wait_until(
                    lambda: [c for c in api.live() if c["state"] in ("queued", "offered")], 15
                )
                heard = caller.heard()
                await caller.hangup()
                return heard, live
            finally:
                await caller.stop()

        heard, live = asyncio.run(scenario())
        assert live, "the caller's DTMF (sent in SRTP) took it from the IVR to the queue"
        assert rms_dbfs(heard) > -45, "the caller decrypted the node's greeting"
    finally:
        node.stop()


@pytest.mark.peer
def test_a_required_policy_refuses_a_plain_call_over_udp(tmp_path: Path) -> None:
    from tests.conftest import LiveNode
    from tests.voice.conftest import Api
    from tests.voice.peers import sipp_call

    node = LiveNode(tmp_path / "data")
    try:
        node.wait_ready()
        api = Api(node)
        tenant = api.patch("/tenant", {"srtp_policy": "required"})
        assert tenant["srtp_policy"] == "required"
        result = sipp_call(tmp_path / "sipp", node.sip_port, talk_ms=500, timeout=30)
        assert result.returncode != 0  # 488: the call is refused
        assert api.get("/tenant")["srtp_policy"] == "required"
    finally:
        node.stop()
