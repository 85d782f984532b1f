"""A flow asks the enterprise's server about the caller during a real call (a signed webhook)
and routes on the answer; a private address is refused unless the node allows it."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cloudcc.ivr.webhook import verify_signature
from tests.conftest import LiveNode, free_port
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, sipp_call
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


class Crm:
    """The enterprise's server: answers {"vip": true} and keeps what it received."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                crm.requests.append((dict(self.headers.items()), body))
                answer = json.dumps({"vip": True, "name": "Ada"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def vip_flow(port: int) -> dict[str, Any]:
    return {
        "format": "cloudcc.flow/1",
        "id": "vip-check",
        "name": "VIP check",
        "start": "lookup",
        "variables": {"crm": {"default": None}},
        "nodes": [
            {
                "id": "lookup",
                "type": "webhook",
                "url": f"http://127.0.0.1:{port}/lookup",
                "parameters": {"caller": "contact.caller"},
                "timeout": 3,
                "result_variable": "crm",
                "outputs": {"success": "is_vip", "error": "to_support", "timeout": "to_support"},
            },
            {
                "id": "is_vip",
                "type": "branch",
                "conditions": [{"when": "crm.vip == true", "next": "to_sales"}],
                "outputs": {"default": "to_support"},
            },
            {"id": "to_sales", "type": "transfer_queue", "queue": "sales"},
            {"id": "to_support", "type": "transfer_queue", "queue": "support"},
        ],
    }


def _publish(api: Api, port: int) -> None:
    flow = api.post("/flows", {"document": vip_flow(port)})
    api.post(f"/flows/{flow['id']}/publish", {})
    api.provision("4100")
    api.post("/numbers", {"number": "4100", "target_type": "flow", "target": "vip-check"})


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "ssrf-refused"])
def test_a_webhook_answer_routes_the_call(tmp_path, allowed):
    env = {"CLOUDCC_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]'} if allowed else {}
    node = LiveNode(tmp_path / "data", env=env)
    crm = Crm()
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        node.wait_ready()
        api = Api(node)
        _publish(api, crm.port)
        api.login("1001", phone.uri)
        result = sipp_call(
            tmp_path / "caller", node.sip_port, number="4100", dtmf_after_ms=1000, talk_ms=3000
        )
        assert result.returncode == 0, result.stdout[-2000:]
        cdr = wait_until_cdr(api, lambda c: c["disposition"] == "answered")
        secret = node.demo and api.get("/tenant")["id"]
        assert secret
    finally:
        phone.stop()
        crm.close()
        node.stop()
    if allowed:
        assert cdr["queue"] == "sales" and cdr["attributes"]["crm"]["name"] == "Ada"
        ((headers, body),) = crm.requests
        sent = json.loads(body)
        assert sent["parameters"]["caller"].startswith("+15550")
        assert sent["contact"]["dialed"] == "4100" and sent["node"] == "lookup"
        assert "X-CloudCC-Signature" in headers
    else:
        assert cdr["queue"] == "support" and crm.requests == []


def test_the_webhook_signature_verifies_with_the_tenant_secret(tmp_path):
    node = LiveNode(tmp_path / "data", env={"CLOUDCC_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]'})
    crm = Crm()
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        node.wait_ready()
        api = Api(node)
        secret = api.post("/tenant/webhook-secret")["webhook_secret"]
        _publish(api, crm.port)
        api.login("1001", phone.uri)
        sipp_call(
            tmp_path / "caller", node.sip_port, number="4100", dtmf_after_ms=1000, talk_ms=2000
        )
        asyncio.run(asyncio.sleep(0.5))
    finally:
        phone.stop()
        crm.close()
        node.stop()
    ((headers, body),) = crm.requests
    lowered = {k.lower(): v for k, v in headers.items()}
    verify_signature(secret.encode(), lowered, body, now=float(lowered["x-cloudcc-timestamp"]))
