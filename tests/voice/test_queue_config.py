"""Queue settings as a buyer meets them: a bad stored row never takes a tenant's routing
down; the strategies offered are the engine's; a migration repairs what was accepted before."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from cloudcc.routing.model import Strategy
from cloudcc.store.db import alembic_config
from tests.conftest import LiveNode
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, sipp_call
from tests.voice.test_inbound import wait_until_cdr


def test_the_api_offers_exactly_the_engines_strategies():
    from typing import get_args

    from cloudcc.api.schemas import Strategy as ApiStrategy

    assert set(get_args(ApiStrategy)) == {s.value for s in Strategy}


def test_the_migration_repairs_queues_stored_with_a_strategy_the_engine_lacks(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0003_trunks")
            for name, strategy in (("vip", "preferred_agent"), ("sales", "ring_all")):
                conn.execute(
                    sa.text(
                        "INSERT INTO queues (id, tenant_id, name, description, required_skills,"
                        " strategy, ring_timeout_seconds, wrapup_seconds, max_wait_seconds,"
                        " capacity, service_level_seconds, priority, overflow, music_on_hold,"
                        " announce_position, announce_interval_seconds, created_at, updated_at)"
                        " VALUES (:id, 't1', :name, '', '{}', :strategy, 20, 30, 600, 100, 20,"
                        " 5, '{}', 'default', 1, 30, '2026-01-01', '2026-01-01')"
                    ),
                    {"id": name, "name": name, "strategy": strategy},
                )
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0005_queues")
            rows = dict(conn.execute(sa.text("SELECT name, strategy FROM queues")).all())
        assert rows == {"vip": "longest_idle", "sales": "ring_all"}
    finally:
        engine.dispose()


@pytest.mark.peer
@pytest.mark.slow
def test_a_corrupt_queue_and_agent_row_leave_the_rest_of_the_tenant_routing(tmp_path):
    node = LiveNode(tmp_path / "data")
    try:
        node.wait_ready()
        api = Api(node)
        r = httpx.post(
            api.base + "/queues",
            json={"name": "vip", "strategy": "preferred_agent"},
            headers=api.headers,
        )
        assert r.status_code == 422, r.text  # refused, not stored
        vip = api.post("/queues", {"name": "vip"})
        agent_1002 = api.agents["1002"]["id"]
    finally:
        node.stop()
    # Rows written past the API (an old version, a hand edit, a bad import).
    with sqlite3.connect(tmp_path / "data" / "cloudcc.db") as db:
        db.execute("UPDATE queues SET strategy = 'preferred_agent' WHERE id = ?", (vip["id"],))
        db.execute("UPDATE agents SET skills = '{\"sales\": 99}' WHERE id = ?", (agent_1002,))
    restarted = LiveNode(tmp_path / "data")
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        restarted.wait_ready()
        api = Api(restarted)
        api.login("1001", phone.uri)  # agent login works
        api.get("/wallboard")
        status = api.get("/routing/status")
        assert not status["ok"]
        faults = {f["id"]: f for f in status["faults"]}
        assert set(faults) == {vip["id"], agent_1002}
        assert (
            faults[vip["id"]]["kind"] == "queue" and "preferred_agent" in faults[vip["id"]]["error"]
        )
        assert faults[agent_1002]["kind"] == "agent" and "99" in faults[agent_1002]["error"]
        r = httpx.get(f"{api.base}/queues/{vip['id']}/stats", headers=api.headers)
        assert r.status_code == 409 and "preferred_agent" in r.json()["detail"], r.text
        support = api.queue_id("support")
        assert api.get(f"/queues/{support}/stats")["health"] == {"ok": True, "error": None}
        # The tenant still routes: a caller reaches the agent through the demo menu.
        result = sipp_call(tmp_path / "caller", restarted.sip_port, digit="2", talk_ms=3000)
        assert result.returncode == 0, result.stdout[-3000:] + phone.errors()
        cdr = wait_until_cdr(api, lambda c: c["state"] in ("wrapup", "ended"))
        assert cdr["disposition"] == "answered" and cdr["end_cause"] == "customer_hangup"
        # Fixing the row through the API clears the fault and the queue routes again.
        api.patch(f"/queues/{vip['id']}", {"strategy": "ring_all"})
        for _ in range(50):
            if len(api.get("/routing/status")["faults"]) == 1:
                break
            time.sleep(0.1)
        assert [f["id"] for f in api.get("/routing/status")["faults"]] == [agent_1002]
        assert api.get(f"/queues/{vip['id']}/stats")["health"]["ok"]
    finally:
        phone.stop()
        restarted.stop()
    assert "cannot be routed and is left out" in Path(restarted.log_path).read_text()


def test_a_queue_rows_priority_and_flow_overflow_reach_the_engine():
    from cloudcc.contacts.acd import queue_config
    from cloudcc.routing.model import TreatmentKind
    from cloudcc.store.tables import SkillQueue

    row = SkillQueue(
        id="q1",
        tenant_id="t1",
        name="vip",
        required_skills={},
        strategy="ring_all",
        ring_timeout_seconds=20,
        wrapup_seconds=30,
        max_wait_seconds=600,
        capacity=100,
        service_level_seconds=20,
        priority=8,
        overflow={"wait_timeout": {"action": "flow", "target": "goodbye", "message": "Sorry."}},
        music_on_hold="default",
        announce_position=False,
        announce_interval_seconds=30,
    )
    config = queue_config(row, {})
    assert config.priority == 8 and config.strategy is Strategy.RING_ALL
    assert config.on_max_wait.kind is TreatmentKind.FLOW
    assert config.on_max_wait.target_flow == "goodbye" and config.on_max_wait.message == "Sorry."
    row.overflow = {"no_agents": {"action": "teleport"}}
    with pytest.raises(ValueError, match="teleport"):
        queue_config(row, {})
