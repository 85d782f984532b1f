"""TLS and WebSocket (RFC 7118) transports carrying REGISTER and INVITE.

The TLS certificate is made in the test with the openssl CLI. The WebSocket client is
the ``websockets`` package, speaking SIP text frames with the ``sip`` subprotocol.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from cloudcc.sip.auth import Algorithm, Credential
from cloudcc.sip.call import AuthKind, EndCause, Ended
from cloudcc.sip.sdp import make_offer

from .conftest import wait_for
from .helpers import SDP_OFFER, challenge_params, digest_md5

pytestmark = pytest.mark.peer


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["timeout", "30", "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    return context


def message(method: str, uri: str, *, transport: str, call_id: str, cseq: int,
            to: str, extra: tuple[str, ...] = (), body: str = "", to_tag: str = "",
            via_host: str = "client.invalid") -> str:  # fmt: skip
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {via_host};branch=z9hG4bK{call_id}{cseq}{method[:2]}",
        "Max-Forwards: 70",
        "From: <sip:alice@127.0.0.1>;tag=wsclient",
        f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:alice@{via_host};transport={transport.lower()}>",
        *extra,
        f"Content-Length: {len(body.encode())}",
        "",
        body,
    ]
    return "\r\n".join(lines)


def status(text: str) -> int:
    return int(text.split(" ", 2)[1])


def header(text: str, name: str) -> str:
    for line in text.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {text[:200]!r}")


async def register_over_stream(reader, writer, transport: str) -> str:
    """REGISTER, answer the 401, return the 200 (the client speaks raw SIP)."""
    uri = "sip:127.0.0.1"
    writer.write(message("REGISTER", uri, transport=transport, call_id="tls-reg", cseq=1,
                         to="sip:alice@127.0.0.1").encode())  # fmt: skip
    challenge = await read_message(reader)
    assert status(challenge) == 401
    p = challenge_params(challenge.encode())
    auth = digest_md5("alice", p["realm"], "secret", "REGISTER", uri, p["nonce"])
    writer.write(message("REGISTER", uri, transport=transport, call_id="tls-reg", cseq=2,
                         to="sip:alice@127.0.0.1", extra=(f"Authorization: {auth}",)).encode())  # fmt: skip
    return await read_message(reader)


async def read_message(reader: asyncio.StreamReader) -> str:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    text = head.decode()
    length = int(header(text, "Content-Length"))
    body = await reader.readexactly(length) if length else b""
    return text + body.decode()


async def test_register_over_tls_binds_the_tls_flow(make_endpoint, app, certificate):
    key, cert = certificate
    ep = await make_endpoint(app, tls_port=0, ssl_context=server_context(cert, key))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", ep.ports["TLS"], ssl=client_context(cert)
    )
    try:
        ok = await register_over_stream(reader, writer, "TLS")
        assert status(ok) == 200
        (binding,) = ep.registrar.lookup("sip:alice@127.0.0.1", ep.now())
        assert binding.transport == "TLS"
        # calling the AOR reuses the phone's TLS connection (it has no listener)
        call = await ep.call("sip:alice@127.0.0.1", make_offer("127.0.0.1", 43000))
        invite = await read_message(reader)
        assert invite.startswith("INVITE sip:alice@client.invalid;transport=tls SIP/2.0")
        await call.cancel()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_call_between_two_endpoints_over_tls(make_endpoint, app, certificate):
    key, cert = certificate
    app.trunk_sources.add("127.0.0.1")
    callee = await make_endpoint(app, tls_port=0, ssl_context=server_context(cert, key))
    caller = await make_endpoint(client_ssl_context=client_context(cert))
    call = await caller.call(
        f"sip:1000@127.0.0.1:{callee.ports['TLS']};transport=tls", make_offer("127.0.0.1", 43002)
    )
    remote = await asyncio.wait_for(call.answered(), 10)
    assert remote is not None
    (incoming,) = app.calls
    assert incoming.transport == "TLS" and incoming.auth is AuthKind.TRUNK
    await call.hangup()
    await wait_for(lambda: incoming.ended)
    assert incoming.end == Ended(EndCause.REMOTE_HANGUP)


async def test_websocket_phone_registers_calls_and_is_called(make_endpoint, app):
    ep = await make_endpoint(app, ws_port=0)
    async with connect(f"ws://127.0.0.1:{ep.ports['WS']}", subprotocols=["sip"]) as ws:
        uri = "sip:127.0.0.1"
        await ws.send(message("REGISTER", uri, transport="WS", call_id="ws-reg", cseq=1,
                              to="sip:alice@127.0.0.1"))  # fmt: skip
        challenge = str(await ws.recv())
        assert status(challenge) == 401
        p = challenge_params(challenge.encode())
        auth = digest_md5("alice", p["realm"], "secret", "REGISTER", uri, p["nonce"])
        await ws.send(message("REGISTER", uri, transport="WS", call_id="ws-reg", cseq=2,
                              to="sip:alice@127.0.0.1", extra=(f"Authorization: {auth}",)))  # fmt: skip
        assert status(str(await ws.recv())) == 200
        assert ep.registrar.lookup("sip:alice@127.0.0.1")[0].transport == "WS"

        # the browser phone calls a queue number: challenged, then answered
        target = "sip:2000@127.0.0.1"
        invite = dict(transport="WS", call_id="ws-call", to=target, body=SDP_OFFER,
                      extra=("Content-Type: application/sdp",))  # fmt: skip
        await ws.send(message("INVITE", target, cseq=1, **invite))
        challenge = str(await ws.recv())
        assert status(challenge) == 407
        p = challenge_params(challenge.encode(), "Proxy-Authenticate")
        await ws.send(message("ACK", target, transport="WS", call_id="ws-call", cseq=1,
                              to=target, to_tag=header(challenge, "To").split("tag=")[1]))  # fmt: skip
        auth = digest_md5("alice", p["realm"], "secret", "INVITE", target, p["nonce"])
        invite["extra"] = (*invite["extra"], f"Proxy-Authorization: {auth}")
        await ws.send(message("INVITE", target, cseq=2, **invite))
        ok = str(await ws.recv())
        while status(ok) < 200:
            ok = str(await ws.recv())
        assert status(ok) == 200 and "m=audio 41000" in ok
        to_tag = header(ok, "To").split("tag=")[1]
        await ws.send(message("ACK", target, transport="WS", call_id="ws-call", cseq=2,
                              to=target, to_tag=to_tag))  # fmt: skip
        (incoming,) = app.calls
        assert incoming.owner == ("tenant-1", "alice") and incoming.transport == "WS"
        await wait_for(lambda: incoming.established)
        await ws.send(message("BYE", target, transport="WS", call_id="ws-call", cseq=3,
                              to=target, to_tag=to_tag))  # fmt: skip
        assert status(str(await ws.recv())) == 200
        await wait_for(lambda: incoming.ended)

        # the endpoint calls the registered browser: the INVITE comes down the same socket
        call = await ep.call("sip:alice@127.0.0.1", make_offer("127.0.0.1", 43004))
        offered = str(await asyncio.wait_for(ws.recv(), 5))
        assert offered.startswith("INVITE sip:alice@client.invalid;transport=ws SIP/2.0")
        await call.cancel()


async def test_websocket_without_sip_subprotocol_is_refused(make_endpoint):
    ep = await make_endpoint(ws_port=0)
    with pytest.raises(InvalidStatus) as info:  # RFC 7118 §4.1: "sip" is required
        async with connect(f"ws://127.0.0.1:{ep.ports['WS']}"):
            pass
    assert info.value.response.status_code == 400


async def test_sha256_digest_between_two_endpoints(make_endpoint, app, certificate):
    """RFC 8760: a callee challenging with SHA-256 only; the caller answers it."""
    key, cert = certificate
    callee = await make_endpoint(
        app,
        tls_port=0,
        ssl_context=server_context(cert, key),
        digest_algorithms=(Algorithm.SHA256,),
    )
    caller = await make_endpoint(client_ssl_context=client_context(cert))
    call = await caller.call(
        f"sip:2000@127.0.0.1:{callee.ports['TLS']};transport=tls",
        make_offer("127.0.0.1", 43006),
        from_uri="sip:bob@127.0.0.1",
        credentials=Credential("bob", "secret"),
    )
    await asyncio.wait_for(call.answered(), 10)
    (incoming,) = app.calls
    assert incoming.auth is AuthKind.DIGEST and incoming.owner == ("tenant-1", "bob")
    await call.hangup()
