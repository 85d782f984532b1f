"""A queue's settings as the API stores them reach the routing engine and change whom it
offers, when it announces and what it counts: API body -> stored row -> engine config -> a real
engine's decisions (the same ``queue_config`` the node loads every tenant's queues with)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from cloudcc.contacts.acd import agent_config, queue_config
from cloudcc.routing import (
    AgentState,
    AnnounceWait,
    Presence,
    QueueAction,
    RoutingEngine,
    TreatmentKind,
)
from cloudcc.store.tables import Agent, SkillQueue
from tests.api.helpers import demo_admin

from .helpers import VOICE, engine_with, offers, states


async def _engine_queue(client: httpx.AsyncClient, node: Any, body: dict[str, Any]) -> Any:
    """Create the queue through the API; its engine config as the node would load it."""
    r = await client.post("/api/v1/queues", json=body, headers=await demo_admin(client, node))
    assert r.status_code == 201, r.text
    async with node.db.session() as s:
        rows = (await s.scalars(select(SkillQueue))).all()
    ids = {q.name: q.id for q in rows if q.tenant_id == node.demo["tenant_id"]}
    row = next(q for q in rows if q.id == r.json()["id"])
    config = queue_config(row, ids)
    assert config.queue_id == row.id
    return config


def _engine(config: Any, agents: dict[str, dict[str, int]]) -> RoutingEngine:
    return engine_with([config], agents=agents)


async def test_a_queue_rows_skills_decide_who_is_offered(client, node):
    q = await _engine_queue(client, node, {"name": "french", "required_skills": {"fr": 5}})
    e = _engine(q, {"weak": {"fr": 4}, "strong": {"fr": 5}})
    assert offers(e.contact_queued("c", q.queue_id, VOICE, 0)) == [("c", ("strong",))]


async def test_a_queue_rows_strategy_decides_who_is_offered_first(client, node):
    q = await _engine_queue(
        client, node, {"name": "rr", "strategy": "round_robin", "wrapup_seconds": 0}
    )
    e = _engine(q, {"a": {}, "b": {}, "c": {}})
    seen = []
    for i in range(4):
        (cid, (agent,)), *_ = offers(e.contact_queued(f"x{i}", q.queue_id, VOICE, i))
        seen.append(agent)
        e.offer_accepted(cid, agent, i)
        e.contact_ended(cid, i + 0.5)
    assert seen == ["a", "b", "c", "a"]
    q = await _engine_queue(client, node, {"name": "all", "strategy": "ring_all"})
    e = _engine(q, {"a": {}, "b": {}})
    assert offers(e.contact_queued("y", q.queue_id, VOICE, 0)) == [("y", ("a", "b"))]


async def test_a_full_queue_row_applies_its_queue_full_overflow(client, node):
    body = {
        "name": "tiny",
        "capacity": 1,
        "overflow": {"queue_full": {"action": "disconnect", "message": "Please call later."}},
    }
    q = await _engine_queue(client, node, body)
    e = _engine(q, {"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    assert not [
        d for d in e.contact_queued("c1", q.queue_id, VOICE, 0) if isinstance(d, QueueAction)
    ]
    assert [
        d for d in e.contact_queued("c2", q.queue_id, VOICE, 1) if isinstance(d, QueueAction)
    ] == [QueueAction("c2", q.queue_id, TreatmentKind.DISCONNECT, "Please call later.")]


async def test_a_queue_rows_service_level_counts_in_its_statistics(client, node):
    def level(config: Any) -> float:
        e = _engine(config, {"a": {}})
        e.agent_state_changed("a", Presence.NOT_READY, 0)
        e.contact_queued("c", config.queue_id, VOICE, 0)
        e.agent_state_changed("a", Presence.READY, 15)
        e.offer_accepted("c", "a", 15)  # answered after 15 s
        return e.queue_stats(config.queue_id, 20).service_level

    strict = await _engine_queue(client, node, {"name": "strict", "service_level_seconds": 10})
    loose = await _engine_queue(client, node, {"name": "loose", "service_level_seconds": 20})
    assert (level(strict), level(loose)) == (0.0, 1.0)


async def test_a_queue_rows_position_announcements_follow_its_settings(client, node):
    q = await _engine_queue(client, node, {"name": "talky", "announce_interval_seconds": 45})
    e = _engine(q, {})
    e.contact_queued("c", q.queue_id, VOICE, 0)
    assert e.tick(44) == []
    (announcement,) = e.tick(45)
    assert isinstance(announcement, AnnounceWait) and announcement.position == 1
    quiet = await _engine_queue(
        client, node, {"name": "quiet", "announce_position": False, "announce_interval_seconds": 45}
    )
    e = _engine(quiet, {})
    e.contact_queued("c", quiet.queue_id, VOICE, 0)
    assert [d for d in e.tick(3600) if isinstance(d, AnnounceWait)] == []


async def test_a_queue_rows_wrapup_seconds_end_the_after_call_work(client, node):
    q = await _engine_queue(client, node, {"name": "brief", "wrapup_seconds": 12})
    e = _engine(q, {"a": {}})
    e.contact_queued("c", q.queue_id, VOICE, 0)
    e.offer_accepted("c", "a", 1)
    assert states(e.contact_ended("c", 10)) == [("a", AgentState.WRAP_UP, None)]
    assert e.tick(21) == []
    assert states(e.tick(22)) == [("a", AgentState.READY, None)]


async def test_an_agent_rows_skills_decide_which_calls_it_is_offered(client, node):
    admin = await demo_admin(client, node)
    body = {"name": "Fay", "extension": "2901", "sip_password": "secret-2901"}
    r = await client.post("/api/v1/agents", json={**body, "skills": {"fr": 6}}, headers=admin)
    assert r.status_code == 201, r.text
    async with node.db.session() as s:
        row = await s.scalar(select(Agent).where(Agent.id == r.json()["id"]))
    assert row is not None
    q = await _engine_queue(client, node, {"name": "fr5", "required_skills": {"fr": 5}})
    e = engine_with([q], agents=[agent_config(row)])
    assert offers(e.contact_queued("c", q.queue_id, VOICE, 0)) == [("c", (row.id,))]
    r = await client.patch(f"/api/v1/agents/{row.id}", json={"skills": {"fr": 4}}, headers=admin)
    assert r.status_code == 200, r.text
    async with node.db.session() as s:
        row = await s.scalar(select(Agent).where(Agent.id == row.id))
    assert row is not None
    e = engine_with([q], agents=[agent_config(row)])
    assert offers(e.contact_queued("c", q.queue_id, VOICE, 0)) == []


async def test_a_queue_rows_priority_orders_its_callers_first(client, node):
    low = await _engine_queue(client, node, {"name": "low", "priority": 3})
    high = await _engine_queue(client, node, {"name": "high", "priority": 7})
    e = engine_with([low, high], agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("old-low", low.queue_id, VOICE, 1)
    e.contact_queued("new-high", high.queue_id, VOICE, 3000)
    assert offers(e.agent_state_changed("a", Presence.READY, 3001)) == [("new-high", ("a",))]
