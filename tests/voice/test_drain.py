"""SIGTERM drains a node: new calls are refused with 503 and Retry-After, the live call is
given time to end by itself, and the node is not ready meanwhile."""

from __future__ import annotations

import signal
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveNode, free_port
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group, start_sipp_call

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def invite_status(sip_port: int) -> tuple[int, dict[str, str]]:
    """Send one INVITE to 4000 from a bare UDP socket; the final status and its headers."""
    port = free_port("both")
    call_id = uuid.uuid4().hex
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    sdp += "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    invite = (
        f"INVITE sip:4000@127.0.0.1:{sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id[:10]};rport\r\n"
        f"From: <sip:+15550@127.0.0.1:{port}>;tag=t{call_id[:6]}\r\n"
        f"To: <sip:4000@127.0.0.1:{sip_port}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:+15550@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.settimeout(5)
        sock.sendto(invite.encode(), ("127.0.0.1", sip_port))
        while True:
            data = sock.recv(65535).decode()
            status = int(data.split(" ", 2)[1])
            if status >= 200:
                lines = data.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
                headers = {
                    k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)
                }
                return status, headers


def test_sigterm_refuses_new_calls_and_lets_the_live_one_finish(tmp_path: Path) -> None:
    node = LiveNode(tmp_path / "data", env={"CLOUDCC_RECOVERY__DRAIN_SECONDS": "30"})
    node.wait_ready()
    api = Api(node)
    phone = SippAgentPhone(tmp_path / "agent").start()
    caller = start_sipp_call(tmp_path / "caller", node.sip_port, talk_ms=9000, timeout=60)
    try:
        api.login("1001", phone.uri)
        deadline = time.monotonic() + 20
        while not any(c["state"] == "connected" for c in api.live()):
            assert time.monotonic() < deadline, "the call never connected"
            time.sleep(0.2)
        node.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        ready = httpx.get(node.base + "/readyz", timeout=5)
        assert ready.status_code == 503 and ready.headers["retry-after"]
        assert "draining" in ready.json()["checks"]["started"]
        assert httpx.get(node.base + "/healthz", timeout=5).status_code == 200  # alive
        status, headers = invite_status(node.sip_port)
        assert status == 503 and int(headers["retry-after"]) > 0
        assert node.proc.poll() is None  # still serving the live call
        assert caller.wait(30) == 0  # the caller hung up by itself, after its 9 s
        assert node.proc.wait(15) == 0
    finally:
        kill_group(caller)
        phone.stop()
        node.stop()
    restarted = LiveNode(tmp_path / "data")
    try:
        restarted.wait_ready()
        (cdr,) = Api(restarted).contacts()  # the refused INVITE started no contact
        assert cdr["end_cause"] == "customer_hangup" and cdr["disposition"] == "answered"
    finally:
        restarted.stop()
