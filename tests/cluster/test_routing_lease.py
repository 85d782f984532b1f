"""One routing engine per tenant across the cluster, under a lease (cluster/lease.py): three
nodes on PostgreSQL and NATS, calls straight to the nodes (SIPp), agents' phones are SIPp
UASes. A call on a node that does not run the tenant's routing reaches an agent; ``kill -9``
of the node that does: another node holds the lease within 5 s, the agents' states and the
call waiting in a queue survive the move, and a new call reaches an agent."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.edge import start_callers, start_cluster, wait_for
from tests.cluster.routing import contact_rows, routing_owner
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.postgres]

NUMBER = "4100"  # straight to the support queue


def _call(tmp_path: Path, name: str, node: Any, talk_ms: int) -> Any:
    return start_callers(
        tmp_path / name, 0, number=NUMBER, talk_ms=talk_ms, timeout=talk_ms / 1000 + 40,
        target=f"{node.host}:{node.sip_port}",
    )  # fmt: skip


def _new_row(db: str, seen: set[str]) -> dict[str, Any] | None:
    fresh = [r for r in contact_rows(db) if r["id"] not in seen]
    return fresh[0] if fresh else None


def _row(db: str, contact_id: str) -> dict[str, Any]:
    return next(r for r in contact_rows(db) if r["id"] == contact_id)


def test_routing_moves_to_a_survivor_with_its_agents_and_waiting_calls(
    tmp_path: Path, cluster_db: str, nats_url: str, stream_name: str
) -> None:
    nodes = start_cluster(tmp_path, cluster_db, nats_url, stream_name, count=3)
    phones = {ext: SippAgentPhone(tmp_path / f"phone-{ext}", calls=3).start()
              for ext in ("1001", "1002", "1003")}  # fmt: skip
    calls: list[Any] = []
    try:
        api = Api(nodes[0])
        tenant_id = nodes[0].demo["tenant_id"]
        api.provision(NUMBER)
        api.post("/numbers", {"number": NUMBER, "target_type": "queue", "target": "support"})
        agent = {ext: api.agents[ext]["id"] for ext in phones}

        def on(node: Any, method: str, path: str, body: Any = None) -> httpx.Response:
            return httpx.request(method, node.base + "/api/v1" + path, json=body,
                                 headers=api.headers, timeout=30)  # fmt: skip

        # Agents sign in through the second node: it takes the tenant's routing (nobody had it).
        for ext, ready in (("1001", True), ("1002", False)):
            r = on(nodes[1], "POST", f"/agents/{agent[ext]}/login",
                   {"device": phones[ext].uri, "ready": ready})  # fmt: skip
            assert r.status_code == 200, r.text
        owner_name = routing_owner(cluster_db, tenant_id)
        assert owner_name == nodes[1].name
        owner = nodes[1]
        other = [n for n in nodes if n is not owner]
        # Every node answers for the agent from the one engine.
        for node in nodes:
            r = on(node, "GET", f"/agents/{agent['1002']}/status")
            assert r.json()["state"] == "not_ready", (node.name, r.text)

        # A call on a node without the engine reaches the ready agent (offer sent across).
        seen: set[str] = set()
        calls.append(_call(tmp_path, "c1", other[0], talk_ms=60_000))
        c1 = wait_for(lambda: _new_row(cluster_db, seen), 15)
        assert c1 and c1["node"] == other[0].name
        seen.add(c1["id"])
        answered = wait_for(lambda: _row(cluster_db, c1["id"])["answered_at"], 15)
        assert answered, _row(cluster_db, c1["id"])
        assert _row(cluster_db, c1["id"])["agent_id"] == agent["1001"]
        # A second call waits in the queue (1001 talks, 1002 is not ready).
        calls.append(_call(tmp_path, "c2", other[0], talk_ms=60_000))
        c2 = wait_for(lambda: _new_row(cluster_db, seen), 15)
        assert c2
        seen.add(c2["id"])
        assert wait_for(lambda: _row(cluster_db, c2["id"])["state"] == "queued", 15)

        # kill -9 the node running the tenant's routing.
        owner.kill()
        killed = time.monotonic()
        new_owner = wait_for(
            lambda: (o := routing_owner(cluster_db, tenant_id)) and o != owner.name and o, 10, 0.05
        )
        owned_after = time.monotonic() - killed
        assert new_owner in {n.name for n in other}, new_owner
        assert owned_after <= 5.0, owned_after
        # The agents' states survived the move: 1001 still talks, 1002 is still not ready.
        status = {ext: on(other[1], "GET", f"/agents/{agent[ext]}/status").json()
                  for ext in ("1001", "1002")}  # fmt: skip
        assert status["1001"]["state"] == "busy", status
        assert status["1002"]["state"] == "not_ready", status
        # The waiting call survived the move: an agent signing in through a survivor gets it.
        r = on(other[1], "POST", f"/agents/{agent['1003']}/login",
               {"device": phones["1003"].uri, "ready": True})  # fmt: skip
        assert r.status_code == 200, r.text
        assert wait_for(lambda: _row(cluster_db, c2["id"])["answered_at"], 10), _row(
            cluster_db, c2["id"]
        )
        assert _row(cluster_db, c2["id"])["agent_id"] == agent["1003"]
        resumed = time.monotonic() - killed
        assert resumed <= 5.0 + 3.0, resumed  # the takeover, then a sign-in and a ring
        # A new call on the other survivor reaches the agent who becomes ready there.
        r = on(other[0], "PUT", f"/agents/{agent['1002']}/state", {"state": "ready"})
        assert r.status_code == 200, r.text
        calls.append(_call(tmp_path, "c3", other[1], talk_ms=20_000))
        c3 = wait_for(lambda: _new_row(cluster_db, seen), 15)
        assert c3 and c3["node"] == other[1].name
        assert wait_for(lambda: _row(cluster_db, c3["id"])["answered_at"], 10), _row(
            cluster_db, c3["id"]
        )
        assert _row(cluster_db, c3["id"])["agent_id"] == agent["1002"]
        # The call that was talking through the move still is.
        assert _row(cluster_db, c1["id"])["state"] == "connected"
    finally:
        for proc in calls:
            kill_group(proc)
        for phone in phones.values():
            phone.stop()
        for node in nodes:
            node.stop()
