"""Hostile input on real sockets: RFC 4475 messages over TCP and UDP, floods, scanners, overload.

The endpoint must answer each torture message as RFC 4475 says (or drop it), never
crash or wedge, and still serve a normal SIPp call afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket

import pytest

from cloudcc.sip.protection import ProtectionSettings
from cloudcc.sip.registrar import ContactRequest
from cloudcc.sip.sdp import make_offer

from .conftest import App
from .helpers import (
    DATA,
    SDP_OFFER,
    UdpPeer,
    challenge_params,
    digest_md5,
    run_sipp,
    sip_request,
)

pytestmark = pytest.mark.peer

TORTURE = DATA / "rfc4475"
EXPECTED = json.loads((TORTURE / "expected.json").read_text())


async def first_response_over_tcp(port: int, data: bytes) -> int | str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        try:
            line = await asyncio.wait_for(reader.readline(), 0.6)
        except TimeoutError:
            return "none"
        if not line:
            return "none"  # the endpoint closed the connection (framing error)
        return int(line.split(b" ")[1])
    finally:
        writer.close()
        await writer.wait_closed()


async def test_torture_messages_over_tcp_get_the_rfc4475_answers(make_endpoint, app):
    ep = await make_endpoint(app)
    got = {}
    for name in sorted(EXPECTED):
        got[name] = await first_response_over_tcp(
            ep.ports["TCP"], (TORTURE / f"{name}.dat").read_bytes()
        )
    expected = {name: e["tcp_response"] for name, e in EXPECTED.items()}
    assert got == expected
    assert ep.stats["handler_errors"] == 0


async def test_torture_messages_over_udp_leave_the_endpoint_serving_calls(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app, force_rport=True)
    peer = await UdpPeer.open()
    try:
        for name in sorted(EXPECTED):
            peer.send((TORTURE / f"{name}.dat").read_bytes(), ep.ports["UDP"])
        statuses = []
        with pytest.raises(TimeoutError):
            while True:
                data = await peer.recv(1.0)
                statuses.append(int(data.split(b" ")[1]))
        # every request that can be answered was answered; nothing took the endpoint down
        assert 400 in statuses and 505 in statuses and 416 in statuses and 200 in statuses
        assert ep.stats["parse_errors"] >= sum(1 for e in EXPECTED.values() if e["parse"] != "ok")
    finally:
        peer.close()
    result = await run_sipp(ep.ports["UDP"], builtin="uac", calls=3, rate=10)
    assert result.returncode == 0, result.errors()
    assert ep.stats["handler_errors"] == 0


async def test_garbage_stream_closes_only_its_own_connection(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app)
    reader, writer = await asyncio.open_connection("127.0.0.1", ep.ports["TCP"])
    writer.write(b"\x00\xff" * 5000 + b"\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the endpoint
    writer.close()
    await writer.wait_closed()
    result = await run_sipp(ep.ports["TCP"], builtin="uac", calls=2, transport="t1")
    assert result.returncode == 0, result.errors()


async def test_request_before_a_malformed_fragment_is_answered_then_the_stream_closed(
    make_endpoint,
):
    ep = await make_endpoint()
    with socket.create_connection(("127.0.0.1", ep.ports["TCP"]), timeout=5) as sock:
        port = sock.getsockname()[1]
        options = sip_request("OPTIONS", "sip:x@127.0.0.1", user="peer", host="127.0.0.1",
                              port=port, call_id="good-then-bad", transport="TCP")  # fmt: skip
        # one write: a whole request, then a fragment whose framing cannot be trusted
        sock.sendall(options + b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: -1\r\n\r\n")
        received = await asyncio.to_thread(_read_until_closed, sock)
    assert received.startswith(b"SIP/2.0 200 "), received[:80]
    assert b"Call-ID: good-then-bad" in received
    assert received.count(b"SIP/2.0 ") == 1  # the fragment got nothing; the stream closed


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


async def test_crlf_keepalive_on_tcp_gets_a_pong(make_endpoint):
    ep = await make_endpoint()
    reader, writer = await asyncio.open_connection("127.0.0.1", ep.ports["TCP"])
    writer.write(b"\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"  # RFC 5626 §3.5.1
    writer.close()
    await writer.wait_closed()


# ---------------------------------------------------------------- protection


async def test_flood_from_one_source_is_dropped_while_another_source_calls(make_endpoint, app):
    app.trunk_sources.add("127.0.0.2")
    settings = ProtectionSettings(messages_per_second=50, burst=50)
    ep = await make_endpoint(app, protection=settings, host="0.0.0.0", public_host="127.0.0.1")
    flooder = await UdpPeer.open("127.0.0.1")
    try:
        for i in range(3000):
            flooder.send(
                sip_request("OPTIONS", "sip:x@127.0.0.1", user="scan", host="127.0.0.1",
                            port=flooder.port, call_id=f"flood-{i}"),
                ep.ports["UDP"],
            )  # fmt: skip
        caller = await run_sipp(ep.ports["UDP"], builtin="uac", calls=3, local_ip="127.0.0.2")
        answered = flooder.received.qsize()
    finally:
        flooder.close()
    assert caller.returncode == 0, caller.errors()
    assert answered <= 50 + 50 * 10  # the burst, then 50/s for the seconds it took
    assert answered < 1000
    assert ep.protection.limiter.dropped >= 2000


async def test_options_scan_at_100_per_second_is_limited_then_banned(make_endpoint, caplog):
    settings = ProtectionSettings(messages_per_second=None, unauthenticated_per_second=10,
                                  unauthenticated_burst=10, flood_drops_to_ban=60)  # fmt: skip
    ep = await make_endpoint(protection=settings)
    scanner = await UdpPeer.open()
    try:
        for i in range(200):  # 2 s of a scan at 100 requests/s
            scanner.send(
                sip_request("OPTIONS", "sip:100@127.0.0.1", user="scan", host="127.0.0.1",
                            port=scanner.port, call_id=f"scan-{i}"),
                ep.ports["UDP"],
            )  # fmt: skip
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        answered = scanner.received.qsize()
    finally:
        scanner.close()
    # the burst, 10/s until 60 drops (about 0.7 s at 90 dropped/s), then nothing at all
    assert 10 <= answered <= 10 + 10 * 1.5, answered
    assert ep.protection.bans.banned(ep.now()) == ["127.0.0.1"]
    assert ep.protection.unauthenticated.banned == 1
    assert any("banning 127.0.0.1" in r.getMessage() for r in caplog.records)


async def test_an_authenticated_source_is_not_held_to_the_unauthenticated_rate(make_endpoint, app):
    settings = ProtectionSettings(messages_per_second=None, unauthenticated_per_second=1,
                                  unauthenticated_burst=3, flood_drops_to_ban=1000)  # fmt: skip
    ep = await make_endpoint(app, protection=settings)
    phone = await UdpPeer.open()
    uri = "sip:127.0.0.1"
    try:
        first = sip_request("REGISTER", uri, user="alice", host="127.0.0.1", port=phone.port,
                            call_id="reg-1").replace(b"To: <sip:127.0.0.1>", b"To: <sip:alice@127.0.0.1>")  # fmt: skip
        phone.send(first, ep.ports["UDP"])
        params = challenge_params(await phone.recv(1.0))
        auth = digest_md5("alice", params["realm"], "secret", "REGISTER", uri, params["nonce"])
        second = sip_request("REGISTER", uri, user="alice", host="127.0.0.1", port=phone.port,
                             call_id="reg-1", cseq=2, headers=[f"Authorization: {auth}"])  # fmt: skip
        phone.send(second.replace(b"To: <sip:127.0.0.1>", b"To: <sip:alice@127.0.0.1>"),
                   ep.ports["UDP"])  # fmt: skip
        assert await phone.recv_status(1.0) == 200
        for i in range(20):  # well over 1/s with a burst of 3: all answered once trusted
            phone.send(sip_request("OPTIONS", "sip:100@127.0.0.1", user="alice",
                                   host="127.0.0.1", port=phone.port, call_id=f"ka-{i}"),
                       ep.ports["UDP"])  # fmt: skip
            assert await phone.recv_status(1.0) == 200
    finally:
        phone.close()


async def test_repeated_wrong_passwords_get_the_source_banned(make_endpoint, app):
    settings = ProtectionSettings(messages_per_second=None, auth_failures_to_ban=3)
    ep = await make_endpoint(app, protection=settings)
    scanner = await UdpPeer.open()
    port = ep.ports["UDP"]

    async def register(password: str, attempt: int) -> int | None:
        uri = "sip:127.0.0.1"
        call_id = f"scan-{attempt}"
        first = sip_request("REGISTER", uri, user="alice", host="127.0.0.1",
                            port=scanner.port, call_id=call_id)  # fmt: skip
        first = first.replace(b"To: <sip:127.0.0.1>", b"To: <sip:alice@127.0.0.1>")
        scanner.send(first, port)
        try:
            challenge = await scanner.recv(1.0)
        except TimeoutError:
            return None
        params = challenge_params(challenge)
        auth = digest_md5("alice", params["realm"], password, "REGISTER", uri, params["nonce"])
        second = sip_request("REGISTER", uri, user="alice", host="127.0.0.1", port=scanner.port,
                             call_id=call_id, cseq=2, headers=[f"Authorization: {auth}"])  # fmt: skip
        second = second.replace(b"To: <sip:127.0.0.1>", b"To: <sip:alice@127.0.0.1>")
        scanner.send(second, port)
        try:
            return await scanner.recv_status(1.0)
        except TimeoutError:
            return None

    try:
        assert [await register("guess", i) for i in range(3)] == [403, 403, 403]
        assert await register("secret", 9) is None  # banned: not even a challenge
    finally:
        scanner.close()
    assert ep.protection.bans.banned(ep.now()) == ["127.0.0.1"]
    assert ep.registrar.lookup("sip:alice@127.0.0.1") == []


async def test_over_the_call_limit_new_calls_get_503_with_retry_after(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    app.behaviour = "ring"
    settings = ProtectionSettings(messages_per_second=None, max_calls=2, retry_after=9)
    ep = await make_endpoint(app, protection=settings)
    peer = await UdpPeer.open()
    try:
        for i in range(4):
            peer.send(
                sip_request("INVITE", "sip:1000@127.0.0.1", user="pstn", host="127.0.0.1",
                            port=peer.port, call_id=f"over-{i}",
                            headers=["Content-Type: application/sdp"], body=SDP_OFFER),
                ep.ports["UDP"],
            )  # fmt: skip
        finals = []
        while len(finals) < 2:
            data = await peer.recv(3)
            if data.startswith(b"SIP/2.0 503"):
                finals.append(data)
    finally:
        peer.close()
    assert all(b"Retry-After: 9" in f for f in finals)
    assert len(app.calls) == 2 and ep.active_calls == 2


async def test_over_the_cps_limit_calls_are_refused_with_503(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    settings = ProtectionSettings(messages_per_second=None, max_calls_per_second=2)
    ep = await make_endpoint(app, protection=settings)
    result = await run_sipp(ep.ports["UDP"], builtin="uac", calls=10, rate=50)
    assert 2 <= result.stat("Successful call") <= 5
    assert "503 Service Unavailable" in result.errors()
    assert isinstance(app, App)


async def test_udp_registered_phone_gets_nat_keepalives(make_endpoint):
    ep = await make_endpoint(nat_keepalive_interval=0.2)
    phone = await UdpPeer.open()
    try:
        ep.registrar.register(
            "sip:1001@127.0.0.1",
            [ContactRequest("sip:1001@192.168.1.20:5060")],  # behind NAT: private contact
            300,
            "kal",
            1,
            ep.now(),
            source=("127.0.0.1", phone.port),  # where its REGISTER really came from
        )
        assert await phone.recv(3) == b"\r\n\r\n"
    finally:
        phone.close()


async def test_unanswered_call_gets_480_after_the_answer_timeout(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    app.behaviour = "ring"
    ep = await make_endpoint(app, answer_timeout=0.3)
    peer = await UdpPeer.open()
    try:
        peer.send(
            sip_request("INVITE", "sip:1000@127.0.0.1", user="pstn", host="127.0.0.1",
                        port=peer.port, call_id="noanswer",
                        headers=["Content-Type: application/sdp"], body=SDP_OFFER),
            ep.ports["UDP"],
        )  # fmt: skip
        assert await peer.recv_status(3) == 480
    finally:
        peer.close()
    assert app.calls[0].end is not None and app.calls[0].end.status == 480


async def test_phone_registered_through_a_proxy_is_called_through_its_path(make_endpoint, app):
    """RFC 3327: Kamailio adds Path to the REGISTER; calls to that phone go back via it."""
    ep = await make_endpoint(app)
    proxy = await UdpPeer.open()
    try:
        path = f"Path: <sip:127.0.0.1:{proxy.port};lr>"
        uri = "sip:127.0.0.1"

        def register(cseq: int, extra: list[str]) -> bytes:
            raw = sip_request("REGISTER", uri, user="alice", host="10.1.2.3", port=5062,
                              call_id="via-proxy", cseq=cseq,
                              headers=[path, "Supported: path", *extra])  # fmt: skip
            return raw.replace(b"To: <sip:127.0.0.1>", b"To: <sip:alice@127.0.0.1>")

        proxy.send(register(1, []), ep.ports["UDP"])
        params = challenge_params(await proxy.recv(2))
        auth = digest_md5("alice", params["realm"], "secret", "REGISTER", uri, params["nonce"])
        proxy.send(register(2, [f"Authorization: {auth}"]), ep.ports["UDP"])
        ok = await proxy.recv(2)
        assert ok.startswith(b"SIP/2.0 200") and path.encode() in ok
        (binding,) = ep.registrar.lookup("sip:alice@127.0.0.1", ep.now())
        assert binding.path == (f"<sip:127.0.0.1:{proxy.port};lr>",)

        call = await ep.call("sip:alice@127.0.0.1", make_offer("127.0.0.1", 45000))
        invite = (await proxy.recv(2)).decode()
        assert invite.startswith("INVITE sip:alice@10.1.2.3:5062;transport=udp SIP/2.0")
        assert f"Route: <sip:127.0.0.1:{proxy.port};lr>" in invite
        await call.cancel()
    finally:
        proxy.close()


async def test_an_update_read_with_the_ack_of_the_answer_is_no_glare(make_endpoint, app):
    """RFC 3261 §14.1: the INVITE transaction is over with its ACK. An UPDATE offer (RFC 3311)
    read in the same batch of datagrams as that ACK, before the answering coroutine resumes,
    is answered, not refused with 491 (it was, whenever a phone sent both back to back)."""
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app)
    peer = await UdpPeer.open()
    common = {"user": "pstn", "host": "127.0.0.1", "port": peer.port, "call_id": "ack-update"}
    try:
        invite = sip_request("INVITE", "sip:1000@127.0.0.1", **common,
                             headers=["Content-Type: application/sdp"], body=SDP_OFFER)  # fmt: skip
        peer.send(invite, ep.ports["UDP"])
        while not (answer := await peer.recv(3)).startswith(b"SIP/2.0 200"):
            pass
        to_tag = re.search(rb"^To:.*;tag=([^;\r\n]+)", answer, re.M | re.I)
        assert to_tag
        tag = to_tag.group(1).decode()
        ack = sip_request("ACK", "sip:1000@127.0.0.1", **common, to_tag=tag)
        hold = SDP_OFFER.replace("a=sendrecv", "a=sendonly")
        update = sip_request("UPDATE", "sip:1000@127.0.0.1", **common, cseq=2, to_tag=tag,
                             headers=["Content-Type: application/sdp"], body=hold)  # fmt: skip
        peer.send(ack, ep.ports["UDP"])  # both in the socket before the endpoint reads
        peer.send(update, ep.ports["UDP"])
        assert await peer.recv_status(3) == 200
    finally:
        peer.close()
