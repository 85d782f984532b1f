"""A flow's transfer out presents only a caller ID the tenant owns (issue 18 item 5): one of
its numbers or trunk caller IDs, or the caller's own number (``caller``, forwarding). Anything
else is refused when the flow is published (422 naming the node); a caller ID that stopped
being the tenant's after publishing is replaced by the trunk's when the call is dialed, with a
log line. SIPp carriers check the From user of the INVITE they get."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.voice.test_trunks import Peer, call_in, scenario

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _flow(caller_id: str | None) -> dict[str, Any]:
    node: dict[str, Any] = {"id": "out", "type": "transfer_external", "number": "15550123"}
    if caller_id is not None:
        node["caller_id"] = caller_id
    return {
        "format": "cloudcc.flow/1",
        "id": "forward",
        "name": "Forward",
        "start": "out",
        "nodes": [node],
    }


def _publish(api: Any, flow_id: str, caller_id: str | None) -> httpx.Response:
    r = httpx.put(
        f"{api.base}/flows/{flow_id}/draft",
        json={"document": _flow(caller_id)},
        headers=api.headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return httpx.post(f"{api.base}/flows/{flow_id}/publish", json={}, headers=api.headers)


def test_a_flow_presents_only_the_tenants_caller_ids(voice_node, api, tmp_path):
    branch = api.post(
        "/trunks",
        {"name": "branch", "host": "127.0.0.2", "outbound": False, "caller_id": "+15550888"},
    )
    flow = api.post("/flows", {"document": _flow("+15550888")})
    # Someone else's number: refused at validation and at publishing, naming the node.
    problems = api.post("/flow-validation", {"document": _flow("+19998887777")})["problems"]
    assert [(p["rule"], p["node"], p["field"]) for p in problems] == [
        ("caller-id", "out", "caller_id")
    ], problems
    r = _publish(api, flow["id"], "+19998887777")
    assert r.status_code == 422, r.text
    assert [(e["node"], e["field"]) for e in r.json()["errors"]] == [("out", "caller_id")]
    assert "caller" in r.json()["errors"][0]["message"]
    # The tenant's own number (provisioned), a trunk's caller ID, the caller's: published.
    for allowed in ("4000", "caller", "+1 555 0888"):
        r = _publish(api, flow["id"], allowed)
        assert r.status_code == 200, (allowed, r.text)
    api.provision("4300")
    api.post("/numbers", {"number": "4300", "target_type": "flow", "target": "forward"})

    # "caller": the carrier sees the caller's own number (SIPp's caller is +15551000).
    kept = Peer(tmp_path / "kept", scenario(tmp_path / "kept", "carrier_uas.xml.in",
                                            from_user=r"\+15551000"))  # fmt: skip
    try:
        api.post(
            "/trunks",
            {"name": "carrier", "host": "127.0.0.1", "port": kept.port, "caller_id": "+15550999"},
        )
        r = _publish(api, flow["id"], "caller")
        assert r.status_code == 200, r.text
        done = call_in(tmp_path / "in1", voice_node.sip_port, "4300", talk_ms=5000)
        assert done.returncode == 0, done.stdout[-2000:]
        assert kept.wait() == 0, kept.errors()  # the From was the caller's number
    finally:
        kept.stop()

    # Published with the branch trunk's caller ID, which then goes away: at dial time the
    # carrier trunk's caller ID is presented instead, and the node says so in its log.
    carrier = Peer(tmp_path / "carrier", scenario(tmp_path / "carrier", "carrier_uas.xml.in",
                                                  from_user=r"\+15550999"))  # fmt: skip
    try:
        trunk = api.trunk("carrier")
        api.patch(f"/trunks/{trunk['id']}", {"port": carrier.port})
        r = _publish(api, flow["id"], "+15550888")
        assert r.status_code == 200, r.text
        api.patch(f"/trunks/{branch['id']}", {"caller_id": None})
        done = call_in(tmp_path / "in2", voice_node.sip_port, "4300", talk_ms=5000)
        assert done.returncode == 0, done.stdout[-2000:]
        assert carrier.wait() == 0, carrier.errors()  # the From was the trunk's caller ID
    finally:
        carrier.stop()
    log = voice_node.log_path.read_text(errors="replace")
    assert "flow caller ID '+15550888' is none of the tenant's numbers" in log
