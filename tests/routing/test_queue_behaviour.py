"""Queue rules: reservations and RONA, relaxation, overflow and treatments, callbacks,
positions and wait estimates, statistics, run-time configuration, replay."""

from __future__ import annotations

import pickle

import pytest

from cloudcc.routing import (
    AgentConfig,
    AgentState,
    AnnounceWait,
    Channel,
    ContactReleased,
    ForceAction,
    Offer,
    OfferWithdrawn,
    Overflow,
    Presence,
    QueueAction,
    QueueConfig,
    Relaxation,
    RoutingEngine,
    SkillRequirement,
    Treatment,
    TreatmentKind,
)
from cloudcc.routing.events import (
    AgentConfigured,
    AgentLoggedIn,
    ContactQueued,
    OfferAccepted,
    QueueConfigured,
    Tick,
)
from cloudcc.routing.exceptions import (
    DuplicateContact,
    IllegalTransition,
    InvalidConfig,
    NotOffered,
    NotQueued,
    QueueInUse,
    UnknownContact,
    UnknownQueue,
)
from cloudcc.routing.model import WithdrawReason

from .helpers import VOICE, engine_with, offers, only, states

# ------------------------------------------------------------------ reservations


def test_unanswered_offer_is_withdrawn_and_agent_goes_not_ready_rona() -> None:
    e = engine_with([QueueConfig("q", ring_timeout=15)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    assert e.next_deadline() == 15
    out = e.tick(15)
    assert only(out, OfferWithdrawn) == [OfferWithdrawn("c", "a", WithdrawReason.RING_TIMEOUT)]
    assert states(out) == [("a", AgentState.NOT_READY, "rona")]
    assert e.contact_info("c").state.value == "waiting"


def test_rona_contact_goes_back_at_the_head_of_its_queue() -> None:
    e = engine_with([QueueConfig("q", ring_timeout=15)], agents={"a": {}, "b": {}})
    e.agent_state_changed("b", Presence.NOT_READY, 0)
    e.contact_queued("first", "q", VOICE, 1)  # rings at a
    e.contact_queued("second", "q", VOICE, 2)
    e.tick(16)  # a: RONA
    assert e.position("first") == 1
    assert offers(e.agent_state_changed("b", Presence.READY, 17)) == [("first", ("b",))]


def test_a_contact_whose_agent_was_lost_comes_back_ahead_of_later_arrivals() -> None:
    e = engine_with([QueueConfig("q")], agents={"a": {}, "b": {}})
    e.agent_state_changed("b", Presence.NOT_READY, 0)
    e.contact_queued("first", "q", VOICE, 1)  # rings at a
    e.offer_accepted("first", "a", 2)
    e.contact_queued("second", "q", VOICE, 3)
    e.contact_queued("third", "q", VOICE, 4)
    e.contact_ended("first", 10)  # a's browser vanished: the contact comes back
    e.agent_state_changed("a", Presence.NOT_READY, 10)
    e.contact_queued("first", "q", VOICE, 10, enqueued_at=1)
    assert e.position("first") == 1 and e.position("second") == 2
    assert offers(e.agent_state_changed("b", Presence.READY, 11)) == [("first", ("b",))]
    # without its first arrival it would wait behind the others
    e2 = engine_with([QueueConfig("q")], agents={"b": {}})
    e2.agent_state_changed("b", Presence.NOT_READY, 0)
    e2.contact_queued("second", "q", VOICE, 3)
    e2.contact_queued("first", "q", VOICE, 10)
    assert e2.position("first") == 2


def test_rona_contact_is_offered_to_the_next_free_agent_at_once() -> None:
    e = engine_with([QueueConfig("q", ring_timeout=15)], agents={"a": {}, "b": {}})
    e.contact_queued("c", "q", VOICE, 0)  # a
    out = e.tick(15)
    assert offers(out) == [("c", ("b",))]


def test_rona_to_not_ready_can_be_turned_off() -> None:
    e = engine_with([QueueConfig("q", ring_timeout=15, rona_not_ready=False)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    out = e.tick(15)
    assert e.agent_stats("a", 15).presence is Presence.READY
    assert offers(out) == [("c", ("a",))]  # the only agent is rung again


def test_rejected_offer_moves_the_agent_to_not_ready_rejected() -> None:
    e = engine_with(agents={"a": {}, "b": {}})
    e.contact_queued("c", "q", VOICE, 0)
    out = e.offer_rejected("c", "a", 1)
    assert ("a", AgentState.NOT_READY, "rejected") in states(out)
    assert offers(out) == [("c", ("b",))]
    assert e.queue_stats("q", 1).rejects == 1


def test_edge_reported_ring_timeout_is_a_rona() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    assert states(e.offer_timed_out("c", "a", 3)) == [("a", AgentState.NOT_READY, "rona")]


def test_accepting_an_offer_made_to_someone_else_raises() -> None:
    e = engine_with(agents={"a": {}, "b": {}})
    e.contact_queued("c", "q", VOICE, 0)
    with pytest.raises(NotOffered):
        e.offer_accepted("c", "b", 1)
    e.offer_accepted("c", "a", 1)
    with pytest.raises(IllegalTransition):
        e.offer_accepted("c", "a", 2)


def test_accept_after_the_ring_timer_fired_is_refused_with_the_withdrawal_kept() -> None:
    e = engine_with([QueueConfig("q", ring_timeout=10)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    with pytest.raises(NotOffered):
        e.offer_accepted("c", "a", 11)
    assert only(e.tick(11), OfferWithdrawn)[0].reason is WithdrawReason.RING_TIMEOUT


def test_abandon_while_ringing_withdraws_the_offer() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    out = e.contact_abandoned("c", 2)
    assert only(out, OfferWithdrawn) == [OfferWithdrawn("c", "a", WithdrawReason.ABANDONED)]
    assert e.agent_stats("a", 2).state is AgentState.READY
    with pytest.raises(UnknownContact):
        e.contact_info("c")


def test_abandoning_a_connected_contact_raises() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    with pytest.raises(IllegalTransition):
        e.contact_abandoned("c", 2)


def test_same_contact_id_twice_raises() -> None:
    e = engine_with()
    e.contact_queued("c", "q", VOICE, 0)
    with pytest.raises(DuplicateContact):
        e.contact_queued("c", "q", VOICE, 0)
    with pytest.raises(UnknownQueue):
        e.contact_queued("d", "nope", VOICE, 0)


# ------------------------------------------------------------------ relaxation and overflow


def test_relaxation_widens_the_skill_requirement_after_t_seconds() -> None:
    q = QueueConfig(
        "q",
        required_skills=(SkillRequirement("en", 8),),
        relaxations=(Relaxation(30, (SkillRequirement("en", 4),)),),
    )
    e = engine_with([q], agents={"junior": {"en": 5}})
    assert offers(e.contact_queued("c", "q", VOICE, 0)) == []
    assert e.next_deadline() == 30
    assert offers(e.tick(30)) == [("c", ("junior",))]


def test_relaxation_can_drop_the_contacts_own_skills() -> None:
    q = QueueConfig("q", relaxations=(Relaxation(20, drop_contact_skills=True),))
    e = engine_with([q], agents={"a": {}})
    out = e.contact_queued("c", "q", VOICE, 0, required_skills=(SkillRequirement("vip", 5),))
    assert offers(out) == []
    assert offers(e.tick(20)) == [("c", ("a",))]


def test_relaxation_that_narrows_is_a_config_error() -> None:
    with pytest.raises(InvalidConfig):
        QueueConfig(
            "q",
            required_skills=(SkillRequirement("en", 3),),
            relaxations=(Relaxation(10, (SkillRequirement("en", 5),)),),
        )


def test_max_wait_overflows_to_another_queue() -> None:
    e = engine_with(
        [
            QueueConfig("backup"),
            QueueConfig(
                "q",
                required_skills=(SkillRequirement("x", 1),),
                max_wait=60,
                on_max_wait=Treatment(TreatmentKind.OVERFLOW, target_queue="backup"),
            ),
        ],
        agents={"a": {}},
    )
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("c", "q", VOICE, 0)
    out = e.tick(60)
    assert out == [Overflow("c", "q", "backup"), AnnounceWait("c", "backup", 1, 180.0)]
    assert e.queue_stats("q", 60).overflowed == 1
    assert e.queue_stats("backup", 60).entered == 1
    assert offers(e.agent_state_changed("a", Presence.READY, 61)) == [("c", ("a",))]


def test_overflowed_contact_leaves_the_old_queues_timers_behind() -> None:
    # The first queue would relax at 20 s and announce every 30 s; the contact overflows at
    # 15 s into a queue with neither: nothing of the first queue may fire afterwards.
    e = engine_with(
        [
            QueueConfig("backup"),
            QueueConfig(
                "q",
                required_skills=(SkillRequirement("x", 5),),
                relaxations=(Relaxation(20, (SkillRequirement("x", 1),)),),
                announce_interval=30,
                max_wait=15,
                on_max_wait=Treatment(TreatmentKind.OVERFLOW, target_queue="backup"),
            ),
        ],
        agents={"a": {}},
    )
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("c", "q", VOICE, 0)
    assert only(e.tick(15), Overflow) == [Overflow("c", "q", "backup")]
    assert e.tick(100) == []
    assert e.contact_info("c").stage == 0
    assert e.next_deadline() is None
    assert offers(e.agent_state_changed("a", Presence.READY, 101)) == [("c", ("a",))]


@pytest.mark.parametrize(
    "kind", [TreatmentKind.VOICEMAIL, TreatmentKind.DISCONNECT, TreatmentKind.CALLBACK]
)
def test_max_wait_treatments(kind: TreatmentKind) -> None:
    q = QueueConfig("q", max_wait=60, on_max_wait=Treatment(kind, message="sorry"))
    e = engine_with([q], agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("c", "q", VOICE, 0)
    assert e.tick(60) == [QueueAction("c", "q", kind, "sorry")]
    if kind is TreatmentKind.CALLBACK:
        assert e.contact_info("c").callback
        out = e.agent_state_changed("a", Presence.READY, 61)
        assert only(out, Offer)[0].callback
    else:
        assert "c" not in set(e.contact_ids())
        assert e.queue_stats("q", 60).treated == {kind: 1}


def test_full_queue_applies_its_treatment() -> None:
    q = QueueConfig("q", capacity=1, on_full=Treatment(TreatmentKind.DISCONNECT, message="busy"))
    e = engine_with([q], agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("c1", "q", VOICE, 0)
    assert e.contact_queued("c2", "q", VOICE, 1) == [
        QueueAction("c2", "q", TreatmentKind.DISCONNECT, "busy")
    ]
    assert e.queue_stats("q", 1).waiting == 1


def test_no_agent_signed_in_applies_the_immediate_action() -> None:
    q = QueueConfig("q", on_no_agents=Treatment(TreatmentKind.VOICEMAIL))
    e = engine_with([q], agents={"a": {}}, login=False)
    out = e.contact_queued("c", "q", VOICE, 0)
    assert out == [QueueAction("c", "q", TreatmentKind.VOICEMAIL, None)]
    e.agent_login("a", 1, presence=Presence.NOT_READY)
    assert only(e.contact_queued("d", "q", VOICE, 2), QueueAction) == []


def _closing_queue(agents: dict[str, dict[str, int]], **kw: object) -> RoutingEngine:
    """Queue ``q`` (skill ``en`` >= 1) with voicemail when nobody is signed in; its agents
    are not ready, and contacts ``c1``, ``c2`` wait."""
    q = QueueConfig(
        "q",
        required_skills=(SkillRequirement("en", 1),),
        on_no_agents=Treatment(TreatmentKind.VOICEMAIL, message="closed"),
        **kw,  # type: ignore[arg-type]
    )
    e = engine_with([q], agents=agents)
    for aid in agents:
        e.agent_state_changed(aid, Presence.NOT_READY, 0)
    e.contact_queued("c1", "q", VOICE, 1)
    e.contact_queued("c2", "q", VOICE, 2)
    return e


def test_last_agent_signing_out_applies_the_no_agents_action_to_waiting_contacts() -> None:
    e = _closing_queue({"a": {"en": 5}, "b": {"en": 5}})
    e.contact_queued("cb", "q", VOICE, 3)
    e.callback_requested("cb", 4)
    assert only(e.agent_logout("a", 10), QueueAction) == []  # b is still signed in
    out = e.agent_logout("b", 11)
    assert only(out, QueueAction) == [
        QueueAction("c1", "q", TreatmentKind.VOICEMAIL, "closed"),
        QueueAction("c2", "q", TreatmentKind.VOICEMAIL, "closed"),
    ]
    assert set(e.contact_ids()) == {"cb"}  # the callback waits for the morning
    stats = e.queue_stats("q", 11)
    assert (stats.waiting, stats.treated) == (1, {TreatmentKind.VOICEMAIL: 2})
    assert offers(e.agent_login("a", 20)) == [("cb", ("a",))]


def test_forced_sign_out_of_the_last_agent_overflows_waiting_contacts() -> None:
    to_b = Treatment(TreatmentKind.OVERFLOW, target_queue="b")
    e = engine_with(
        [QueueConfig("b"), QueueConfig("a", required_skills=(SkillRequirement("en", 1),))],
        agents={"x": {"en": 1}},
    )
    e.configure_queue(
        QueueConfig("a", required_skills=(SkillRequirement("en", 1),), on_no_agents=to_b), 0
    )
    e.configure_agent(AgentConfig("y", skills={}), 0)
    e.agent_state_changed("x", Presence.NOT_READY, 0)
    e.contact_queued("c", "a", VOICE, 1)
    out = e.force_agent("x", ForceAction.SIGN_OUT, "sup", 5)
    assert only(out, Overflow) == [Overflow("c", "a", "b")]
    assert e.contact_info("c").queue_id == "b"  # b has no no-agents action: c waits there
    assert offers(e.agent_login("y", 6)) == [("c", ("y",))]


def test_a_skill_change_that_empties_a_queue_applies_its_no_agents_action() -> None:
    e = _closing_queue({"a": {"en": 5}})
    out = e.configure_agent(AgentConfig("a", skills={"fr": 5}), 10)
    assert [d.contact_id for d in only(out, QueueAction)] == ["c1", "c2"]
    assert e.queue_stats("q", 10).waiting == 0


def test_a_queue_edit_that_leaves_nobody_signed_in_applies_its_no_agents_action() -> None:
    e = _closing_queue({"a": {"en": 5}})
    closed = Treatment(TreatmentKind.VOICEMAIL, message="closed")
    edit = QueueConfig("q", required_skills=(SkillRequirement("en", 9),), on_no_agents=closed)
    out = e.configure_queue(edit, 10)
    assert [d.contact_id for d in only(out, QueueAction)] == ["c1", "c2"]


def test_not_ready_agents_keep_a_queue_staffed() -> None:
    e = _closing_queue({"a": {"en": 5}})
    assert only(e.force_agent("a", ForceAction.REST, "sup", 10, seconds=60), QueueAction) == []
    assert e.queue_stats("q", 10).waiting == 2


def test_overflow_loops_end_in_a_disconnect() -> None:
    to_b = Treatment(TreatmentKind.OVERFLOW, target_queue="b")
    e = RoutingEngine()
    e.configure_queue(QueueConfig("b"), 0)
    e.configure_queue(QueueConfig("a", on_no_agents=to_b), 0)
    to_a = Treatment(TreatmentKind.OVERFLOW, target_queue="a")
    e.configure_queue(QueueConfig("b", on_no_agents=to_a), 0)
    out = e.contact_queued("c", "a", VOICE, 0)
    assert only(out, QueueAction)[-1].kind is TreatmentKind.DISCONNECT
    assert "c" not in set(e.contact_ids())


def test_overflow_target_must_exist() -> None:
    e = RoutingEngine()
    bad = QueueConfig("q", max_wait=5, on_max_wait=Treatment(TreatmentKind.OVERFLOW, "nope"))
    with pytest.raises(InvalidConfig):
        e.configure_queue(bad, 0)


# ------------------------------------------------------------------ callbacks


def test_callback_keeps_the_customers_place() -> None:
    e = engine_with(agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.contact_queued("first", "q", VOICE, 1)
    e.contact_queued("second", "q", VOICE, 2)
    e.callback_requested("first", 3)
    assert e.position("first") == 1
    out = e.agent_state_changed("a", Presence.READY, 4)
    assert [(o.contact_id, o.callback) for o in only(out, Offer)] == [("first", True)]
    assert e.queue_stats("q", 4).callbacks == 1


def test_callback_requested_twice_raises() -> None:
    e = engine_with()
    e.contact_queued("c", "q", VOICE, 0)
    e.callback_requested("c", 1)
    with pytest.raises(IllegalTransition):
        e.callback_requested("c", 2)


def test_callbacks_do_not_count_against_queue_capacity() -> None:
    q = QueueConfig("q", capacity=1)
    e = engine_with([q])
    e.contact_queued("c1", "q", VOICE, 0)
    e.callback_requested("c1", 1)
    assert only(e.contact_queued("c2", "q", VOICE, 2), QueueAction) == []


# ------------------------------------------------------------------ position and wait


def test_position_and_wait_estimate_follow_the_queue() -> None:
    q = QueueConfig("q", default_handle_seconds=120)
    e = engine_with([q], agents={"a": {}, "b": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 0)
    e.agent_state_changed("b", Presence.NOT_READY, 0)
    out = [e.contact_queued(f"c{i}", "q", VOICE, i) for i in range(3)]
    assert [only(o, AnnounceWait)[0].position for o in out] == [1, 2, 3]
    assert e.position("c2") == 3
    assert e.estimated_wait("c2") == 3 * 120 / 2
    e.contact_abandoned("c0", 5)
    assert e.position("c2") == 2


def test_wait_estimate_uses_the_measured_answer_pace() -> None:
    e = engine_with(agents={"a": {}})
    for i in range(6):
        e.contact_queued(f"c{i}", "q", VOICE, i)
    for i in range(5):  # one answer every 10 s
        e.offer_accepted(f"c{i}", "a", 10 * i + 10)
        e.contact_ended(f"c{i}", 10 * i + 10)
    e.contact_queued("late", "q", VOICE, 60)
    assert e.estimated_wait("late") == pytest.approx(2 * 10)


def test_periodic_announcements() -> None:
    e = engine_with([QueueConfig("q", announce_interval=30)])
    e.contact_queued("c", "q", VOICE, 0)
    assert e.tick(30) == [AnnounceWait("c", "q", 1, 180.0)]
    assert e.next_deadline() == 60


def test_position_of_a_connected_contact_raises() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    with pytest.raises(NotQueued):
        e.position("c")


# ------------------------------------------------------------------ statistics


def test_queue_statistics() -> None:
    q = QueueConfig("q", service_level_seconds=20)
    e = engine_with([q], agents={"a": {}, "b": {}})
    e.agent_state_changed("b", Presence.NOT_READY, 0)
    e.contact_queued("fast", "q", VOICE, 0)
    e.offer_accepted("fast", "a", 5)
    e.contact_queued("slow", "q", VOICE, 10)
    e.contact_queued("gone", "q", VOICE, 11)
    e.contact_ended("fast", 50)
    e.offer_accepted("slow", "a", 52)  # waited 42 s
    e.contact_abandoned("gone", 60)
    s = e.queue_stats("q", 60)
    assert (s.entered, s.answered, s.abandoned, s.waiting) == (3, 2, 1, 0)
    assert s.service_level == pytest.approx(1 / 3)
    assert s.average_speed_of_answer == pytest.approx((5 + 42) / 2)
    assert s.abandon_rate == pytest.approx(1 / 3)
    assert s.average_handle_time == pytest.approx(45)
    assert s.agents_by_state[AgentState.BUSY] == 1
    assert s.agents_by_state[AgentState.NOT_READY] == 1


def test_per_state_counts_follow_changes_between_reads() -> None:
    """Queue counts per state move when read; signing out is counted at once (an entering
    contact reads it), also after changes nobody read."""
    q = QueueConfig("q", on_no_agents=Treatment(TreatmentKind.VOICEMAIL), wrap_up_seconds=5)
    e = engine_with([q], agents={"a": {}, "b": {}})
    e.agent_state_changed("b", Presence.NOT_READY, 0)
    e.contact_queued("c1", "q", VOICE, 1)  # a: READY -> RESERVED
    e.offer_accepted("c1", "a", 2)  # BUSY
    by_state = e.queue_stats("q", 2).agents_by_state
    assert (by_state[AgentState.BUSY], by_state[AgentState.NOT_READY]) == (1, 1)
    assert by_state[AgentState.READY] == by_state[AgentState.RESERVED] == 0
    e.contact_ended("c1", 3)  # WRAP_UP, unread
    e.agent_logout("b", 4)
    e.agent_logout("a", 5)  # from WRAP_UP, never read: still counted at once
    assert only(e.contact_queued("c2", "q", VOICE, 6), QueueAction) == [
        QueueAction("c2", "q", TreatmentKind.VOICEMAIL, None)
    ]
    e.agent_login("a", 7, presence=Presence.NOT_READY)
    e.agent_state_changed("a", Presence.READY, 8)
    e.contact_queued("c3", "q", VOICE, 9)  # RESERVED, unread: a snapshot counts it too
    restored = RoutingEngine.restore(e.snapshot())
    for engine in (e, restored):
        by_state = engine.queue_stats("q", 9).agents_by_state
        assert (by_state[AgentState.RESERVED], by_state[AgentState.OFFLINE]) == (1, 1)
        assert sum(by_state.values()) == 2


@pytest.mark.parametrize("seed", range(12))
def test_counts_read_rarely_equal_counts_read_after_every_event(seed: int) -> None:
    """Two engines fed the same random events: one read after every event, one only at the
    end (its per-state counts moved at once then). Same decisions, same statistics."""
    import random

    from cloudcc.routing.exceptions import RoutingError

    rng = random.Random(seed)
    queues = [
        QueueConfig("q1", wrap_up_seconds=3, on_no_agents=Treatment(TreatmentKind.VOICEMAIL)),
        QueueConfig("q2", required_skills=(SkillRequirement("en", 3),), ring_timeout=5),
    ]
    agents = {f"a{i}": {"en": rng.randint(1, 5)} for i in range(6)}
    read_always, read_at_end = (engine_with(queues, agents=agents) for _ in range(2))
    ringing: dict[str, str] = {}
    connected: list[str] = []
    now, n = 0.0, 0
    for _ in range(400):
        now += rng.random() * 2
        roll = rng.random()
        aid = rng.choice(sorted(agents))
        if roll < 0.3:
            n += 1
            call = ("contact_queued", f"c{n}", rng.choice(["q1", "q2"]), VOICE, now)
        elif roll < 0.45 and ringing:
            cid = rng.choice(sorted(ringing))
            call = ("offer_accepted", cid, ringing[cid], now)
        elif roll < 0.6 and connected:
            call = ("contact_ended", connected.pop(rng.randrange(len(connected))), now)
        elif roll < 0.7 and n:
            call = ("contact_abandoned", f"c{rng.randint(1, n)}", now)
        elif roll < 0.8:
            presence = rng.choice([Presence.READY, Presence.NOT_READY, Presence.WORKING])
            call = ("agent_state_changed", aid, presence, now)
        elif roll < 0.87:
            call = ("agent_logout", aid, now)
        elif roll < 0.94:
            call = ("agent_login", aid, now)
        else:
            call = ("tick", now)
        results = []
        for e in (read_always, read_at_end):
            try:
                results.append(getattr(e, call[0])(*call[1:]))
            except RoutingError as err:
                results.append(type(err))
        assert results[0] == results[1], call
        if isinstance(results[0], list):
            for d in results[0]:
                if isinstance(d, Offer):
                    ringing[d.contact_id] = d.agent_ids[0]
                elif isinstance(d, OfferWithdrawn):
                    ringing.pop(d.contact_id, None)
            if call[0] == "offer_accepted":
                del ringing[call[1]]
                connected.append(call[1])
            elif call[0] == "contact_abandoned":
                ringing.pop(call[1], None)
        for q in ("q1", "q2"):
            read_always.queue_stats(q, now)
    for q in ("q1", "q2"):
        assert read_always.queue_stats(q, now) == read_at_end.queue_stats(q, now)
    counts = read_at_end.queue_stats("q1", now).agents_by_state
    assert sum(counts.values()) == len(agents)  # every member in exactly one state


def test_longest_wait_tracks_the_oldest_waiting_contact() -> None:
    e = engine_with()
    e.contact_queued("c1", "q", VOICE, 10)
    e.contact_queued("c2", "q", VOICE, 20)
    assert e.queue_stats("q", 30).longest_wait == 20
    e.contact_abandoned("c1", 31)
    assert e.queue_stats("q", 31).longest_wait == 11


def test_wallboard_gathers_queues_and_agents() -> None:
    e = engine_with([QueueConfig("q1"), QueueConfig("q2")], agents={"a": {}})
    e.contact_queued("c", "q2", VOICE, 0)
    e.contact_queued("d", "q2", VOICE, 0)
    board = e.wallboard(5)
    assert board.contacts_waiting == 2
    assert board.agents_by_state[AgentState.RESERVED] == 1
    assert set(board.queues) == {"q1", "q2"}


# ------------------------------------------------------------------ configuration


def test_invalid_configs_raise_invalid_config() -> None:
    with pytest.raises(InvalidConfig):
        SkillRequirement("en", 11)
    with pytest.raises(InvalidConfig):
        AgentConfig("a", skills={"en": 0})
    with pytest.raises(InvalidConfig):
        AgentConfig("a", capacity={Channel.VOICE: 2})
    with pytest.raises(InvalidConfig):
        QueueConfig("q", ring_timeout=0)
    with pytest.raises(InvalidConfig):
        Treatment(TreatmentKind.OVERFLOW)


def test_queue_edited_at_run_time_re_sorts_its_waiting_contacts() -> None:
    q = QueueConfig("q", required_skills=(SkillRequirement("en", 9),))
    e = engine_with([q], agents={"a": {"en": 5}})
    e.contact_queued("c", "q", VOICE, 0)
    out = e.configure_queue(QueueConfig("q", required_skills=(SkillRequirement("en", 5),)), 1)
    assert offers(out) == [("c", ("a",))]


def test_removing_a_queue_in_use_raises() -> None:
    e = engine_with()
    e.contact_queued("c", "q", VOICE, 0)
    with pytest.raises(QueueInUse):
        e.remove_queue("q", 1)
    e.contact_abandoned("c", 2)
    e.remove_queue("q", 3)
    assert list(e.queue_ids()) == []


def test_removing_an_overflow_target_raises() -> None:
    e = RoutingEngine()
    e.configure_queue(QueueConfig("b"), 0)
    e.configure_queue(
        QueueConfig("a", on_no_agents=Treatment(TreatmentKind.OVERFLOW, target_queue="b")), 0
    )
    with pytest.raises(QueueInUse):
        e.remove_queue("b", 1)


# ------------------------------------------------------------------ replay


def test_replaying_the_recorded_inputs_rebuilds_the_same_state() -> None:
    events = [
        QueueConfigured(QueueConfig("q", wrap_up_seconds=10), 0),
        AgentConfigured(AgentConfig("a"), 0),
        AgentConfigured(AgentConfig("b"), 0),
        AgentLoggedIn("a", 1),
        ContactQueued("c1", "q", VOICE, 2),
        ContactQueued("c2", "q", VOICE, 3),
        OfferAccepted("c1", "a", 4),
        AgentLoggedIn("b", 5),
        Tick(30),
    ]
    live = RoutingEngine()
    for ev in events:
        live.handle(ev)
    standby = RoutingEngine.replay(events)
    assert standby.wallboard(30) == live.wallboard(30)
    for aid in ("a", "b"):
        assert standby.agent_stats(aid, 30) == live.agent_stats(aid, 30)
    assert standby.contact_info("c2") == live.contact_info("c2")
    assert standby.next_deadline() == live.next_deadline()


def test_callback_requested_while_ringing_stops_the_ring_and_keeps_the_place() -> None:
    e = engine_with(agents={"a": {}, "b": {}})
    e.agent_state_changed("b", Presence.NOT_READY, 0)
    e.contact_queued("c1", "q", VOICE, 1)  # rings at a
    e.contact_queued("c2", "q", VOICE, 2)
    out = e.callback_requested("c1", 3)
    assert only(out, OfferWithdrawn) == [OfferWithdrawn("c1", "a", WithdrawReason.CALLBACK)]
    assert [(o.contact_id, o.agent_ids, o.callback) for o in only(out, Offer)] == [
        ("c1", ("a",), True)
    ]


def test_changing_the_ageing_step_at_run_time_re_sorts_positions() -> None:
    e = engine_with([QueueConfig("q", priority_step_seconds=10)])
    e.contact_queued("old-low", "q", VOICE, 0, priority=0)
    e.contact_queued("new-high", "q", VOICE, 30, priority=1)  # worth 10 s: behind
    assert e.position("new-high") == 2
    e.configure_queue(QueueConfig("q", priority_step_seconds=1000), 31)
    assert e.position("new-high") == 1


def test_deleting_an_agent_on_a_call_releases_the_call() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    out = e.remove_agent("a", 2)
    assert ContactReleased("c", "a") in out
    assert list(e.contact_ids()) == []
    assert e.queue_stats("q", 2).agents_by_state[AgentState.OFFLINE] == 0


def test_agent_statistics_count_offers_answers_and_time_in_state() -> None:
    e = engine_with([QueueConfig("q", ring_timeout=10)], agents={"a": {}})
    e.contact_queued("c1", "q", VOICE, 0)
    e.tick(10)  # RONA
    e.agent_state_changed("a", Presence.READY, 20)  # takes c1 again
    e.offer_accepted("c1", "a", 21)
    e.contact_ended("c1", 81)
    s = e.agent_stats("a", 100)
    assert (s.offered, s.answered, s.ring_timeouts, s.handled) == (2, 1, 1, 1)
    assert s.time_in_state[AgentState.BUSY] == 60
    assert s.time_in_state[AgentState.NOT_READY] == 10
    assert s.time_in_state[AgentState.READY] == 19
    assert s.cti_code == 1


def test_snapshot_restores_an_engine_that_goes_on_identically() -> None:
    e = engine_with([QueueConfig("q", ring_timeout=10, wrap_up_seconds=5)], agents={"a": {}})
    e.contact_queued("c1", "q", VOICE, 0)
    e.contact_queued("c2", "q", VOICE, 1)
    standby = RoutingEngine.restore(e.snapshot())
    assert standby.wallboard(2) == e.wallboard(2)
    assert standby.offer_accepted("c1", "a", 3) == e.offer_accepted("c1", "a", 3)
    assert standby.contact_ended("c1", 4) == e.contact_ended("c1", 4)
    offered = standby.tick(9)  # wrap-up ends, c2 offered
    assert offered == e.tick(9)
    assert offers(offered) == [("c2", ("a",))]
    with pytest.raises(InvalidConfig):
        RoutingEngine.restore(pickle.dumps("not an engine"))
