"""Three nodes behind Kamailio on PostgreSQL and NATS: SIPp callers through the edge are spread
over the nodes; ``kill -9`` of one node: new calls go to the survivors within seconds, and a
survivor closes the dead node's calls with disposition ``node_failure``."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.cluster.edge import (
    contacts_now,
    run_callers,
    start_callers,
    wait_for,
)
from tests.voice.peers import kill_group

pytestmark = [pytest.mark.peer, pytest.mark.slow]


@pytest.fixture
def cluster(edge_cluster):
    return edge_cluster


def test_calls_through_kamailio_and_failover(tmp_path: Path, cluster, cluster_db: str) -> None:
    nodes, edge = cluster
    # Calls through the edge reach the nodes (a hash of the Call-ID picks one).
    result = run_callers(tmp_path / "spread", edge.port, calls=9, rate=5, talk_ms=2500)
    assert result.returncode == 0, result.stdout[-2000:] + edge.log()
    rows = wait_for(
        lambda: [r for r in contacts_now(cluster_db) if r["state"] == "ended"] or None, 15
    )
    per_node = Counter(r["node"] for r in contacts_now(cluster_db))
    assert sum(per_node.values()) == 9 and len(per_node) >= 2, per_node
    assert rows

    # A long call, then the node that holds it is killed.
    long_call = start_callers(tmp_path / "long", edge.port, talk_ms=60_000, timeout=90)
    try:
        live = wait_for(lambda: [r for r in contacts_now(cluster_db) if r["state"] != "ended"], 15)
        assert len(live) == 1, live
        victim = next(n for n in nodes if n.name == live[0]["node"])
        survivors = [n for n in nodes if n is not victim]
        victim.kill()
        killed_at = time.monotonic()
        killed_wall = time.time()
        # New calls are answered again (on the survivors) within seconds.
        answered_at = None
        attempts = []
        for attempt in range(20):
            r = run_callers(tmp_path / f"after-{attempt}", edge.port, talk_ms=500, timeout=15)
            attempts.append((round(time.monotonic() - killed_at, 2), r.returncode))
            if r.returncode == 0:
                answered_at = time.monotonic()
                break
        assert answered_at is not None, edge.log()
        assert answered_at - killed_at <= 5.0, attempts
        r = run_callers(tmp_path / "after-more", edge.port, calls=6, rate=6, talk_ms=500)
        assert r.returncode == 0, r.stdout[-2000:]
        after = [
            row for row in contacts_now(cluster_db) if row["created_at"].timestamp() > killed_wall
        ]
        assert len(after) >= 7 and victim.name not in {row["node"] for row in after}, after
        # A survivor closes the dead node's call: node_failure, not left open.
        closed = wait_for(
            lambda: [
                row
                for row in contacts_now(cluster_db)
                if row["id"] == live[0]["id"] and row["state"] == "ended"
            ],
            20,
        )
        assert closed and closed[0]["disposition"] == "node_failure", closed
        assert {n.name for n in survivors} >= {
            row["node"] for row in after if row["id"] != live[0]["id"]
        }
    finally:
        kill_group(long_call)


def test_a_tenants_call_quota_holds_across_nodes(tmp_path: Path, cluster, cluster_db: str) -> None:
    import httpx

    nodes, edge = cluster
    first = nodes[0]
    creds = first.demo["platform"]
    base = first.base + "/api/v1"
    token = httpx.post(
        base + "/auth/login",
        json={"tenant": "platform", "username": "root", "password": creds["password"]},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.patch(
        base + f"/tenants/{first.demo['tenant_id']}",
        json={"max_concurrent_calls": 2},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    # One call on each of two nodes (straight to them): the quota of 2 is reached.
    calls = [
        start_callers(
            tmp_path / f"q{i}",
            edge.port,
            talk_ms=30_000,
            timeout=60,
            target=f"{node.host}:{node.sip_port}",
        )
        for i, node in enumerate(nodes[:2])
    ]
    try:
        live = wait_for(
            lambda: len([r for r in contacts_now(cluster_db) if r["state"] != "ended"]) == 2, 15
        )
        assert live
        assert {r["node"] for r in contacts_now(cluster_db) if r["state"] != "ended"} == {
            nodes[0].name,
            nodes[1].name,
        }
        time.sleep(0.5)
        # A third call on the third node is refused: the tenant's calls are counted cluster-wide.
        third = nodes[2]
        r = run_callers(tmp_path / "over", edge.port, talk_ms=500, timeout=15,
                        target=f"{third.host}:{third.sip_port}")  # fmt: skip
        assert r.returncode != 0
        errors = "".join(p.read_text() for p in (tmp_path / "over").glob("*_errors.log"))
        assert "486" in errors, errors[-2000:]
        assert len([r for r in contacts_now(cluster_db) if r["state"] != "ended"]) == 2
    finally:
        for proc in calls:
            kill_group(proc)
