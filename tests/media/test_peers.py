"""Real peers: SIPp replaying captured RTP (PCMA speech, RFC 2833 digits) and baresip
sending a tone and DTMF, with a test-local SIP double pointing their media at engine legs."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cloudcc.media.codecs import create_codec
from cloudcc.media.dtmf import DtmfEvent, DtmfSource
from cloudcc.media.engine import Leg, MediaEngine
from cloudcc.media.rtp import RtpPacket
from cloudcc.media.testing import read_pcap_udp, sine, tone_level_dbfs
from cloudcc.media.wav import read_wav, write_wav

from .sipdouble import Answer, Offer, start_responder

pytestmark = [pytest.mark.peer]

SIPP_DIR = "/usr/share/sip-tester"
DIGIT_FILES = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "star", "pound"]
DIGITS = "1234567890*#"


def free_udp_port(pairs: int = 1) -> int:
    """An even port with ``2 * pairs`` consecutive free UDP ports from it."""
    for _ in range(200):
        base = random.randrange(30000, 39000, 2)
        socks = []
        try:
            for p in range(base, base + 2 * pairs):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no free UDP ports")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answer_with(leg: Leg, codec: str) -> tuple[list[Offer], object]:
    offers: list[Offer] = []

    def on_invite(offer: Offer) -> Answer:
        offers.append(offer)
        pt = offer.payload_type_of(codec)
        assert pt is not None, f"peer did not offer {codec}"
        dtmf = offer.payload_type_of("telephone-event")
        leg.configure((offer.media_ip, offer.media_port), codec, pt, dtmf_payload_type=dtmf)
        return Answer(leg.port, codec, pt, dtmf)

    return offers, on_invite


def sipp_scenario() -> str:
    plays = [
        f"""
  <nop><action><exec play_pcap_audio="{SIPP_DIR}/dtmf_2833_{name}.pcap"/></action></nop>
  <pause milliseconds="500"/>"""
        for name in DIGIT_FILES
    ]
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="media peer test">
  <send retrans="500"><![CDATA[
INVITE sip:media@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:media@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[local_ip_type] [local_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
]]></send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
  <send><![CDATA[
ACK sip:media@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:media@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><exec play_pcap_audio="{SIPP_DIR}/g711a.pcap"/></action></nop>
  <pause milliseconds="7600"/>{"".join(plays)}
  <send retrans="500"><![CDATA[
BYE sip:media@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:media@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def pcap_reference_audio() -> np.ndarray:
    codec = create_codec("PCMA")
    payloads = [RtpPacket.parse(p).payload for _, p in read_pcap_udp(f"{SIPP_DIR}/g711a.pcap")]
    return np.concatenate([codec.decode(p) for p in payloads])


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")
async def test_sipp_pcap_speech_and_all_twelve_rfc2833_digits_arrive_once_each(
    engine: MediaEngine, tmp_path: Path
) -> None:
    leg = await engine.open_leg()
    offers, on_invite = answer_with(leg, "PCMA")
    protocol, transport, sip_port = await start_responder(on_invite)  # type: ignore[arg-type]
    events: list[DtmfEvent] = []
    leg.on_dtmf(events.append)
    frames: list[np.ndarray] = []
    leg.add_listener(lambda f: frames.append(f.copy()))
    (tmp_path / "scenario.xml").write_text(sipp_scenario())
    proc = await asyncio.create_subprocess_exec(
        "timeout", "60", "sipp", f"127.0.0.1:{sip_port}",
        "-sf", "scenario.xml", "-i", "127.0.0.1", "-p", str(free_udp_port()),
        "-mi", "127.0.0.1", "-mp", str(free_udp_port(2)),
        "-m", "1", "-nostdin", "-trace_err",
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        transport.close()
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert offers and protocol.ended.is_set()
    # every digit exactly once, none doubled by the redundant end packets
    assert "".join(e.digit for e in events) == DIGITS
    assert {e.source for e in events} == {DtmfSource.RFC4733}
    # the speech arrived intact: the received audio lines up with the capture's audio
    received = np.concatenate(frames).astype(np.float64)
    reference = pcap_reference_audio().astype(np.float64)
    segment = reference[8000:24000]
    corr = np.correlate(received, segment, mode="valid")
    best = int(np.argmax(corr))
    window = received[best : best + len(segment)]
    similarity = float(
        np.dot(window, segment) / np.sqrt(np.dot(window, window) * np.dot(segment, segment))
    )
    assert similarity > 0.98, similarity
    stats = leg.stats()
    assert stats.packets_received >= 236 + 12 * 10 - 5


BARESIP_CONFIG = """
sip_listen 127.0.0.1:{sip_port}
net_interface 127.0.0.1
audio_source aufile,{source}
audio_player alsa,null
audio_alert alsa,null
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module sndfile.so
module alsa.so
snd_path {player}
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
rtp_ports {rtp_min}-{rtp_max}
"""


async def baresip_command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str, params: str = ""
) -> None:
    import json

    message = json.dumps({"command": command, "params": params, "token": command}).encode()
    writer.write(f"{len(message)}:".encode() + message + b",")
    await writer.drain()
    del reader


@pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed")
async def test_baresip_tone_and_rfc2833_digits_reach_the_leg_and_our_audio_reaches_baresip(
    engine: MediaEngine, tmp_path: Path
) -> None:
    leg = await engine.open_leg()
    offers, on_invite = answer_with(leg, "PCMU")
    protocol, transport, sip_port = await start_responder(on_invite)  # type: ignore[arg-type]
    events: list[DtmfEvent] = []
    leg.on_dtmf(events.append)
    frames: list[np.ndarray] = []
    leg.add_listener(lambda f: frames.append(f.copy()))
    source = tmp_path / "tone.wav"
    write_wav(source, np.concatenate([sine(1000, 20.0, -10.0)]))
    player = tmp_path / "dumps"
    player.mkdir()
    ctrl_port = free_tcp_port()
    rtp_min = free_udp_port(10)
    (tmp_path / "config").write_text(
        BARESIP_CONFIG.format(
            sip_port=free_udp_port(),
            source=source,
            player=player,
            ctrl_port=ctrl_port,
            rtp_min=rtp_min,
            rtp_max=rtp_min + 19,
        )
    )
    (tmp_path / "accounts").write_text("<sip:tester@127.0.0.1>;regint=0;audio_codecs=PCMU,PCMA\n")
    log = open(tmp_path / "baresip.log", "wb")  # noqa: SIM115
    proc = await asyncio.create_subprocess_exec(
        "timeout", "60", "baresip", "-f", str(tmp_path), stdout=log, stderr=subprocess.STDOUT
    )
    writer = None
    try:
        for _ in range(50):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", ctrl_port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        assert writer is not None, "baresip control port did not open"
        playback = engine.play(leg, sine(600, 20.0, -10.0))
        await baresip_command(reader, writer, "dial", f"sip:media@127.0.0.1:{sip_port}")
        await asyncio.wait_for(protocol.answered.wait(), 10)
        await asyncio.sleep(2.0)
        await baresip_command(reader, writer, "sndcode", "159#")
        await asyncio.sleep(3.0)
        await baresip_command(reader, writer, "hangup")
        await asyncio.sleep(0.5)
        playback.stop()
    finally:
        if writer is not None:
            writer.close()
            await writer.wait_closed()
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
        transport.close()
    log_text = (tmp_path / "baresip.log").read_text(errors="replace")
    assert offers, log_text[-2000:]
    assert "".join(e.digit for e in events) == "159#", log_text[-2000:]
    loud = [f for f in frames if np.sqrt(np.mean(f.astype(np.float64) ** 2)) > 1000]
    voiced = np.concatenate(loud)
    assert len(voiced) > 8000 * 3
    assert abs(tone_level_dbfs(voiced[1600:-1600], 1000) - -10.0) < 1.0
    # baresip's sndfile module dumps what it decoded from us
    dumps = sorted(player.glob("*-dec.wav"))
    assert dumps, log_text[-2000:]
    # baresip starts a new dump file when its audio restarts (as around the DTMF): the level
    # of what it heard is taken over every file's 20 ms blocks with sound, so that a gap (a
    # late packet concealed on a loaded machine) does not pass for a quieter tone.
    sounding = []
    for dump in dumps:
        heard, rate = read_wav(dump)
        assert rate == 8000
        blocks = heard[: len(heard) // 160 * 160, 0].reshape(-1, 160).astype(np.float64)
        sounding.append(blocks[np.sqrt(np.mean(blocks**2, axis=1)) > 1000][5:-5])
    voiced_heard = np.concatenate(sounding).ravel()
    assert len(voiced_heard) > 8000 * 1.5
    assert abs(tone_level_dbfs(voiced_heard, 600) - -10.0) < 1.0
