"""What a tenant's routing keeps when it moves to another node (``kill -9`` of the node that
ran it; cluster/routing.py, contacts/acd.py): callers waiting in a queue on other nodes keep
their order and their waits, an agent in wrap-up stays in it for the time it had left, and
an agent being offered a call at the moment of the kill gets it (or the caller is offered
again): no agent is left reserved. Three nodes on PostgreSQL and NATS, SIPp callers straight
to the nodes, agents' phones are SIPp UASes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.edge import ROOT, start_cluster, wait_for
from tests.cluster.routing import call_queue, new_row, routing_owner, row
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.postgres]

NUMBER = "4100"  # straight to the support queue
WRAP_UP = 20  # seconds of after-call work in the support queue
SLOW_ANSWER = ROOT / "tests" / "data" / "cluster" / "agent_slow_answer.xml"


class Cluster:
    def __init__(self, nodes: list[Any]) -> None:
        self.nodes = nodes
        self.api = Api(nodes[0])
        self.tenant_id = nodes[0].demo["tenant_id"]
        self.api.provision(NUMBER)
        self.api.post("/numbers", {"number": NUMBER, "target_type": "queue", "target": "support"})
        self.agent = {ext: a["id"] for ext, a in self.api.agents.items()}

    def on(self, node: Any, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, node.base + "/api/v1" + path, json=body,
                             headers=self.api.headers, timeout=30)  # fmt: skip

    def login(self, node: Any, ext: str, device: str | None, ready: bool) -> None:
        body: dict[str, Any] = {"ready": ready}
        if device is not None:
            body["device"] = device
        r = self.on(node, "POST", f"/agents/{self.agent[ext]}/login", body)
        assert r.status_code == 200, r.text

    def status(self, node: Any, ext: str) -> dict[str, Any]:
        r = self.on(node, "GET", f"/agents/{self.agent[ext]}/status")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def kill_owner(self, db: str) -> tuple[Any, list[Any]]:
        """kill -9 the node running the tenant's routing; once a survivor holds it: the
        survivors (new owner first)."""
        owner = next(n for n in self.nodes if n.name == routing_owner(db, self.tenant_id))
        owner.kill()
        killed = time.monotonic()
        new = wait_for(
            lambda: (o := routing_owner(db, self.tenant_id)) and o != owner.name and o, 10, 0.05
        )
        assert new, "no survivor took the routing over"
        assert time.monotonic() - killed <= 5.0
        survivors = sorted((n for n in self.nodes if n is not owner), key=lambda n: n.name != new)
        time.sleep(0.5)  # the survivors hand their calls over (cluster/routing.py "moved")
        return owner, survivors


@pytest.fixture
def cluster(tmp_path: Path, cluster_db: str, nats_url: str, stream_name: str):
    nodes = start_cluster(tmp_path, cluster_db, nats_url, stream_name, count=3)
    try:
        yield Cluster(nodes)
    finally:
        for node in nodes:
            node.stop()


def test_waiting_callers_keep_their_order_and_wrap_up_its_time_across_a_takeover(
    tmp_path: Path, cluster: Cluster, cluster_db: str
) -> None:
    c = cluster
    nodes = c.nodes
    c.api.patch(f"/queues/{c.api.queue_id('support')}", {"wrapup_seconds": WRAP_UP})
    phones = {ext: SippAgentPhone(tmp_path / f"phone-{ext}", calls=3).start()
              for ext in ("1001", "1002")}  # fmt: skip
    calls: list[Any] = []
    try:
        # Agents sign in through the second node: it runs the tenant's routing.
        c.login(nodes[1], "1001", phones["1001"].uri, ready=True)
        c.login(nodes[1], "1002", phones["1002"].uri, ready=False)
        assert routing_owner(cluster_db, c.tenant_id) == nodes[1].name
        first, second = nodes[0], nodes[2]

        # 1001 takes a short call, then is in wrap-up for WRAP_UP seconds.
        seen: set[str] = set()
        calls.append(call_queue(tmp_path / "c0", first, NUMBER, talk_ms=1500))
        c0 = wait_for(lambda: new_row(cluster_db, seen), 15)
        assert c0
        seen.add(c0["id"])
        assert wait_for(lambda: c.status(first, "1001")["state"] == "wrap_up", 20), c.status(
            first, "1001"
        )
        wrap_started = c.status(first, "1001")["since"]
        wrap_ends = wrap_started + WRAP_UP

        # Two callers wait, the first on one node, the second on another.
        calls.append(call_queue(tmp_path / "c1", first, NUMBER, talk_ms=60_000))
        c1 = wait_for(lambda: new_row(cluster_db, seen), 15)
        assert c1 and c1["node"] == first.name
        seen.add(c1["id"])
        assert wait_for(lambda: row(cluster_db, c1["id"])["state"] == "queued", 15)
        c1_queued = time.time()
        time.sleep(1.5)
        calls.append(call_queue(tmp_path / "c2", second, NUMBER, talk_ms=60_000))
        c2 = wait_for(lambda: new_row(cluster_db, seen), 15)
        assert c2 and c2["node"] == second.name
        seen.add(c2["id"])
        assert wait_for(lambda: row(cluster_db, c2["id"])["state"] == "queued", 15)

        _, survivors = c.kill_owner(cluster_db)
        assert time.time() < wrap_ends - 5, "the takeover came too late to test the wrap-up"

        # 1001 is still in wrap-up (not ready: it would have taken the first caller at once).
        status = c.status(survivors[1], "1001")
        assert status["state"] == "wrap_up", status
        assert row(cluster_db, c1["id"])["state"] == "queued"
        # Both callers wait, and the longest wait counts from the first one's arrival.
        stats = c.api.get(f"/queues/{c.api.queue_id('support')}/stats")
        assert stats["waiting"] == 2, stats
        waited = time.time() - c1_queued
        assert waited - 1.5 <= stats["longest_wait"] <= waited + 1.5, (stats, waited)

        # The first agent to become ready gets the first caller, whatever node holds which.
        r = c.on(survivors[0], "PUT", f"/agents/{c.agent['1002']}/state", {"state": "ready"})
        assert r.status_code == 200, r.text
        assert wait_for(lambda: row(cluster_db, c1["id"])["answered_at"], 10), row(
            cluster_db, c1["id"]
        )
        assert row(cluster_db, c1["id"])["agent_id"] == c.agent["1002"]
        assert row(cluster_db, c2["id"])["answered_at"] is None
        # 1001's wrap-up ends when it would have on the first owner: then it takes the second.
        answered = wait_for(lambda: row(cluster_db, c2["id"])["answered_at"], WRAP_UP + 10)
        assert answered, row(cluster_db, c2["id"])
        assert row(cluster_db, c2["id"])["agent_id"] == c.agent["1001"]
        late = answered.timestamp() - wrap_ends
        assert -1.0 <= late <= 4.0, late  # ended on time (then a ring and an answer)
    finally:
        for proc in calls:
            kill_group(proc)
        for phone in phones.values():
            phone.stop()


def test_an_offer_in_flight_at_the_takeover_reaches_the_agent(
    tmp_path: Path, cluster: Cluster, cluster_db: str
) -> None:
    c = cluster
    nodes = c.nodes
    c.api.patch(f"/queues/{c.api.queue_id('support')}", {"wrapup_seconds": 0})
    phone = SippAgentPhone(tmp_path / "phone-1003", calls=2, scenario=str(SLOW_ANSWER)).start()
    calls: list[Any] = []
    try:
        c.login(nodes[1], "1003", phone.uri, ready=True)
        assert routing_owner(cluster_db, c.tenant_id) == nodes[1].name
        seen: set[str] = set()
        calls.append(call_queue(tmp_path / "c1", nodes[0], NUMBER, talk_ms=8000))
        c1 = wait_for(lambda: new_row(cluster_db, seen), 15)
        assert c1
        seen.add(c1["id"])
        # The phone rings (it answers after 4 s): the routing owner dies meanwhile.
        assert wait_for(
            lambda: c.status(nodes[0], "1003")["state"] in ("reserved", "alerting"), 10, 0.05
        )
        _, survivors = c.kill_owner(cluster_db)
        # The agent gets the call it was offered (or is offered it again), and is not left
        # reserved: it talks, then is ready again once the caller hangs up.
        answered = wait_for(lambda: row(cluster_db, c1["id"])["answered_at"], 20)
        assert answered, row(cluster_db, c1["id"])
        assert row(cluster_db, c1["id"])["agent_id"] == c.agent["1003"]
        assert c.status(survivors[0], "1003")["state"] == "busy"
        assert wait_for(lambda: row(cluster_db, c1["id"])["state"] == "ended", 20)
        assert wait_for(lambda: c.status(survivors[1], "1003")["state"] == "ready", 10), c.status(
            survivors[1], "1003"
        )
        assert row(cluster_db, c1["id"])["disposition"] == "answered", row(cluster_db, c1["id"])
    finally:
        for proc in calls:
            kill_group(proc)
        phone.stop()
