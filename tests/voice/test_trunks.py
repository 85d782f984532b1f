"""Trunks as a carrier meets them, against SIPp carriers and callers on loopback addresses:
calls in only from a trunk's networks (or its registration, or its authenticated PBX), a
number bound to a trunk answering that trunk alone, outbound registration with digest and
refresh, channel limits, per-trunk caller ID and digest on calls out, failover by priority."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.voice.conftest import Api
from tests.voice.peers import SIPP, VOICE_DATA, Baresip, kill_group, wait_until
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def scenario(workdir: Path, name: str, **values: object) -> Path:
    """A scenario of tests/data/voice with its ``{placeholders}`` filled in."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = (VOICE_DATA / name).read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    out = workdir / name.removesuffix(".in")
    out.write_text(text)
    return out


class Peer:
    """A SIPp UAS (a carrier, a registrar) on ``ip``:``port``, in the background."""

    def __init__(
        self, workdir: Path, xml: Path, ip: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.dir = workdir
        self.ip = ip
        self.port = port or free_port("both")
        self.proc = subprocess.Popen(
            ["timeout", "-k", "2", "120", SIPP, "-sf", str(xml), "-i", ip, "-p", str(self.port),
             "-mi", ip, "-mp", str(free_port("both")), "-m", "1", "-nostdin",
             "-trace_err", "-trace_logs"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        time.sleep(0.3)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.dir.glob("*_logs.log"))

    def errors(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.dir.glob("*_errors.log"))

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        kill_group(self.proc)  # type: ignore[arg-type]


def call_in(
    workdir: Path,
    node_port: int,
    service: str,
    *,
    ip: str = "127.0.0.1",
    status: int = 200,
    to: str | None = None,
    talk_ms: int = 1500,
) -> subprocess.CompletedProcess[str]:
    """A SIPp caller from ``ip``: answered and hung up after ``talk_ms`` (status 200), or
    refused with ``status``; exit code 0 when it went so."""
    if status == 200:
        xml = scenario(workdir, "brief_caller.xml.in", to=to or service, talk_ms=talk_ms)
    else:
        xml = scenario(workdir, "caller_status.xml.in", status=status, caller="+15551234")
    return subprocess.run(
        ["timeout", "40", SIPP, "-sf", str(xml), "-s", service, f"127.0.0.1:{node_port}",
         "-i", ip, "-p", str(free_port("both")), "-mi", ip, "-mp", str(free_port("both")),
         "-m", "1", "-nostdin", "-trace_err"],
        cwd=workdir, capture_output=True, text=True, check=False,
    )  # fmt: skip


class Silent:
    """A UDP socket that takes SIP and never answers (a dead trunk, an internal service)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.received.append(self.sock.recv(65535))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def only_from(api: Api, network: str, **changes: Any) -> None:
    """Narrow the demo's own trunk (all of 127.0.0.0/8) to ``network``."""
    local = api.trunk("local")
    api.patch(f"/trunks/{local['id']}", {"allowed_ips": [network], **changes})


def digest_ok(authorization: str, method: str, password: str) -> bool:
    """Check an Authorization header as a carrier would (RFC 2617 §3.2.2.1, no qop)."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', authorization.removeprefix("Digest ")))
    ha1 = hashlib.md5(f"{fields['username']}:{fields['realm']}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{fields['uri']}".encode()).hexdigest()
    expected = hashlib.md5(f"{ha1}:{fields['nonce']}:{ha2}".encode()).hexdigest()
    return fields["response"] == expected


def registering(api: Api, port: int, password: str = "s3cret-pass", **extra: Any) -> Any:
    """A trunk named carrier that registers at 127.0.0.2:``port`` as acme-trunk."""
    return api.post(
        "/trunks",
        {
            "name": "carrier",
            "host": "127.0.0.2",
            "port": port,
            "registration": True,
            "username": "acme-trunk",
            "password": password,
            **extra,
        },
    )


def answered_out(api: Api, contact_id: str, timeout: float = 20) -> None:
    """Wait until a call out is answered, then hang it up from the API."""
    asyncio.run(
        wait_until(
            lambda: any(
                c["contact_id"] == contact_id and c["state"] in ("queued", "connected", "ivr")
                for c in api.live()
            ),
            timeout,
        )
    )
    time.sleep(0.5)
    api.post(f"/contacts/{contact_id}/hangup")


def test_a_call_from_a_trunks_network_is_answered_and_any_other_source_gets_403(
    voice_node, api, tmp_path
):
    only_from(api, "127.0.0.1/32")
    ok = call_in(tmp_path / "ok", voice_node.sip_port, "4000")
    assert ok.returncode == 0, ok.stdout[-2000:]
    refused = call_in(tmp_path / "other", voice_node.sip_port, "4000", ip="127.0.0.2", status=403)
    assert refused.returncode == 0, refused.stdout[-2000:]
    log = voice_node.log()
    assert "refused a call from 127.0.0.2:" in log and "'4000'" in log
    cdr = wait_until_cdr(api, lambda c: c["state"] == "ended")
    assert cdr["dialed"] == "4000" and cdr["legs"][0]["trunk"] == "local"
    assert len(api.contacts()) == 1, "the refused call left no contact"


def test_a_number_bound_to_a_trunk_answers_that_trunks_calls_only(voice_node, api, tmp_path):
    only_from(api, "127.0.0.1/32")
    a = api.post("/trunks", {"name": "a", "host": "127.0.0.3", "allowed_ips": ["127.0.0.3/32"]})
    api.post("/trunks", {"name": "b", "host": "127.0.0.4", "allowed_ips": ["127.0.0.4/32"]})
    api.provision("4500")
    api.post(
        "/numbers",
        {"number": "4500", "target_type": "queue", "target": "support", "trunk_id": a["id"]},
    )
    wrong = call_in(tmp_path / "b", voice_node.sip_port, "4500", ip="127.0.0.4", status=403)
    assert wrong.returncode == 0, wrong.stdout[-2000:]
    right = call_in(tmp_path / "a", voice_node.sip_port, "4500", ip="127.0.0.3")
    assert right.returncode == 0, right.stdout[-2000:]
    cdr = wait_until_cdr(api, lambda c: c["dialed"] == "4500" and c["state"] == "ended")
    assert cdr["legs"][0]["trunk"] == "a" and cdr["queue"] == "support"
    # A provisioned number bound to no trunk answers every trunk of its tenant.
    other = call_in(tmp_path / "b4000", voice_node.sip_port, "4000", ip="127.0.0.4")
    assert other.returncode == 0, other.stdout[-2000:]
    cdr = wait_until_cdr(api, lambda c: c["dialed"] == "4000" and c["state"] == "ended")
    assert cdr["legs"][0]["trunk"] == "b"


def test_registration_with_digest_is_refreshed_and_the_carriers_calls_reach_its_contact(
    voice_node, api, tmp_path
):
    only_from(api, "127.0.0.1/32")
    registrar = Peer(
        tmp_path / "registrar",
        scenario(tmp_path / "registrar", "carrier_registrar.xml.in", expires=2),
        ip="127.0.0.2",
    )
    try:
        trunk = registering(api, registrar.port, outbound=False)
        # Registered, then refreshed (granted 2 s): three authenticated REGISTERs or more.
        asyncio.run(wait_until(lambda: registrar.logs().count("REGISTER sip:") >= 3, 15))
        shown = api.get(f"/trunks/{trunk['id']}")
        assert shown["registration_state"] == "registered", shown
        assert shown["registration_error"] is None and shown["registered_until"]
        lines = [x for x in registrar.logs().splitlines() if x.startswith("REGISTER")]
        for line in lines:
            assert digest_ok(line.split("AUTH ", 1)[1], "REGISTER", "s3cret-pass"), line
        contact_user = re.search(r"line=(\S+)", lines[0]).group(1)  # type: ignore[union-attr]
        assert contact_user != "acme-trunk", "the contact user is the trunk's own secret line"

        api.provision("4600")
        api.post(
            "/numbers",
            {
                "number": "4600",
                "target_type": "queue",
                "target": "support",
                "trunk_id": trunk["id"],
            },
        )
        # The carrier sends a call to the contact we registered, the number in To.
        ok = call_in(tmp_path / "in", voice_node.sip_port, contact_user, ip="127.0.0.2", to="4600")
        assert ok.returncode == 0, ok.stdout[-2000:]
        cdr = wait_until_cdr(api, lambda c: c["dialed"] == "4600" and c["state"] == "ended")
        assert cdr["legs"][0]["trunk"] == "carrier"
        # The same request from anywhere else is refused.
        spoof = call_in(
            tmp_path / "spoof", voice_node.sip_port, contact_user, ip="127.0.0.3", status=403
        )
        assert spoof.returncode == 0, spoof.stdout[-2000:]
        # Deleting the trunk unregisters: the registrar's scenario ends (successfully) only
        # on a REGISTER with Expires: 0.
        api.delete(f"/trunks/{trunk['id']}")
        assert registrar.wait(15) == 0, registrar.errors()
    finally:
        registrar.stop()


def test_a_failed_registration_shows_its_error(voice_node, api, tmp_path):
    refusing = Peer(
        tmp_path / "registrar",
        scenario(tmp_path / "registrar", "carrier_registrar_refusing.xml"),
        ip="127.0.0.2",
    )
    try:
        trunk = registering(api, refusing.port, password="wrong-pass")
        shown = asyncio.run(
            wait_until(
                lambda: (
                    (t := api.get(f"/trunks/{trunk['id']}"))["registration_state"] == "failed" and t
                ),
                15,
            )
        )
        assert "401" in shown["registration_error"], shown
    finally:
        refusing.stop()


def test_calls_out_fail_over_after_a_503_and_a_silent_trunk_with_the_trunks_caller_id(
    voice_node, api, tmp_path
):
    busy = Peer(
        tmp_path / "first",
        scenario(tmp_path / "first", "carrier_status_uas.xml.in", status=503, reason="Unavailable"),
    )
    dead = Silent()
    carrier = Peer(
        tmp_path / "third",
        scenario(tmp_path / "third", "carrier_uas.xml.in", from_user=r"\+15550999"),
    )
    try:
        api.post(
            "/trunks", {"name": "first", "host": "127.0.0.1", "port": busy.port, "priority": 10}
        )
        api.post(
            "/trunks", {"name": "dead", "host": "127.0.0.1", "port": dead.port, "priority": 20}
        )
        api.post(
            "/trunks",
            {
                "name": "third",
                "host": "127.0.0.1",
                "port": carrier.port,
                "priority": 30,
                "caller_id": "+15550999",
            },
        )
        out = api.post("/calls", {"to": "15550000", "queue": "support"})
        answered_out(api, out["contact_id"], 30)
        assert busy.wait() == 0, busy.errors()
        assert carrier.wait() == 0, carrier.errors()  # the From was the trunk's caller ID
        assert any(b"INVITE sip:15550000@" in m for m in dead.received)
    finally:
        busy.stop()
        carrier.stop()
        dead.close()
    cdr = wait_until_cdr(api, lambda c: c["id"] == out["contact_id"] and c["state"] == "ended")
    (leg,) = cdr["legs"]
    assert leg["trunk"] == "third", leg
    assert leg["attempts"] == [
        {"trunk": "first", "status": 503},
        {"trunk": "dead", "status": "no_response"},
    ]
    assert cdr["dialed"] == "+15550999", "the caller ID the customer saw"


def test_a_callee_that_is_busy_does_not_fail_over(voice_node, api, tmp_path):
    busy = Peer(
        tmp_path / "first",
        scenario(tmp_path / "first", "carrier_status_uas.xml.in", status=486, reason="Busy Here"),
    )
    second = Silent()
    try:
        api.post(
            "/trunks", {"name": "first", "host": "127.0.0.1", "port": busy.port, "priority": 1}
        )
        api.post("/trunks", {"name": "second", "host": "127.0.0.1", "port": second.port})
        out = api.post("/calls", {"to": "15550000", "queue": "support"})
        cdr = wait_until_cdr(api, lambda c: c["id"] == out["contact_id"] and c["state"] == "ended")
        time.sleep(1)
        assert second.received == [], "the callee said busy: no other trunk is tried"
        assert busy.wait() == 0, busy.errors()
    finally:
        busy.stop()
        second.close()
    assert cdr["disposition"] == "no_answer"
    assert cdr["legs"][0]["attempts"] == [{"trunk": "first", "status": 486}]


def test_calls_out_answer_the_carriers_digest_challenge_with_the_trunks_credentials(
    voice_node, api, tmp_path
):
    carrier = Peer(
        tmp_path / "carrier",
        scenario(tmp_path / "carrier", "carrier_auth_uas.xml.in", from_user=r"\+15550777"),
    )
    try:
        api.post(
            "/trunks",
            {
                "name": "carrier",
                "host": "127.0.0.1",
                "port": carrier.port,
                "username": "acct-77",
                "password": "pw-for-77",
                "caller_id": "+15550777",
            },
        )
        out = api.post("/calls", {"to": "15550001", "queue": "support"})
        answered_out(api, out["contact_id"])
        assert carrier.wait() == 0, carrier.errors()
        (auth,) = [x for x in carrier.logs().splitlines() if x.startswith("AUTH ")]
        assert 'username="acct-77"' in auth and digest_ok(auth[5:], "INVITE", "pw-for-77")
    finally:
        carrier.stop()


def test_max_channels_refuses_the_next_call_in_and_sends_the_next_call_out_elsewhere(
    voice_node, api, tmp_path
):
    only_from(api, "127.0.0.1/32", max_channels=1)
    holder = threading.Thread(
        target=call_in, args=(tmp_path / "first", voice_node.sip_port, "4000"),
        kwargs={"talk_ms": 6000},
    )  # fmt: skip
    holder.start()
    try:
        asyncio.run(wait_until(lambda: len(api.live()) == 1, 10))
        refused = call_in(tmp_path / "second", voice_node.sip_port, "4000", status=503)
        assert refused.returncode == 0, refused.stdout[-2000:]
        events = api.get("/events?since=0&types=contact.refused&limit=10")["events"]
        assert [(e["data"]["reason"], e["data"]["trunk"]) for e in events] == [
            ("trunk_channels", "local")
        ]
        assert api.trunk("local")["channels_in_use"] == 1
    finally:
        holder.join(30)
    asyncio.run(wait_until(lambda: api.trunk("local")["channels_in_use"] == 0, 10))

    small = Peer(
        tmp_path / "small", scenario(tmp_path / "small", "carrier_uas.xml.in", from_user=".*")
    )
    big = Peer(tmp_path / "big", scenario(tmp_path / "big", "carrier_uas.xml.in", from_user=".*"))
    try:
        api.post(
            "/trunks",
            {
                "name": "small",
                "host": "127.0.0.1",
                "port": small.port,
                "priority": 1,
                "max_channels": 1,
            },
        )
        api.post("/trunks", {"name": "big", "host": "127.0.0.1", "port": big.port, "priority": 2})
        one = api.post("/calls", {"to": "15550001", "queue": "support"})
        asyncio.run(wait_until(lambda: api.trunk("small")["channels_in_use"] == 1, 10))
        two = api.post("/calls", {"to": "15550002", "queue": "support"})
        answered_out(api, two["contact_id"])
        api.post(f"/contacts/{one['contact_id']}/hangup")
        assert small.wait() == 0 and big.wait() == 0, small.errors() + big.errors()
    finally:
        small.stop()
        big.stop()
    cdr = wait_until_cdr(api, lambda c: c["id"] == two["contact_id"] and c["state"] == "ended")
    assert cdr["legs"][0]["trunk"] == "big"
    assert cdr["legs"][0]["attempts"] == [{"trunk": "small", "status": "busy"}]


def test_a_pbx_that_registers_with_the_trunks_credentials_calls_in_and_is_called(
    voice_node, api, tmp_path
):
    only_from(api, "127.0.0.9/32")  # nothing on this machine is the demo's trunk now
    trunk = api.post(
        "/trunks",
        {
            "name": "pbx",
            "host": "pbx.example.invalid",
            "inbound_auth": True,
            "username": "pbx-one",
            "password": "pbx-secret-1",
        },
    )
    # The enterprise brings its own number on its PBX's trunk (nobody provisioned it).
    api.post(
        "/numbers",
        {"number": "5100", "target_type": "queue", "target": "support", "trunk_id": trunk["id"]},
    )

    async def run() -> None:
        pbx = await Baresip(
            tmp_path / "pbx",
            user="pbx-one",
            password="pbx-secret-1",
            registrar_port=voice_node.sip_port,
            tone_hz=1000,
        ).start()
        try:
            await wait_until(lambda: "200 OK" in pbx.output(), 10)
            await pbx.dial(f"sip:5100@127.0.0.1:{voice_node.sip_port}")
            await wait_until(lambda: any(c["state"] == "queued" for c in api.live()), 15)
            await pbx.hangup()
            await wait_until(lambda: not api.live(), 10)
            # A call out on the trunk goes to the contact the PBX registered.
            out = api.post("/calls", {"to": "15550123", "queue": "support"})
            await wait_until(
                lambda: any(
                    c["contact_id"] == out["contact_id"] and c["state"] == "queued"
                    for c in api.live()
                ),
                15,
            )
            await pbx.hangup()
        finally:
            await pbx.stop()

    asyncio.run(run())

    def both_recorded() -> list[dict] | None:
        records = [c for c in api.contacts() if c["state"] == "ended"]
        directions = {c["direction"] for c in records}
        return records if {"inbound", "outbound"} <= directions else None

    # The outbound contact's record is written when its session ends, just after the hang-up.
    records = asyncio.run(wait_until(both_recorded, 15))
    inbound = next(c for c in records if c["direction"] == "inbound")
    outbound = next(c for c in records if c["direction"] == "outbound")
    assert inbound["dialed"] == "5100" and inbound["legs"][0]["trunk"] == "pbx"
    assert outbound["legs"][0]["trunk"] == "pbx" and outbound["legs"][0]["answered_at"]


def test_a_node_registers_its_trunks_when_it_starts(tmp_path):
    """The registration is kept by whichever node runs: after a restart, at once."""
    from tests.conftest import LiveNode

    port = free_port("both")
    node = LiveNode(tmp_path / "data")
    try:
        node.wait_ready()
        api = Api(node)
        trunk = registering(api, port)
        # Nobody listens yet: the node keeps trying.
        asyncio.run(
            wait_until(
                lambda: api.get(f"/trunks/{trunk['id']}")["registration_state"] is not None, 10
            )
        )
    finally:
        assert node.stop() == 0
    registrar = Peer(
        tmp_path / "registrar",
        scenario(tmp_path / "registrar", "carrier_registrar.xml.in", expires=60),
        ip="127.0.0.2",
        port=port,
    )
    again = LiveNode(tmp_path / "data")
    try:
        again.wait_ready()
        asyncio.run(wait_until(lambda: "REGISTER sip:" in registrar.logs(), 15))
        api = Api(again)
        assert api.get(f"/trunks/{trunk['id']}")["registration_state"] == "registered"
    finally:
        again.stop()  # unregisters: the registrar's scenario ends
        registrar.stop()
    assert registrar.proc.returncode == 0, registrar.errors()
