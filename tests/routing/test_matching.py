"""Who gets what: capacity and mixing, skills and levels, strategies, priority and ageing."""

from __future__ import annotations

import pytest

from cloudcc.routing import (
    AgentConfig,
    AgentState,
    Channel,
    OfferWithdrawn,
    Presence,
    QueueConfig,
    SkillRequirement,
    Strategy,
)
from cloudcc.routing.model import ForceAction, WithdrawReason

from .helpers import CHAT, VOICE, engine_with, offers, only

# ------------------------------------------------------------------ capacity and mixing


def test_voice_capacity_is_one_contact() -> None:
    e = engine_with(agents={"a": {}})
    assert offers(e.contact_queued("c1", "q", VOICE, 0)) == [("c1", ("a",))]
    assert offers(e.contact_queued("c2", "q", VOICE, 0)) == []


def test_chat_agent_takes_up_to_its_chat_capacity() -> None:
    e = engine_with(agents=[AgentConfig("a", capacity={Channel.CHAT: 3})])
    got = [offers(e.contact_queued(f"c{i}", "q", CHAT, i)) for i in range(4)]
    assert got == [[("c0", ("a",))], [("c1", ("a",))], [("c2", ("a",))], []]
    assert e.agent_stats("a", 4).load == {CHAT: 3}


def test_freed_chat_slot_takes_the_oldest_waiting_chat() -> None:
    e = engine_with(agents=[AgentConfig("a", capacity={Channel.CHAT: 1})])
    e.contact_queued("c0", "q", CHAT, 0)
    e.offer_accepted("c0", "a", 0)
    e.contact_queued("c1", "q", CHAT, 1)
    e.contact_queued("c2", "q", CHAT, 2)
    assert offers(e.contact_ended("c0", 3)) == [("c1", ("a",))]


def test_no_chat_is_offered_while_on_a_call_by_default() -> None:
    e = engine_with(agents=[AgentConfig("a")])
    e.contact_queued("v", "q", VOICE, 0)
    assert offers(e.contact_queued("c", "q", CHAT, 1)) == []
    e.offer_accepted("v", "a", 1)
    assert offers(e.contact_ended("v", 2)) == [("c", ("a",))]


def test_chat_while_on_a_call_when_mixing_is_allowed() -> None:
    e = engine_with(agents=[AgentConfig("a", calls_block_other=False)])
    e.contact_queued("v", "q", VOICE, 0)
    assert offers(e.contact_queued("c", "q", CHAT, 1)) == [("c", ("a",))]


def test_no_call_is_offered_while_holding_chats_by_default() -> None:
    e = engine_with(agents=[AgentConfig("a")])
    e.contact_queued("c", "q", CHAT, 0)
    assert offers(e.contact_queued("v", "q", VOICE, 1)) == []
    e2 = engine_with(agents=[AgentConfig("a", other_blocks_calls=False)])
    e2.contact_queued("c", "q", CHAT, 0)
    assert offers(e2.contact_queued("v", "q", VOICE, 1)) == [("v", ("a",))]


def test_max_contacts_caps_all_channels_together() -> None:
    cap = {Channel.CHAT: 3, Channel.MESSAGE: 3}
    e = engine_with(agents=[AgentConfig("a", capacity=cap, max_contacts=2)])
    e.contact_queued("c1", "q", CHAT, 0)
    e.contact_queued("m1", "q", Channel.MESSAGE, 0)
    assert offers(e.contact_queued("c2", "q", CHAT, 0)) == []


def test_agent_without_capacity_for_a_channel_never_gets_it() -> None:
    e = engine_with(agents=[AgentConfig("a", capacity={Channel.VOICE: 1})])
    assert offers(e.contact_queued("e", "q", Channel.EMAIL, 0)) == []


# ------------------------------------------------------------------ skills and levels


def test_queue_minimum_level_excludes_weaker_agents() -> None:
    q = QueueConfig("q", required_skills=(SkillRequirement("fr", 5),))
    e = engine_with([q], agents={"weak": {"fr": 4}, "strong": {"fr": 5}})
    assert offers(e.contact_queued("c", "q", VOICE, 0)) == [("c", ("strong",))]


def test_contact_extra_skills_are_added_to_the_queue_requirement() -> None:
    q = QueueConfig("q", required_skills=(SkillRequirement("billing", 1),))
    e = engine_with([q], agents={"a": {"billing": 9}, "b": {"billing": 2, "vip": 3}})
    out = e.contact_queued("c", "q", VOICE, 0, required_skills=(SkillRequirement("vip", 2),))
    assert offers(out) == [("c", ("b",))]


def test_contact_waits_until_an_agent_with_its_skills_is_free() -> None:
    e = engine_with(agents={"a": {"en": 5}})
    out = e.contact_queued("c", "q", VOICE, 0, required_skills=(SkillRequirement("de", 1),))
    assert offers(out) == []
    e.configure_agent(AgentConfig("b", skills={"de": 1}), 1)
    assert offers(e.agent_login("b", 2)) == [("c", ("b",))]


def test_skill_change_at_run_time_makes_an_agent_eligible() -> None:
    q = QueueConfig("q", required_skills=(SkillRequirement("es", 3),))
    e = engine_with([q], agents={"a": {"es": 2}})
    assert offers(e.contact_queued("c", "q", VOICE, 0)) == []
    out = e.configure_agent(AgentConfig("a", skills={"es": 3}), 1)
    assert offers(out) == [("c", ("a",))]


def test_skill_removed_at_run_time_makes_an_agent_ineligible() -> None:
    q = QueueConfig("q", required_skills=(SkillRequirement("es", 3),))
    e = engine_with([q], agents={"a": {"es": 3}})
    e.configure_agent(AgentConfig("a", skills={"en": 3}), 1)
    assert offers(e.contact_queued("c", "q", VOICE, 2)) == []
    assert e.queue_stats("q", 2).staffed == 0


def test_deleted_agent_is_never_offered_again() -> None:
    e = engine_with(agents={"a": {}, "b": {}})
    e.remove_agent("a", 1)
    assert offers(e.contact_queued("c", "q", VOICE, 2)) == [("c", ("b",))]
    assert list(e.agent_ids()) == ["b"]


# ------------------------------------------------------------------ strategies


def test_longest_idle_agent_gets_the_contact() -> None:
    e = engine_with(agents={"a": {}, "b": {}}, login=False)
    e.agent_login("b", 1)
    e.agent_login("a", 2)
    assert offers(e.contact_queued("c", "q", VOICE, 3)) == [("c", ("b",))]


def test_longest_idle_counts_from_the_end_of_the_last_contact() -> None:
    e = engine_with(agents={"a": {}, "b": {}})
    e.contact_queued("c1", "q", VOICE, 1)  # -> a (first by rank)
    e.offer_accepted("c1", "a", 1)
    e.contact_ended("c1", 2)  # a is free since 2, b since 0
    assert offers(e.contact_queued("c2", "q", VOICE, 3)) == [("c2", ("b",))]


def test_most_skilled_agent_first() -> None:
    q = QueueConfig(
        "q", required_skills=(SkillRequirement("en", 1),), strategy=Strategy.MOST_SKILLED
    )
    e = engine_with([q], agents={"a": {"en": 3}, "b": {"en": 9}, "c": {"en": 6}})
    assert offers(e.contact_queued("x", "q", VOICE, 1)) == [("x", ("b",))]
    assert offers(e.contact_queued("y", "q", VOICE, 1)) == [("y", ("c",))]


def test_most_skilled_counts_the_contacts_extra_skills_too() -> None:
    q = QueueConfig("q", strategy=Strategy.MOST_SKILLED)
    e = engine_with([q], agents={"a": {"de": 2, "en": 9}, "b": {"de": 8, "en": 1}})
    out = e.contact_queued("x", "q", VOICE, 1, required_skills=(SkillRequirement("de", 1),))
    assert offers(out) == [("x", ("b",))]


def test_least_occupied_agent_first() -> None:
    cap = {Channel.CHAT: 3}
    q = QueueConfig("q", strategy=Strategy.LEAST_OCCUPIED)
    e = engine_with([q], agents=[AgentConfig("a", capacity=cap), AgentConfig("b", capacity=cap)])
    got = [offers(e.contact_queued(f"c{i}", "q", CHAT, i))[0][1] for i in range(4)]
    assert got == [("a",), ("b",), ("a",), ("b",)]


def test_round_robin_cycles_through_agents() -> None:
    q = QueueConfig("q", strategy=Strategy.ROUND_ROBIN)
    e = engine_with([q], agents={"a": {}, "b": {}, "c": {}})
    seen = []
    for i in range(6):
        (cid, (agent,)), *_ = offers(e.contact_queued(f"x{i}", "q", VOICE, i))
        seen.append(agent)
        e.offer_accepted(cid, agent, i)
        e.contact_ended(cid, i + 0.5)
    assert seen == ["a", "b", "c", "a", "b", "c"]


def test_ring_all_offers_every_free_agent_and_connects_only_one() -> None:
    q = QueueConfig("q", strategy=Strategy.RING_ALL)
    e = engine_with([q], agents={"a": {}, "b": {}, "c": {}})
    out = e.contact_queued("x", "q", VOICE, 0)
    assert offers(out) == [("x", ("a", "b", "c"))]
    out = e.offer_accepted("x", "b", 1)
    withdrawn = {(w.agent_id, w.reason) for w in only(out, OfferWithdrawn)}
    assert withdrawn == {
        ("a", WithdrawReason.ANSWERED_ELSEWHERE),
        ("c", WithdrawReason.ANSWERED_ELSEWHERE),
    }
    assert e.agent_stats("a", 1).state is AgentState.READY
    assert e.contact_info("x").agent_ids == ("b",)


def test_ring_all_respects_its_limit() -> None:
    q = QueueConfig("q", strategy=Strategy.RING_ALL, ring_all_limit=2)
    e = engine_with([q], agents={"a": {}, "b": {}, "c": {}})
    assert offers(e.contact_queued("x", "q", VOICE, 0)) == [("x", ("a", "b"))]


def test_ring_all_timeout_rings_everyone_again_without_rona() -> None:
    q = QueueConfig("q", strategy=Strategy.RING_ALL, ring_timeout=10)
    e = engine_with([q], agents={"a": {}, "b": {}})
    e.contact_queued("x", "q", VOICE, 0)
    out = e.tick(10)
    assert offers(out) == [("x", ("a", "b"))]
    assert e.agent_stats("a", 10).presence is Presence.READY


def test_preferred_agent_gets_the_contact_when_free() -> None:
    q = QueueConfig("q", preferred_agent_wait=30)
    e = engine_with([q], agents={"a": {}, "b": {}})
    assert offers(e.contact_queued("x", "q", VOICE, 0, preferred_agent="b")) == [("x", ("b",))]


def test_contact_waits_for_busy_preferred_agent_then_falls_back() -> None:
    q = QueueConfig("q", preferred_agent_wait=30)
    e = engine_with([q], agents={"a": {}, "b": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.direct_contact_started("b", "d", VOICE, 0)
    assert offers(e.contact_queued("x", "q", VOICE, 1, preferred_agent="b")) == []
    assert offers(e.agent_state_changed("a", Presence.READY, 2)) == []  # reserved for b
    assert offers(e.tick(31)) == [("x", ("a",))]


def test_preferred_agent_freed_within_the_wait_takes_the_contact() -> None:
    q = QueueConfig("q", preferred_agent_wait=30)
    e = engine_with([q], agents={"a": {}, "b": {}})
    e.direct_contact_started("b", "d", VOICE, 0)
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("x", "q", VOICE, 1, preferred_agent="b")
    assert offers(e.contact_ended("d", 5)) == [("x", ("b",))]


def test_a_signed_out_agents_offer_goes_back_before_its_own_waiting_customers() -> None:
    # b rings with "old" and "new" waits for b; b is signed out while "a" is free: "old",
    # taken back from b, is older and goes to a first (found by test_properties).
    q = QueueConfig("q", preferred_agent_wait=30)
    e = engine_with([q], agents={"b": {}, "a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    assert offers(e.contact_queued("old", "q", VOICE, 0)) == [("old", ("b",))]
    e.contact_queued("new", "q", VOICE, 1, preferred_agent="b")
    e.agent_state_changed("a", Presence.READY, 2)  # new waits for b: a stays free
    out = e.force_agent("b", ForceAction.SIGN_OUT, "supervisor", 3)
    assert offers(out) == [("old", ("a",))]  # "new" waits for the next free agent


def test_a_chat_waiting_for_its_agent_is_not_held_up_by_an_older_call() -> None:
    q = QueueConfig("q", preferred_agent_wait=30)
    both = {Channel.VOICE: 1, Channel.CHAT: 1}
    b = AgentConfig("b", capacity=both, calls_block_other=False, other_blocks_calls=False)
    e = engine_with([q], agents=[AgentConfig("a"), b])
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.direct_contact_started("b", "call", VOICE, 0)
    e.direct_contact_started("b", "chat", CHAT, 0)
    e.contact_queued("x", "q", VOICE, 1, preferred_agent="b")  # b is on a call
    e.contact_queued("y", "q", CHAT, 2, preferred_agent="b")  # and on a chat
    assert offers(e.contact_ended("chat", 3)) == [("y", ("b",))]  # x is older, b can't take it
    assert offers(e.contact_ended("call", 4)) == [("x", ("b",))]


@pytest.mark.parametrize("others", [2, 12])  # extra-skill lane borrows / parks its own
def test_contact_skills_pick_among_free_agents_and_pass_nobody_over_for_good(others: int) -> None:
    agents = {f"a{i}": {"en": 5} for i in range(others)}
    agents["fr"] = {"en": 5, "fr": 3}
    e = engine_with([QueueConfig("q", required_skills=(SkillRequirement("en", 1),))], agents)
    french = (SkillRequirement("fr", 1),)
    assert offers(e.contact_queued("x", "q", VOICE, 1, required_skills=french)) == [("x", ("fr",))]
    e.offer_accepted("x", "fr", 1.5)
    got = [offers(e.contact_queued(f"y{i}", "q", VOICE, 2 + i / 10)) for i in range(others)]
    assert got == [[(f"y{i}", (f"a{i}",))] for i in range(others)]  # longest idle, in order
    e.contact_queued("z", "q", VOICE, 4, required_skills=french)
    assert e.contact_info("z").state.value == "waiting"
    assert offers(e.contact_ended("x", 5)) == [("z", ("fr",))]


def test_signed_out_or_unknown_preferred_agent_is_not_waited_for() -> None:
    q = QueueConfig("q", preferred_agent_wait=30)
    e = engine_with([q], agents={"a": {}, "b": {}})
    e.agent_logout("b", 0)
    assert offers(e.contact_queued("x", "q", VOICE, 1, preferred_agent="b")) == [("x", ("a",))]
    e.contact_queued("y", "q", VOICE, 1, preferred_agent="nobody")
    assert e.contact_info("y").state.value == "waiting"


# ------------------------------------------------------------------ priority and ageing


def test_equal_priority_is_first_in_first_out() -> None:
    e = engine_with(agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    for i in range(3):
        e.contact_queued(f"c{i}", "q", VOICE, i + 1)
    assert offers(e.agent_state_changed("a", Presence.READY, 10)) == [("c0", ("a",))]


def test_higher_priority_goes_first() -> None:
    e = engine_with([QueueConfig("q", priority_step_seconds=1000)], agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("low", "q", VOICE, 1, priority=0)
    e.contact_queued("high", "q", VOICE, 2, priority=1)
    assert offers(e.agent_state_changed("a", Presence.READY, 10)) == [("high", ("a",))]


def test_ageing_lets_a_long_waiting_low_priority_contact_go_first() -> None:
    e = engine_with([QueueConfig("q", priority_step_seconds=60)], agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("old-low", "q", VOICE, 0, priority=0)
    e.contact_queued("new-high", "q", VOICE, 90, priority=1)  # worth 60 s only
    assert offers(e.agent_state_changed("a", Presence.READY, 100)) == [("old-low", ("a",))]


def test_agent_in_two_queues_takes_the_oldest_across_them() -> None:
    qs = [QueueConfig("q1"), QueueConfig("q2")]
    e = engine_with(qs, agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("in-q2", "q2", VOICE, 1)
    e.contact_queued("in-q1", "q1", VOICE, 2)
    assert offers(e.agent_state_changed("a", Presence.READY, 3)) == [("in-q2", ("a",))]


def test_a_higher_priority_queues_contact_is_offered_first_however_long_the_other_waits() -> None:
    qs = [QueueConfig("low", priority=3), QueueConfig("high", priority=7)]
    e = engine_with(qs, agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("old-low", "low", VOICE, 1, priority=5)  # a high contact priority too
    e.contact_queued("new-high", "high", VOICE, 3000)
    e.contact_queued("newer-high", "high", VOICE, 3001)
    assert offers(e.agent_state_changed("a", Presence.READY, 3002)) == [("new-high", ("a",))]
    e.offer_accepted("new-high", "a", 3002)
    # Within one queue priority: first in, first out; the low queue only when high is empty.
    assert offers(e.contact_ended("new-high", 3003)) == [("newer-high", ("a",))]
    e.offer_accepted("newer-high", "a", 3004)
    assert offers(e.contact_ended("newer-high", 3005)) == [("old-low", ("a",))]


def test_a_queues_priority_changed_at_run_time_reorders_its_waiting_contacts() -> None:
    qs = [QueueConfig("q1"), QueueConfig("q2")]
    e = engine_with(qs, agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("in-q1", "q1", VOICE, 1)
    e.contact_queued("in-q2", "q2", VOICE, 2)
    e.configure_queue(QueueConfig("q2", priority=1), 3)
    assert offers(e.agent_state_changed("a", Presence.READY, 4)) == [("in-q2", ("a",))]
    # Positions within a queue are not moved by its priority.
    assert e.position("in-q1") == 1


def test_queue_priority_is_bounded() -> None:
    with pytest.raises(ValueError, match="priority"):
        QueueConfig("q", priority=101)
