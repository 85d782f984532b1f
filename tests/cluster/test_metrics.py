"""Prometheus /metrics on its own port: scraped while a real call is up (SIPp caller, SIPp agent)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveNode, free_port
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group, start_sipp_call

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(metrics: dict, name: str, **labels: str) -> float:
    return sum(
        v for lab, v in metrics.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
    )


def test_metrics_during_a_call(tmp_path: Path) -> None:
    port = free_port()
    node = LiveNode(tmp_path / "data", ["--metrics-port", str(port)])
    phone = SippAgentPhone(tmp_path / "agent").start()
    caller = None
    try:
        node.wait_ready()
        api = Api(node)
        tenant = node.demo["tenant_id"]
        api.login("1001", phone.uri)
        idle = scrape(port)
        assert value(idle, "cloudcc_node_info") == 1
        assert value(idle, "cloudcc_calls_active", tenant=tenant) == 0
        assert value(idle, "cloudcc_agents", tenant=tenant, state="ready") == 1
        caller = start_sipp_call(tmp_path / "caller", node.sip_port, talk_ms=8000)
        deadline = time.monotonic() + 30
        busy = idle
        while time.monotonic() < deadline:
            busy = scrape(port)
            if (
                value(busy, "cloudcc_agents", tenant=tenant, state="busy") == 1
                and value(busy, "cloudcc_rtp_packets_received", tenant=tenant) > 100
            ):
                break
            time.sleep(0.3)
        assert value(busy, "cloudcc_calls_active", tenant=tenant) == 1, busy
        assert value(busy, "cloudcc_call_legs_active", tenant=tenant) == 2
        assert value(busy, "cloudcc_media_legs") >= 2
        assert value(busy, "cloudcc_agents", tenant=tenant, state="busy") == 1
        assert value(busy, "cloudcc_rtp_packets_received", tenant=tenant) > 100
        assert value(busy, "cloudcc_rtp_packets_lost", tenant=tenant) < 10
        assert 0 <= value(busy, "cloudcc_rtp_jitter_max_ms", tenant=tenant) < 50
        assert value(busy, "cloudcc_contacts_started_total", tenant=tenant, channel="voice") == 1
        # The agents list and the login were timed under their route templates.
        assert (
            value(
                busy,
                "cloudcc_api_request_duration_seconds_count",
                method="POST",
                route="/api/v1/agents/{agent_id}/login",
                status="200",
            )
            == 1
        )
        assert (
            value(busy, "cloudcc_api_request_duration_seconds_count", route="/api/v1/agents") >= 1
        )
        # The caller hangs up: the agent wraps up, then the contact ends.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            wrapping = scrape(port)
            if value(wrapping, "cloudcc_agents", tenant=tenant, state="wrap_up") == 1:
                break
            time.sleep(0.3)
        assert value(wrapping, "cloudcc_agents", tenant=tenant, state="wrap_up") == 1, wrapping
        (contact,) = api.live()
        api.post(f"/contacts/{contact['contact_id']}/wrapup", {"code": "done"})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            done = scrape(port)
            if value(done, "cloudcc_contacts_ended_total", tenant=tenant) == 1:
                break
            time.sleep(0.2)
        assert (
            value(done, "cloudcc_contacts_ended_total", tenant=tenant, disposition="answered") == 1
        )
        assert value(done, "cloudcc_calls_active", tenant=tenant) == 0
        # Only /metrics is served there; the API port does not serve it.
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
        on_api = httpx.get(node.base + "/metrics", timeout=5)  # the web app's catch-all
        assert "cloudcc_calls_active" not in on_api.text
    finally:
        if caller is not None:
            kill_group(caller)
        phone.stop()
        node.stop()


def test_the_grafana_dashboard_reads_only_metrics_the_node_exposes() -> None:
    import json
    import re

    import cloudcc.observability.metrics as metrics

    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "deploy/grafana/cloudcc.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    source = Path(metrics.__file__).read_text()
    exposed = set(re.findall(r'"(cloudcc_[a-z_]+)"', source))
    used = {
        re.sub(r"_(total|bucket|count|sum)$", "", name)
        for e in exprs
        for name in re.findall(r"cloudcc_[a-z_]+", e)
    }
    assert used and used <= exposed, used - exposed
    assert len(dashboard["panels"]) >= 10
