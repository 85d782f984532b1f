"""An agent's phone registered through Kamailio with one node is rung by another
(cluster/registrations.py): the phone (baresip) registers through the edge, which adds a
Path (RFC 3327); a call taken by another node is offered to the agent, that node rings the
phone through the edge, and the phone answers. Three nodes on PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.edge import EDGE_HOST
from tests.cluster.routing import call_queue, contact_rows
from tests.voice.conftest import Api
from tests.voice.peers import Baresip, kill_group

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.postgres]

NUMBER = "4100"  # straight to the support queue


async def _bindings(db_url: str) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT node, aor, agent_id, contact, path FROM sip_bindings")
    finally:
        await conn.close()
    return [{**dict(r), "path": json.loads(r["path"])} for r in rows]


async def _until(predicate: Any, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


async def test_a_phone_registered_with_one_node_is_rung_by_another(
    tmp_path: Path, edge_cluster: Any, cluster_db: str
) -> None:
    nodes, edge = edge_cluster
    api = Api(nodes[0])
    api.provision(NUMBER)
    api.post("/numbers", {"number": NUMBER, "target_type": "queue", "target": "support"})
    agent_id = api.agents["1001"]["id"]
    # The phone registers through the edge (its outbound proxy); Kamailio picks a node.
    phone = await Baresip(
        tmp_path / "phone-1001",
        user="1001",
        password=api.passwords["1001"],
        registrar_port=nodes[0].sip_port,
        account_params=f';outbound="sip:{EDGE_HOST}:{edge.port}"',
    ).start()
    caller = None
    try:
        # Written to the store by the node that took the REGISTER.
        rows = await _until(lambda: _bindings(cluster_db), 15)
        assert rows, phone.output()[-2000:] + edge.log()
        assert len(rows) == 1 and rows[0]["agent_id"] == agent_id, rows
        assert rows[0]["path"] and EDGE_HOST in rows[0]["path"][0], rows  # RFC 3327 Path
        holder = next(n for n in nodes if n.name == rows[0]["node"])
        other = next(n for n in nodes if n is not holder)

        # The agent signs in through a node its phone did not register with (its phone).
        r = httpx.post(other.base + f"/api/v1/agents/{agent_id}/login", json={"ready": True},
                       headers=api.headers, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["device"] == rows[0]["aor"], r.text

        # A caller reaches that node: it offers the call to the agent and rings its phone
        # through the edge (Route from the Path); the phone answers.
        caller = call_queue(tmp_path / "caller", other, NUMBER, talk_ms=4000)

        async def answered() -> dict[str, Any] | None:
            rows = await asyncio.to_thread(contact_rows, cluster_db)
            done = [r for r in rows if r["answered_at"] is not None]
            return done[0] if done else None

        contact = await _until(answered, 20)
        assert contact, (phone.output()[-3000:], edge.log())
        assert contact["node"] == other.name and contact["agent_id"] == agent_id, contact
    finally:
        if caller is not None:
            kill_group(caller)
        await phone.stop()
