"""Two `cloudcc serve` processes on one PostgreSQL database and one NATS: a change made on
node A reaches the event stream of node B with the same number, and a webhook subscribed on
B is delivered once, not once per node."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveNode
from tests.voice.conftest import Api

pytestmark = [pytest.mark.slow]


def cluster_node(
    tmp_path: Path, name: str, db: str, nats_url: str, stream: str, *extra: str
) -> LiveNode:
    return LiveNode(
        tmp_path / name,
        ["--node-id", name, "--database-url", db, "--nats-url", nats_url, *extra],
        env={
            "CLOUDCC_CLUSTER__STREAM": stream,
            "CLOUDCC_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "CLOUDCC_AI__ASR_ENABLED": "false",
        },
    )


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_events_and_webhooks_across_two_nodes(
    tmp_path: Path, cluster_db: str, nats_url: str, stream_name: str
) -> None:
    a = cluster_node(tmp_path, "a", cluster_db, nats_url, stream_name)
    b = None
    on_b = None
    receiver = Receiver()
    try:
        a.wait_ready()
        b = cluster_node(tmp_path, "b", cluster_db, nats_url, stream_name, "--no-demo")
        b.wait_ready()
        api = Api(a)  # a token from node A is good on node B (one secret, one database)
        on_b = httpx.Client(base_url=b.base + "/api/v1", headers=api.headers, timeout=30)
        r = on_b.post("/webhooks", json={"url": receiver.url, "event_types": ["agent.*"]})
        assert r.status_code == 201, r.text
        start = on_b.get("/events", params={"wait": 0}).json()["next"]
        agent = api.agents["1001"]
        api.patch(f"/agents/{agent['id']}", {"name": "Renamed on A"})

        def agent_events(get: Any) -> list[dict[str, Any]]:
            """Poll from ``start`` until an agent event came (other events may come first)."""
            since, seen = start, []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                page = get(since)
                seen += [e for e in page["events"] if e["type"].startswith("agent.")]
                if seen:
                    return seen
                since = page["next"]
            return seen

        changed_b = agent_events(
            lambda since: on_b.get("/events", params={"since": since, "wait": 5}).json()
        )
        changed_a = agent_events(
            lambda since: httpx.get(
                a.base + "/api/v1/events",
                params={"since": since, "wait": 5},
                headers=api.headers,
            ).json()
        )
        assert changed_b and changed_b[0]["data"]["id"] == agent["id"], changed_b
        # One numbering on both nodes.
        assert [(e["seq"], e["type"]) for e in changed_b] == [
            (e["seq"], e["type"]) for e in changed_a
        ]
        # The webhook subscribed on B is delivered once for the event published on A.
        deadline = time.monotonic() + 15
        while not receiver.bodies and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # a duplicate from the other node would have arrived by now
        seqs = [body.get("seq") for body in receiver.bodies]
        assert seqs == [changed_b[0]["seq"]], receiver.bodies
    finally:
        if on_b is not None:
            on_b.close()
        receiver.server.server_close()
        receiver.close()
        if b is not None:
            b.stop()
        a.stop()
