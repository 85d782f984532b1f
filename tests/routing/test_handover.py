"""A tenant's routing moving to another engine (a cluster takeover): the waiting contacts
handed over with the time they joined their queue keep their places and their waits, and an
agent in wrap-up keeps it for the time it has left."""

from __future__ import annotations

import pytest

from cloudcc.routing import AgentConfig, AgentState, Presence, QueueConfig
from cloudcc.routing.exceptions import IllegalTransition
from tests.routing.helpers import VOICE, engine_with, offers


def test_contacts_handed_over_keep_their_places_and_waits() -> None:
    e = engine_with([QueueConfig("q", service_level_seconds=30)], {"a1": {}}, login=False)
    e.agent_login("a1", 100.0, presence=Presence.NOT_READY, reason="busy")
    # Handed over in the wrong order (two nodes, each with its own): the older goes first.
    e.contact_queued("late", "q", VOICE, 200.0, enqueued_at=150.0)
    e.contact_queued("early", "q", VOICE, 200.0, enqueued_at=120.0)
    e.contact_queued("fresh", "q", VOICE, 201.0)
    assert e.position("early") == 1 and e.position("late") == 2 and e.position("fresh") == 3
    stats = e.queue_stats("q", 202.0)
    assert stats.waiting == 3
    assert stats.longest_wait == pytest.approx(82.0)  # since 120, not since the handover
    decisions = e.agent_state_changed("a1", Presence.READY, 202.0)
    assert offers(decisions) == [("early", ("a1",))]
    e.offer_accepted("early", "a1", 203.0)
    q = e.queue_stats("q", 203.0)
    assert q.answered == 1 and q.service_level == 0.0  # waited 83 s: outside the 30 s
    # A time ahead of the engine's clock (another node's clock) counts as now.
    e.contact_queued("ahead", "q", VOICE, 204.0, enqueued_at=900.0)
    assert e.queue_stats("q", 204.0).longest_wait == pytest.approx(54.0)  # "late", since 150


def test_wrap_up_handed_over_lasts_the_time_left() -> None:
    e = engine_with([QueueConfig("q", wrap_up_seconds=30)], {"a1": {}, "a2": {}})
    e.wrapup_resumed("a1", "c0", VOICE, "q", 130.0, 110.0)
    assert e.agent_stats("a1", 110.0).state is AgentState.WRAP_UP
    assert e.wrap_ups("a1") == [("c0", VOICE, "q", 130.0)]
    # Not offered during its wrap-up: the other agent gets the contact.
    assert offers(e.contact_queued("c1", "q", VOICE, 111.0)) == [("c1", ("a2",))]
    e.offer_accepted("c1", "a2", 112.0)
    decisions = e.contact_queued("c2", "q", VOICE, 120.0)
    assert offers(decisions) == []
    # Its wrap-up ends when it would have on the first engine, and it takes the waiting one.
    assert e.next_deadline() == 130.0
    decisions = e.tick(130.0)
    assert offers(decisions) == [("c2", ("a1",))]
    # A wrap-up already over is not resumed; one that lasts until done waits for wrapup_done.
    e2 = engine_with([QueueConfig("q", wrap_up_seconds=None)], {"a1": {}})
    assert e2.wrapup_resumed("a1", "c0", VOICE, "q", 50.0, 60.0) == []
    assert e2.agent_stats("a1", 60.0).state is AgentState.READY
    e2.wrapup_resumed("a1", "c9", VOICE, "q", None, 61.0)
    assert e2.wrap_ups("a1") == [("c9", VOICE, "q", None)]
    assert e2.agent_stats("a1", 500.0).state is AgentState.WRAP_UP
    e2.wrapup_done("a1", "c9", 501.0)
    assert e2.agent_stats("a1", 501.0).state is AgentState.READY


def test_wrap_up_is_not_resumed_for_an_agent_signed_out() -> None:
    e = engine_with([QueueConfig("q")], [AgentConfig("a1")], login=False)
    with pytest.raises(IllegalTransition):
        e.wrapup_resumed("a1", "c0", VOICE, None, 10.0, 1.0)
