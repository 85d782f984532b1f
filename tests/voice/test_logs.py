"""The node's log file: a call, a failed SIP login and a failed API login leave INFO lines in
``<data_dir>/logs/cloudcc.log`` (JSON lines with ``--log-format json``), with their ids."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveNode
from tests.sip.helpers import UdpPeer, challenge_params, digest_md5, sip_request
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, sipp_call
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def read_log(node: LiveNode) -> list[dict[str, Any]]:
    path = node.data_dir / "logs" / "cloudcc.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def wrong_sip_password(port: int) -> int:
    phone = await UdpPeer.open()
    uri = "sip:127.0.0.1"
    to = (b"To: <sip:127.0.0.1>", b"To: <sip:1001@127.0.0.1>")
    try:
        first = sip_request("REGISTER", uri, user="1001", host="127.0.0.1", port=phone.port,
                            call_id="guess-1").replace(*to)  # fmt: skip
        phone.send(first, port)
        params = challenge_params(await phone.recv(2.0))
        auth = digest_md5("1001", params["realm"], "guess", "REGISTER", uri, params["nonce"])
        second = sip_request("REGISTER", uri, user="1001", host="127.0.0.1", port=phone.port,
                             call_id="guess-1", cseq=2, headers=[f"Authorization: {auth}"])  # fmt: skip
        phone.send(second.replace(*to), port)
        return await phone.recv_status(2.0)
    finally:
        phone.close()


def test_a_call_and_failed_logins_are_logged_with_their_ids(tmp_path: Path) -> None:
    node = LiveNode(tmp_path / "data", extra_args=["--log-format", "json"])
    try:
        node.wait_ready()
        api = Api(node)
        phone = SippAgentPhone(tmp_path / "agent").start()
        try:
            api.login("1001", phone.uri)
            result = sipp_call(
                tmp_path / "caller", node.sip_port, digit="2", dtmf_after_ms=4500, talk_ms=2000
            )
            assert result.returncode == 0, result.stdout[-3000:] + phone.errors()
        finally:
            phone.stop()
        cdr = wait_until_cdr(api, lambda c: c["state"] in ("wrapup", "ended"))
        assert asyncio.run(wrong_sip_password(node.sip_port)) == 403
        bad = httpx.post(
            api.base + "/auth/login",
            json={"tenant": "demo", "username": "admin", "password": "not-it"},
        )
        assert bad.status_code == 401
        tenant_id = node.demo["tenant_id"]
    finally:
        node.stop()
    lines = read_log(node)
    call = [x for x in lines if x.get("contact_id") == cdr["id"]]
    events = [x["event"] for x in call]
    assert events[0] == "contact.created" and "contact.connected" in events
    assert events[-1] == "contact.ended", events
    for line in call:
        assert line["level"] == "INFO" and line["tenant_id"] == tenant_id
        assert line["ts"].endswith("+00:00")  # ISO 8601 with its zone
    assert "end_cause=customer_hangup" in call[-1]["message"]
    sip = [x for x in lines if "SIP authentication failed" in x["message"]]
    assert len(sip) == 1 and sip[0]["level"] == "INFO", sip
    assert sip[0]["username"] == "1001" and sip[0]["source"] == "127.0.0.1"
    assert "wrong password" in sip[0]["message"]
    login = [x for x in lines if x["message"].startswith("login failed")]
    assert len(login) == 1 and login[0]["tenant_id"] == tenant_id
    assert login[0]["username"] == "admin"


def test_the_log_file_rotates(tmp_path: Path) -> None:
    script = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from cloudcc.logs import configure_logging\n"
        "listener = configure_logging('info', 'text', Path(sys.argv[1]), max_bytes=4096, backups=2)\n"
        "for i in range(500):\n"
        "    logging.getLogger('cloudcc.test').info('line %d of the rotation test', i)\n"
        "listener.stop()\n"
    )
    logs = tmp_path / "logs"
    subprocess.run([sys.executable, "-c", script, str(logs)], check=True, capture_output=True)
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["cloudcc.log", "cloudcc.log.1", "cloudcc.log.2"]
    assert all(p.stat().st_size <= 4096 for p in logs.iterdir())
    assert "line 499 of the rotation test" in (logs / "cloudcc.log").read_text()
