"""A minimal SIP user agent server for media peer tests (RFC 3261 text over UDP).

Just enough to let SIPp or baresip set up one call whose media goes to an engine
leg: answer INVITE with 200 OK and an SDP pointing at the leg, accept ACK, answer
BYE. It is a test double at the network boundary, not a SIP stack.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast


@dataclass
class Offer:
    media_ip: str
    media_port: int
    payload_types: list[int]
    rtpmap: dict[int, str]

    def payload_type_of(self, encoding: str) -> int | None:
        for pt, name in self.rtpmap.items():
            if name.split("/")[0].upper() == encoding.upper():
                return pt
        static = {"PCMU": 0, "PCMA": 8}.get(encoding.upper())
        return static if static in self.payload_types else None


@dataclass
class Answer:
    port: int
    codec: str
    payload_type: int
    dtmf_payload_type: int | None


def parse_sdp(body: str) -> Offer:
    ip = re.search(r"^c=IN IP4 (\S+)", body, re.M)
    m = re.search(r"^m=audio (\d+) RTP/AVP ([\d ]+)", body, re.M)
    if not ip or not m:
        raise ValueError("no audio in SDP")
    rtpmap = {int(pt): name for pt, name in re.findall(r"^a=rtpmap:(\d+) (\S+)", body, re.M)}
    return Offer(ip.group(1), int(m.group(1)), [int(x) for x in m.group(2).split()], rtpmap)


def answer_sdp(answer: Answer) -> str:
    pts = f"{answer.payload_type}" + (
        f" {answer.dtmf_payload_type}" if answer.dtmf_payload_type is not None else ""
    )
    lines = [
        "v=0",
        "o=cloudcc 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio {answer.port} RTP/AVP {pts}",
        f"a=rtpmap:{answer.payload_type} {answer.codec}/8000",
    ]
    if answer.dtmf_payload_type is not None:
        lines += [
            f"a=rtpmap:{answer.dtmf_payload_type} telephone-event/8000",
            f"a=fmtp:{answer.dtmf_payload_type} 0-15",
        ]
    lines.append("a=sendrecv")
    return "\r\n".join(lines) + "\r\n"


@dataclass
class SipResponder(asyncio.DatagramProtocol):
    """Answers one INVITE by calling ``on_invite(offer) -> Answer``."""

    on_invite: Callable[[Offer], Answer]
    transport: asyncio.DatagramTransport | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _answers: dict[str, bytes] = field(default_factory=dict)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        method = lines[0].split(" ", 1)[0]
        headers = [ln for ln in lines[1:] if ln]
        call_id = _header(headers, "Call-ID", "i")
        if method == "INVITE":
            if call_id not in self._answers:
                answer = self.on_invite(parse_sdp(body))
                sdp = answer_sdp(answer)
                self._answers[call_id] = _response(
                    headers, "200 OK", to_tag="cloudcc1", body=sdp, contact=True
                )
            assert self.transport is not None
            self.transport.sendto(self._answers[call_id], addr)
            self.answered.set()
        elif method == "ACK":
            pass
        elif method in ("BYE", "OPTIONS", "INFO", "UPDATE"):
            assert self.transport is not None
            self.transport.sendto(_response(headers, "200 OK"), addr)
            if method == "BYE":
                self.ended.set()


def _header(headers: list[str], name: str, short: str = "") -> str:
    for h in headers:
        key, _, value = h.partition(":")
        if key.strip().lower() in (name.lower(), short.lower()):
            return value.strip()
    return ""


def _response(
    headers: list[str], status: str, to_tag: str = "", body: str = "", contact: bool = False
) -> bytes:
    out = [f"SIP/2.0 {status}"]
    for h in headers:
        key = h.partition(":")[0].strip().lower()
        if key in ("via", "v", "from", "f", "call-id", "i", "cseq", "record-route"):
            out.append(h)
        elif key in ("to", "t"):
            out.append(h if ";tag=" in h or not to_tag else f"{h};tag={to_tag}")
    if contact:
        out.append("Contact: <sip:cloudcc@127.0.0.1>")
    if body:
        out.append("Content-Type: application/sdp")
    out.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(out) + "\r\n\r\n" + body).encode()


async def start_responder(
    on_invite: Callable[[Offer], Answer],
) -> tuple[SipResponder, asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: SipResponder(on_invite), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    return protocol, transport, port
