"""A browser-like SIP user agent for tests: SIP over WebSocket (RFC 7118) as JsSIP speaks
it, media by aiortc (WebRTC). Registers with digest auth, answers an incoming INVITE."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl

from websockets.asyncio.client import ClientConnection, connect

from cloudcc.webrtc.testing import BrowserPeer
from tests.sip.helpers import challenge_params, digest_md5

_IDS = itertools.count(1)


def header(text: str, name: str) -> str:
    for line in text.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {text[:300]!r}")


def status(text: str) -> int:
    return int(text.split(" ", 2)[1]) if text.startswith("SIP/2.0") else 0


class BrowserUa:
    def __init__(self, url: str, user: str, password: str, domain: str = "127.0.0.1",
                 tone_hz: float = 500.0, ssl_context: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.url = url
        self.user = user
        self.password = password
        self.domain = domain
        self.transport = "WSS" if url.startswith("wss") else "WS"
        self.host = f"{user}-{next(_IDS)}.invalid"
        self.peer = BrowserPeer(tone_hz)
        self.ssl = ssl_context
        self.ws: ClientConnection | None = None
        self.incoming: asyncio.Queue[str] = asyncio.Queue()
        self.responses: asyncio.Queue[str] = asyncio.Queue()
        self.dialog: dict[str, str] = {}
        self._reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                text = frame if isinstance(frame, str) else frame.decode()
                if text.startswith("SIP/2.0"):
                    self.responses.put_nowait(text)
                else:
                    self.incoming.put_nowait(text)

    def _request(self, method: str, uri: str, call_id: str, cseq: int, to: str,
                 extra: tuple[str, ...] = (), body: str = "") -> str:  # fmt: skip
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} {self.host};branch=z9hG4bK{call_id}{cseq}{method}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.domain}>;tag=ua{self.user}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{self.host};transport={self.transport.lower()}>",
            *extra,
            f"Content-Length: {len(body.encode())}",
            "",
            body,
        ]
        return "\r\n".join(lines)

    async def register(self) -> None:
        self.ws = await connect(self.url, subprotocols=["sip"], ssl=self.ssl)  # type: ignore[list-item]
        self._reader = asyncio.ensure_future(self._read())
        uri, to = f"sip:{self.domain}", f"<sip:{self.user}@{self.domain}>"
        call_id = f"reg-{self.host}"
        await self.ws.send(self._request("REGISTER", uri, call_id, 1, to, ("Expires: 600",)))
        challenge = await self._final()
        assert status(challenge) == 401, challenge
        p = challenge_params(challenge.encode())
        auth = digest_md5(self.user, p["realm"], self.password, "REGISTER", uri, p["nonce"])
        await self.ws.send(self._request("REGISTER", uri, call_id, 2, to,
                                         ("Expires: 600", f"Authorization: {auth}")))  # fmt: skip
        ok = await self._final()
        assert status(ok) == 200, ok

    async def _final(self, timeout: float = 10) -> str:
        while True:
            response = await asyncio.wait_for(self.responses.get(), timeout)
            if status(response) >= 200:
                return response

    def _reply(self, request: str, code: int, reason: str, body: str = "",
               to_tag: str = "") -> str:  # fmt: skip
        to = header(request, "To") + (
            f";tag={to_tag}" if to_tag and "tag=" not in header(request, "To") else ""
        )
        vias = [line for line in request.split("\r\n") if line.lower().startswith("via:")]
        lines = [
            f"SIP/2.0 {code} {reason}",
            *vias,
            f"From: {header(request, 'From')}",
            f"To: {to}",
            f"Call-ID: {header(request, 'Call-ID')}",
            f"CSeq: {header(request, 'CSeq')}",
            f"Contact: <sip:{self.user}@{self.host};transport={self.transport.lower()}>",
            *(["Content-Type: application/sdp"] if body else []),
            f"Content-Length: {len(body.encode())}",
            "",
            body,
        ]
        return "\r\n".join(lines)

    async def answer(self, timeout: float = 30) -> str:
        """Wait for an INVITE, answer it with aiortc's SDP; returns the node's offer."""
        assert self.ws is not None
        while True:
            invite = await asyncio.wait_for(self.incoming.get(), timeout)
            if invite.startswith("INVITE"):
                break
        offer = invite.split("\r\n\r\n", 1)[1]
        await self.ws.send(self._reply(invite, 180, "Ringing", to_tag="uas1"))
        answer = await self.peer.answer(offer)
        await self.ws.send(self._reply(invite, 200, "OK", answer, to_tag="uas1"))
        self.dialog = {"call_id": header(invite, "Call-ID")}
        return offer

    async def serve_requests(self) -> list[str]:
        """Answer in-dialog requests (ACK needs none, re-INVITE, BYE) until BYE."""
        assert self.ws is not None
        seen = []
        while True:
            request = await self.incoming.get()
            method = request.split(" ", 1)[0]
            seen.append(method)
            if method == "ACK":
                continue
            if method == "INVITE":  # hold / unhold: same association, answered again
                sdp = str(self.peer.pc.localDescription.sdp)
                await self.ws.send(self._reply(request, 200, "OK", sdp))
                continue
            await self.ws.send(self._reply(request, 200, "OK"))
            if method == "BYE":
                return seen

    async def close(self) -> None:
        await self.peer.close()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
