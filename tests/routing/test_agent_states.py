"""Agent states: presence, reason codes, wrap-up, forced states, CTI codes, sign-out."""

from __future__ import annotations

import pytest

from cloudcc.routing import (
    AgentConfig,
    AgentState,
    AgentStateChanged,
    Channel,
    ContactReleased,
    ForceAction,
    NotReadyOverrun,
    OfferWithdrawn,
    Presence,
    QueueConfig,
    ReasonCode,
    SignOutReason,
)
from cloudcc.routing.exceptions import (
    AgentAtCapacity,
    AgentHasWork,
    ClockWentBackwards,
    IllegalTransition,
    UnknownAgent,
    UnknownReasonCode,
)
from cloudcc.routing.model import PRESENCE_TRANSITIONS, WORK_TRANSITIONS, WorkPhase

from .helpers import VOICE, engine_with, offers, only, states


def test_agent_starts_offline_and_signs_in_ready() -> None:
    e = engine_with(agents={"a": {}}, login=False)
    assert e.agent_stats("a", 0).state is AgentState.OFFLINE
    out = e.agent_login("a", 5)
    assert states(out) == [("a", AgentState.READY, None)]
    assert only(out, AgentStateChanged)[0].at == 5
    assert only(out, AgentStateChanged)[0].cti_code == 1


def test_agent_can_sign_in_not_ready_with_a_reason() -> None:
    e = engine_with(agents={"a": {}}, login=False)
    out = e.agent_login("a", 1, presence=Presence.NOT_READY, reason="training")
    assert states(out) == [("a", AgentState.NOT_READY, "training")]
    assert only(out, AgentStateChanged)[0].cti_code == 9


def test_signing_in_twice_is_an_illegal_transition() -> None:
    e = engine_with(agents={"a": {}})
    with pytest.raises(IllegalTransition):
        e.agent_login("a", 1)


def test_ready_to_ready_is_not_in_the_table_and_raises() -> None:
    assert Presence.READY not in PRESENCE_TRANSITIONS[Presence.READY]
    e = engine_with(agents={"a": {}})
    with pytest.raises(IllegalTransition):
        e.agent_state_changed("a", Presence.READY, 1)


def test_offline_agent_cannot_go_ready_without_signing_in() -> None:
    e = engine_with(agents={"a": {}}, login=False)
    with pytest.raises(IllegalTransition):
        e.agent_state_changed("a", Presence.READY, 1)


def test_unknown_agent_raises_unknown_agent() -> None:
    e = engine_with()
    with pytest.raises(UnknownAgent):
        e.agent_login("ghost", 0)


def test_not_ready_with_unknown_reason_code_raises() -> None:
    e = engine_with(agents={"a": {}})
    with pytest.raises(UnknownReasonCode):
        e.agent_state_changed("a", Presence.NOT_READY, 1, reason="karaoke")


def test_tenant_reason_code_can_be_configured_and_used() -> None:
    e = engine_with(agents={"a": {}})
    e.configure_reason_code(ReasonCode("lunch", "Lunch break", cti_code=8), 1)
    out = e.agent_state_changed("a", Presence.NOT_READY, 2, reason="lunch")
    assert states(out) == [("a", AgentState.NOT_READY, "lunch")]
    assert only(out, AgentStateChanged)[0].cti_code == 8


def test_changing_the_not_ready_reason_is_recorded() -> None:
    e = engine_with(agents={"a": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 1, reason="busy")
    out = e.agent_state_changed("a", Presence.NOT_READY, 2, reason="training")
    assert states(out) == [("a", AgentState.NOT_READY, "training")]


def test_every_transition_is_timestamped_in_the_history() -> None:
    e = engine_with(agents={"a": {}}, login=False)
    e.agent_login("a", 1)
    e.agent_state_changed("a", Presence.NOT_READY, 3, reason="rest")
    e.agent_state_changed("a", Presence.WORKING, 7)
    e.agent_logout("a", 9)
    assert e.agent_history("a") == [
        (1, AgentState.READY, None),
        (3, AgentState.NOT_READY, "rest"),
        (7, AgentState.WORKING, None),
        (9, AgentState.OFFLINE, "self"),
    ]
    spent = e.agent_stats("a", 10).time_in_state
    assert spent[AgentState.READY] == 2
    assert spent[AgentState.NOT_READY] == 4
    assert spent[AgentState.WORKING] == 2


def test_the_history_keeps_the_last_changes() -> None:
    from cloudcc.routing.records import HISTORY_LENGTH

    e = engine_with(agents={"a": {}})
    presences = [Presence.NOT_READY, Presence.READY] * (2 * HISTORY_LENGTH)
    for t, presence in enumerate(presences, start=1):
        e.agent_state_changed("a", presence, t)
        history = e.agent_history("a")
        assert len(history) == min(t + 1, HISTORY_LENGTH)  # + the sign-in at 0
        assert history[-1][:2] == (t, AgentState(presence.value))


def test_offered_agent_is_reserved_then_busy_then_wraps_up_then_ready() -> None:
    e = engine_with([QueueConfig("q", wrap_up_seconds=30)], agents={"a": {}})
    out = e.contact_queued("c", "q", VOICE, 10)
    assert offers(out) == [("c", ("a",))]
    assert states(out) == [("a", AgentState.RESERVED, None)]
    assert states(e.offer_accepted("c", "a", 12)) == [("a", AgentState.BUSY, None)]
    out = e.contact_ended("c", 100)
    assert states(out) == [("a", AgentState.WRAP_UP, None)]
    assert only(out, AgentStateChanged)[0].cti_code == 10
    assert e.next_deadline() == 130
    assert states(e.tick(130)) == [("a", AgentState.READY, None)]


def test_agent_can_finish_wrap_up_early() -> None:
    e = engine_with([QueueConfig("q", wrap_up_seconds=30)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    e.contact_ended("c", 5)
    assert states(e.wrapup_done("a", "c", 8)) == [("a", AgentState.READY, None)]
    assert e.tick(100) == []  # the wrap-up timer is dead


def test_wrap_up_without_limit_lasts_until_the_agent_says_done() -> None:
    e = engine_with([QueueConfig("q", wrap_up_seconds=None)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    e.contact_ended("c", 5)
    assert e.next_deadline() is None or e.tick(10_000) == []
    assert e.agent_stats("a", 10_000).state is AgentState.WRAP_UP
    e.wrapup_done("a", "c", 10_001)
    assert e.agent_stats("a", 10_001).state is AgentState.READY


def test_agent_wrap_up_limit_overrides_the_queue() -> None:
    e = engine_with(
        [QueueConfig("q", wrap_up_seconds=60)],
        agents=[AgentConfig("a", wrap_up_seconds=5)],
    )
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 0)
    e.contact_ended("c", 10)
    assert e.next_deadline() == 15


def test_wrap_up_done_when_not_in_wrap_up_raises() -> None:
    e = engine_with([QueueConfig("q", wrap_up_seconds=30)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    with pytest.raises(IllegalTransition):
        e.wrapup_done("a", "c", 2)
    assert WorkPhase.DONE in WORK_TRANSITIONS[WorkPhase.WRAP_UP]


def test_not_ready_chosen_while_busy_shows_after_the_contact() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    out = e.agent_state_changed("a", Presence.NOT_READY, 2, reason="rest")
    assert states(out) == []  # still busy: the change is pending
    assert e.agent_stats("a", 2).state is AgentState.BUSY
    out = e.contact_ended("c", 3)
    assert states(out) == [("a", AgentState.NOT_READY, "rest")]
    assert offers(e.contact_queued("c2", "q", VOICE, 4)) == []
    assert e.agent_work("a") == {}


def test_not_ready_agent_gets_no_offers_and_working_agent_neither() -> None:
    e = engine_with(agents={"a": {}, "b": {}})
    e.agent_state_changed("a", Presence.NOT_READY, 1, reason="busy")
    e.agent_state_changed("b", Presence.WORKING, 1)
    out = e.contact_queued("c", "q", VOICE, 2)
    assert offers(out) == []
    assert e.agent_stats("b", 2).cti_code == 6
    out = e.agent_state_changed("b", Presence.READY, 3)
    assert offers(out) == [("c", ("b",))]


def test_rest_with_a_duration_returns_the_agent_to_ready() -> None:
    e = engine_with(agents={"a": {}})
    e.configure_reason_code(ReasonCode("break", max_seconds=600, auto_ready=True, cti_code=8), 0)
    e.agent_state_changed("a", Presence.NOT_READY, 100, reason="break")
    assert e.next_deadline() == 700
    assert states(e.tick(700)) == [("a", AgentState.READY, None)]


def test_overrunning_a_time_limited_reason_is_reported_without_auto_ready() -> None:
    e = engine_with(agents={"a": {}})
    e.configure_reason_code(ReasonCode("lunch", max_seconds=1800), 0)
    e.agent_state_changed("a", Presence.NOT_READY, 0, reason="lunch")
    out = e.tick(1800)
    assert out == [NotReadyOverrun("a", "lunch", 0, 1800)]
    assert e.agent_stats("a", 1800).state is AgentState.NOT_READY


def test_supervisor_forces_busy_idle_rest_and_sign_out() -> None:
    e = engine_with(agents={"a": {}})
    out = e.force_agent("a", ForceAction.BUSY, "sup", 1)
    assert states(out) == [("a", AgentState.NOT_READY, "forced")]
    assert only(out, AgentStateChanged)[0].by == "sup"
    assert states(e.force_agent("a", ForceAction.IDLE, "sup", 2)) == [("a", AgentState.READY, None)]
    out = e.force_agent("a", ForceAction.REST, "sup", 3, seconds=60)
    assert states(out) == [("a", AgentState.NOT_READY, "rest")]
    assert only(out, AgentStateChanged)[0].cti_code == 8
    assert states(e.tick(63)) == [("a", AgentState.READY, None)]
    out = e.force_agent("a", ForceAction.SIGN_OUT, "sup", 70)
    assert states(out) == [("a", AgentState.OFFLINE, "forced")]


def test_forcing_a_signed_out_agent_busy_raises() -> None:
    e = engine_with(agents={"a": {}}, login=False)
    with pytest.raises(IllegalTransition):
        e.force_agent("a", ForceAction.BUSY, "sup", 1)
    with pytest.raises(IllegalTransition):
        e.force_agent("a", ForceAction.SIGN_OUT, "sup", 1)


def test_signing_out_while_holding_a_contact_raises() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    with pytest.raises(AgentHasWork) as err:
        e.agent_logout("a", 1)
    assert err.value.contact_ids == ("c",)


def test_forced_sign_out_requeues_the_ringing_contact_to_another_agent() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.configure_agent(AgentConfig("b"), 1)
    e.agent_login("b", 1, presence=Presence.NOT_READY)
    e.agent_state_changed("b", Presence.READY, 1)  # busy elsewhere -> nothing to take
    out = e.agent_logout("a", 2, SignOutReason.DISCONNECTED)
    assert only(out, OfferWithdrawn)[0].agent_id == "a"
    assert offers(out) == [("c", ("b",))]
    assert ("a", AgentState.OFFLINE, "disconnected") in states(out)


def test_forced_sign_out_releases_connected_contacts() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    out = e.agent_logout("a", 2, SignOutReason.REPLACED)
    assert ContactReleased("c", "a") in out
    assert e.agent_work("a") == {}


def test_direct_call_makes_the_agent_busy_and_not_offered_queue_contacts() -> None:
    e = engine_with(agents={"a": {}})
    out = e.direct_contact_started("a", "internal-1", VOICE, 1)
    assert states(out) == [("a", AgentState.BUSY, None)]
    assert offers(e.contact_queued("c", "q", VOICE, 2)) == []
    out = e.contact_ended("internal-1", 3)
    assert offers(out) == [("c", ("a",))]


def test_direct_call_beyond_capacity_raises() -> None:
    e = engine_with(agents={"a": {}})
    e.direct_contact_started("a", "x1", VOICE, 1)
    with pytest.raises(AgentAtCapacity):
        e.direct_contact_started("a", "x2", VOICE, 1)


def test_working_agent_still_receives_direct_calls() -> None:
    e = engine_with(agents={"a": {}})
    e.agent_state_changed("a", Presence.WORKING, 1)
    out = e.direct_contact_started("a", "internal-1", VOICE, 2)
    assert states(out) == [("a", AgentState.BUSY, None)]
    out = e.contact_ended("internal-1", 3)
    assert states(out) == [("a", AgentState.WORKING, None)]


def test_outbound_reservation_pre_occupies_the_agent() -> None:
    e = engine_with(agents={"a": {}})
    out = e.outbound_reserved("a", "dial-1", 1)
    assert states(out) == [("a", AgentState.PRE_OCCUPIED, None)]
    assert only(out, AgentStateChanged)[0].cti_code == 2
    assert offers(e.contact_queued("c", "q", VOICE, 2)) == []
    assert states(e.outbound_connected("dial-1", 3)) == [("a", AgentState.BUSY, None)]
    out = e.contact_ended("dial-1", 9)
    assert offers(out) == [("c", ("a",))]


def test_failed_outbound_dial_frees_the_agent() -> None:
    e = engine_with(agents={"a": {}})
    e.outbound_reserved("a", "dial-1", 1)
    out = e.contact_ended("dial-1", 2)
    assert states(out)[0] == ("a", AgentState.READY, None)


def test_time_going_backwards_raises() -> None:
    e = engine_with(agents={"a": {}})
    e.tick(10)
    with pytest.raises(ClockWentBackwards):
        e.tick(9)


def test_decisions_of_due_timers_survive_a_refused_event() -> None:
    e = engine_with([QueueConfig("q", wrap_up_seconds=5)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 0)
    e.contact_ended("c", 1)
    with pytest.raises(UnknownAgent):
        e.agent_login("ghost", 10)  # the wrap-up timer ran before the refusal
    assert states(e.tick(10)) == [("a", AgentState.READY, None)]


def test_chat_agent_is_busy_and_still_offered_more_chats() -> None:
    e = engine_with(agents=[AgentConfig("a", capacity={Channel.CHAT: 2})])
    e.contact_queued("c1", "q", Channel.CHAT, 0)
    e.offer_accepted("c1", "a", 1)
    out = e.contact_queued("c2", "q", Channel.CHAT, 2)
    assert offers(out) == [("c2", ("a",))]


def test_ringing_phone_shows_alerting_cti_4_and_can_be_answered() -> None:
    e = engine_with(agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    out = e.offer_alerting("c", "a", 0.2)
    assert states(out) == [("a", AgentState.ALERTING, None)]
    assert only(out, AgentStateChanged)[0].cti_code == 4
    with pytest.raises(IllegalTransition):
        e.offer_alerting("c", "a", 0.3)
    assert states(e.offer_accepted("c", "a", 1)) == [("a", AgentState.BUSY, None)]


def test_alerting_offer_times_out_like_any_offer() -> None:
    e = engine_with([QueueConfig("q", ring_timeout=10)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_alerting("c", "a", 1)
    assert states(e.tick(10)) == [("a", AgentState.NOT_READY, "rona")]


def test_signing_out_during_wrap_up_ends_the_wrap_up() -> None:
    e = engine_with([QueueConfig("q", wrap_up_seconds=60)], agents={"a": {}})
    e.contact_queued("c", "q", VOICE, 0)
    e.offer_accepted("c", "a", 1)
    e.contact_ended("c", 2)
    out = e.agent_logout("a", 3)
    assert states(out) == [("a", AgentState.OFFLINE, "self")]
    assert only(out, ContactReleased) == []
    assert e.agent_work("a") == {}
    assert e.next_deadline() is None
