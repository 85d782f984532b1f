"""Every node type driven through FlowSession without audio, sockets or clocks."""

from __future__ import annotations

from typing import Any

import pytest

from cloudcc.ivr import (
    CallbackResult,
    CallerHungUp,
    CallWebhook,
    Collect,
    CollectMode,
    DigitPressed,
    DigitsCollected,
    FlowEventKind,
    FlowLoaded,
    FlowLoadFailed,
    Hangup,
    LoadFlow,
    NoInput,
    OfferCallback,
    Play,
    PlaybackDone,
    RouteToQueue,
    SessionState,
    SpeechRecognized,
    StartVoicemail,
    StopPlayback,
    Timeout,
    TransferExternal,
    TransferToAgent,
    WebhookOutcome,
    WebhookResult,
)
from cloudcc.ivr.exceptions import SessionStateError

from .helpers import MONDAY_10_UTC as T0
from .helpers import actions, context, events, flow, hangup, of, only, start

PROMPT = {"text": "Enter your account number, then the hash key."}


def digits_flow(**node: Any) -> Any:
    base = {
        "id": "acct",
        "type": "get_digits",
        "prompt": PROMPT,
        "no_input_prompt": {"text": "I did not hear anything."},
        "invalid_prompt": {"text": "That is not a valid number."},
        "min_digits": 4,
        "max_digits": 6,
        "variable": "account",
        "outputs": {"success": "ok", "no_input": "silent", "invalid": "wrong"},
    }
    base.update(node)
    return flow(
        [
            base,
            hangup("ok", reason="ok"),
            hangup("silent", reason="silent"),
            hangup("wrong", reason="wrong"),
        ]
    )


def menu_flow(**node: Any) -> Any:
    base = {
        "id": "menu",
        "type": "menu",
        "prompt": {"text": "Press 1 or say sales, 2 or say support."},
        "reprompt": {"text": "Press 1 for sales or 2 for support."},
        "invalid_prompt": {"text": "Sorry."},
        "options": [
            {"key": "1", "keywords": ["sales"], "next": "sales"},
            {"key": "2", "keywords": ["support", "help desk"], "next": "support"},
        ],
        "variable": "choice",
        "outputs": {"no_input": "silent", "invalid": "wrong"},
    }
    base.update(node)
    return flow(
        [
            base,
            {"id": "sales", "type": "transfer_queue", "queue": "sales"},
            {"id": "support", "type": "transfer_queue", "queue": "support"},
            hangup("silent", reason="silent"),
            hangup("wrong", reason="wrong"),
        ]
    )


def reason(session: Any) -> str | None:
    return session.end_reason  # type: ignore[no-any-return]


# --- play and hang up -------------------------------------------------------------------


def test_play_waits_for_playback_then_hangs_up() -> None:
    f = flow(
        [
            {
                "id": "hi",
                "type": "play",
                "prompt": {"text": "Hello {contact.caller}"},
                "outputs": {"next": "end"},
            },
            hangup(),
        ]
    )
    session, out = start(f)
    play = only(out, Play)
    assert play.text == "Hello +15550100" and not play.barge_in
    assert session.state is SessionState.PLAYING and session.next_deadline is None
    assert session.on_input(PlaybackDone(play.play_id + 7), T0 + 1) == []  # someone else's prompt
    out = session.on_input(PlaybackDone(play.play_id), T0 + 2)
    assert only(out, Hangup).reason == "normal"
    assert session.ended and [e.node_id for e in events(out, FlowEventKind.NODE_LEFT)] == ["hi"]
    assert session.on_input(PlaybackDone(play.play_id), T0 + 3) == []


def test_audio_file_prompt_plays_the_file() -> None:
    f = flow(
        [
            {
                "id": "hi",
                "type": "play",
                "prompt": {"audio": "welcome-2024"},
                "outputs": {"next": "end"},
            },
            hangup(),
        ]
    )
    _, out = start(f)
    assert only(out, Play).audio == "welcome-2024"


def test_hangup_with_prompt_hangs_up_after_it_played() -> None:
    f = flow([hangup("end", prompt={"text": "Goodbye"}, reason="done")])
    session, out = start(f)
    assert of(out, Hangup) == []
    out = session.on_input(PlaybackDone(only(out, Play).play_id), T0 + 1)
    assert only(out, Hangup).reason == "done"
    assert events(out, FlowEventKind.FLOW_ENDED)[0].detail["reason"] == "done"


# --- get digits -------------------------------------------------------------------------


def test_digits_with_terminator_are_stored_and_take_success() -> None:
    session, out = start(digits_flow())
    play, collect = only(out, Play), only(out, Collect)
    assert collect.mode is CollectMode.DIGITS and collect.terminator == "#"
    assert collect.digits_grammar and play.barge_in
    out = session.on_input(DigitPressed("1"), T0 + 1)
    assert only(out, StopPlayback).play_id == play.play_id  # barge-in
    assert session.next_deadline == T0 + 1 + 3.0  # inter-digit timeout
    for d in "234":
        session.on_input(DigitPressed(d), T0 + 2)
    out = session.on_input(DigitPressed("#"), T0 + 3)
    assert reason(session) == "ok" and session.variables["account"] == "1234"
    collected = events(out, FlowEventKind.INPUT_COLLECTED)[0]
    assert collected.detail == {"mode": "dtmf", "value": "1234", "confidence": 1.0, "attempt": 0}


def test_digits_complete_at_max_digits_without_terminator() -> None:
    session, _ = start(digits_flow())
    for d in "123456":
        session.on_input(DigitPressed(d), T0 + 1)
    assert session.variables["account"] == "123456" and reason(session) == "ok"


def test_inter_digit_timeout_completes_the_entry() -> None:
    session, _ = start(digits_flow())
    for d in "98765":
        session.on_input(DigitPressed(d), T0 + 1)
    assert session.on_input(Timeout(), T0 + 2) == []  # early timer: ignored
    deadline = session.next_deadline
    assert deadline is not None
    session.on_input(Timeout(), deadline)
    assert session.variables["account"] == "98765" and reason(session) == "ok"


def test_first_digit_timeout_starts_when_prompt_ends_and_retries() -> None:
    session, out = start(digits_flow(retries=1, timeout=4))
    assert session.next_deadline is None  # prompt still playing
    session.on_input(PlaybackDone(only(out, Play).play_id), T0 + 5)
    assert session.next_deadline == T0 + 9
    out = session.on_input(Timeout(), T0 + 9)
    plays = of(out, Play)
    assert [p.text for p in plays] == ["I did not hear anything.", PROMPT["text"]]
    assert only(out, Collect).attempt == 1
    assert events(out, FlowEventKind.INPUT_FAILED)[0].detail == {"reason": "no_input", "attempt": 0}
    session.on_input(PlaybackDone(plays[-1].play_id), T0 + 12)
    session.on_input(Timeout(), T0 + 16)
    assert reason(session) == "silent"


def test_too_few_digits_take_invalid_after_retries() -> None:
    session, _out = start(digits_flow(retries=0))
    session.on_input(DigitsCollected("12"), T0 + 1)
    assert reason(session) == "wrong"


def test_spoken_digit_string_is_accepted() -> None:
    session, _ = start(digits_flow())
    session.on_input(SpeechRecognized("one two three four", 0.8), T0 + 1)
    assert session.variables["account"] == "1234"


def test_unrecognisable_speech_is_invalid_and_reprompts() -> None:
    session, _ = start(digits_flow())
    out = session.on_input(SpeechRecognized("banana", 0.9), T0 + 1)
    assert next(p.text for p in of(out, Play)) == "That is not a valid number."
    assert session.state is SessionState.COLLECTING


# --- menu -------------------------------------------------------------------------------


def test_menu_key_routes_and_stores_choice() -> None:
    session, out = start(menu_flow())
    collect = only(out, Collect)
    assert collect.dtmf_keys == ("1", "2") and collect.grammar == ("sales", "support", "help desk")
    out = session.on_input(DigitPressed("2"), T0 + 1)
    queue = only(out, RouteToQueue)
    assert queue.queue == "support" and session.variables["choice"] == "support"
    left = events(out, FlowEventKind.NODE_LEFT)[0]
    assert left.node_id == "menu" and left.detail == {"output": "option:2"}


def test_menu_keyword_by_speech_routes() -> None:
    session, out = start(menu_flow())
    out = session.on_input(SpeechRecognized("help desk", 0.7), T0 + 1)
    assert only(out, RouteToQueue).queue == "support"
    assert session.variables["choice"] == "support"


def test_low_confidence_speech_counts_as_invalid() -> None:
    session, _ = start(menu_flow(min_confidence=0.5))
    out = session.on_input(SpeechRecognized("sales", 0.2), T0 + 1)
    assert events(out, FlowEventKind.INPUT_FAILED)[0].detail["reason"] == "invalid"
    assert [p.text for p in of(out, Play)] == ["Sorry.", "Press 1 for sales or 2 for support."]


def test_invalid_key_exhausts_retries_then_takes_invalid() -> None:
    session, _ = start(menu_flow(retries=2))
    for _ in range(3):
        session.on_input(DigitPressed("9"), T0 + 1)
    assert reason(session) == "wrong"


def test_no_input_from_recogniser_takes_no_input() -> None:
    session, _ = start(menu_flow(retries=0))
    session.on_input(NoInput(), T0 + 1)
    assert reason(session) == "silent"


def test_without_barge_in_keys_during_prompt_are_ignored() -> None:
    session, out = start(menu_flow(barge_in=False))
    assert session.on_input(DigitPressed("1"), T0 + 1) == []
    session.on_input(PlaybackDone(only(out, Play).play_id), T0 + 2)
    out = session.on_input(DigitPressed("1"), T0 + 3)
    assert only(out, RouteToQueue).queue == "sales"


def test_speech_ignored_when_node_disables_speech() -> None:
    session, out = start(menu_flow(speech=False))
    assert only(out, Collect).grammar == ()
    assert session.on_input(SpeechRecognized("sales"), T0 + 1) == []


# --- variables, branches, hours ---------------------------------------------------------


def branch_flow() -> Any:
    return flow(
        [
            {
                "id": "set",
                "type": "set_variable",
                "assignments": [
                    {"variable": "score", "value": "len(contact.caller) * 3"},
                    {"variable": "tier", "value": "score > 20 and 'gold' or 'basic'"},
                ],
                "outputs": {"next": "which"},
            },
            {
                "id": "which",
                "type": "branch",
                "conditions": [
                    {"when": "score < 10", "next": "low"},
                    {"when": "score >= 20", "next": "high"},
                ],
                "outputs": {"default": "mid"},
            },
            hangup("low", reason="low"),
            hangup("mid", reason="mid"),
            hangup("high", reason="high"),
        ]
    )


def test_set_variable_and_branch_take_first_true_condition() -> None:
    session, out = start(branch_flow())
    assert session.variables["score"] == 27 and reason(session) == "high"
    assert session.variables["tier"] is True  # and/or give booleans, not operands
    assert [e.detail["variable"] for e in events(out, FlowEventKind.VARIABLE_SET)] == [
        "score",
        "tier",
    ]


def test_branch_default_when_no_condition_holds() -> None:
    session, _ = start(branch_flow(), ctx=context(caller="12345"))
    assert reason(session) == "mid"


def hours_flow(**schedule: Any) -> Any:
    sched = {
        "weekly": {"mon": ["09:00-17:00"]},
        "holidays": [{"date": "2026-11-30", "name": "Test"}],
    }
    sched.update(schedule)
    return flow(
        [
            {
                "id": "hours",
                "type": "check_hours",
                "schedule": "main",
                "outputs": {"open": "open", "closed": "closed"},
            },
            hangup("open", reason="open"),
            hangup("closed", reason="closed"),
        ],
        schedules={"main": sched},
    )


def test_check_hours_holiday_falls_back_to_closed_output() -> None:
    session, out = start(hours_flow())
    assert reason(session) == "closed"
    assert events(out, FlowEventKind.NODE_LEFT)[0].detail == {"output": "holiday"}


def test_check_hours_uses_tenant_time_zone() -> None:
    f = hours_flow(holidays=[])
    # Monday 10:00 UTC is 11:00 in Paris (open) but 18:00 in Shanghai (closed)
    paris, _ = start(f, ctx=context(timezone="Europe/Paris"))
    shanghai, _ = start(f, ctx=context(timezone="Asia/Shanghai"))
    assert (reason(paris), reason(shanghai)) == ("open", "closed")


# --- routing attributes and transfers ---------------------------------------------------


def test_language_skills_priority_reach_the_queue_and_prompts() -> None:
    f = flow(
        [
            {
                "id": "lang",
                "type": "set_language",
                "language": "zh-CN",
                "outputs": {"next": "skills"},
            },
            {
                "id": "skills",
                "type": "set_skills",
                "skills": ["billing", "mandarin"],
                "outputs": {"next": "more"},
            },
            {
                "id": "more",
                "type": "set_skills",
                "skills": ["vip"],
                "mode": "add",
                "outputs": {"next": "less"},
            },
            {
                "id": "less",
                "type": "set_skills",
                "skills": ["billing"],
                "mode": "remove",
                "outputs": {"next": "prio"},
            },
            {
                "id": "prio",
                "type": "set_priority",
                "priority": "len(routing.skills) * 40",
                "outputs": {"next": "say"},
            },
            {
                "id": "say",
                "type": "play",
                "prompt": {"text": {"en": "Hello", "zh": "ni3 hao3"}},
                "outputs": {"next": "queue"},
            },
            {
                "id": "queue",
                "type": "transfer_queue",
                "queue": "vip",
                "music": "jazz",
                "wait_announcement": "You are number {position}",
            },
        ]
    )
    session, out = start(f)
    play = only(out, Play)
    assert (play.text, play.language) == ("ni3 hao3", "zh-CN")
    out = session.on_input(PlaybackDone(play.play_id), T0 + 1)
    queue = only(out, RouteToQueue)
    assert queue == RouteToQueue(
        queue="vip",
        skills=("mandarin", "vip"),
        priority=80,
        language="zh-CN",
        music="jazz",
        wait_announcement="You are number {position}",
        announce_every=30.0,
    )


def test_transfer_to_agent_and_external_number() -> None:
    agent = flow([{"id": "a", "type": "transfer_agent", "agent": "'agent-' + contact.vip_agent"}])
    _session, out = start(agent, ctx=context(attributes={"vip_agent": "7"}))
    assert only(out, TransferToAgent).agent == "agent-7"
    external = flow(
        [
            {
                "id": "x",
                "type": "transfer_external",
                "number": "+86{contact.branch}",
                "caller_id": "+8610100",
            }
        ]
    )
    _, out = start(external, ctx=context(attributes={"branch": "1088"}))
    assert only(out, TransferExternal) == TransferExternal("+861088", "+8610100")


def test_voicemail_prompt_then_recording() -> None:
    f = flow(
        [
            {
                "id": "vm",
                "type": "voicemail",
                "mailbox": "sales",
                "prompt": {"text": "After the tone"},
                "max_seconds": 60,
            }
        ]
    )
    session, out = start(f)
    out = session.on_input(PlaybackDone(only(out, Play).play_id), T0 + 3)
    assert only(out, StartVoicemail) == StartVoicemail("sales", 60, "en-US")
    assert reason(session) == "voicemail:sales"


# --- webhook ----------------------------------------------------------------------------


def webhook_flow() -> Any:
    return flow(
        [
            {
                "id": "lookup",
                "type": "webhook",
                "url": "https://crm.example/lookup",
                "parameters": {"caller": "contact.caller", "n": "1 + 1"},
                "secret": "crm",
                "timeout": 2,
                "result_variable": "crm",
                "outputs": {"success": "vip", "error": "err"},
            },
            {
                "id": "vip",
                "type": "branch",
                "conditions": [{"when": "crm.tier == 'gold'", "next": "gold"}],
                "outputs": {"default": "plain"},
            },
            hangup("gold", reason="gold"),
            hangup("plain", reason="plain"),
            hangup("err", reason="err"),
        ]
    )


def test_webhook_request_carries_parameters_and_json_becomes_variable() -> None:
    session, out = start(webhook_flow())
    request = only(out, CallWebhook).request
    assert request.body["parameters"] == {"caller": "+15550100", "n": 2}
    assert (request.secret, request.timeout, request.url) == (
        "crm",
        2.0,
        "https://crm.example/lookup",
    )
    assert session.next_deadline == T0 + 2 + 2.0
    assert session.on_input(WebhookResult("stale", WebhookOutcome.SUCCESS, 200, {}), T0 + 1) == []
    session.on_input(
        WebhookResult(request.request_id, WebhookOutcome.SUCCESS, 200, {"tier": "gold"}), T0 + 1
    )
    assert session.variables["crm"] == {"tier": "gold"} and reason(session) == "gold"


def test_webhook_timeout_falls_back_to_error_output() -> None:
    session, out = start(webhook_flow())
    rid = only(out, CallWebhook).request.request_id
    session.on_input(WebhookResult(rid, WebhookOutcome.TIMEOUT, None, None, "timed out"), T0 + 2)
    assert reason(session) == "err"


def test_lost_webhook_reply_times_out_by_deadline() -> None:
    session, _ = start(webhook_flow())
    session.on_input(Timeout(), session.next_deadline or 0)
    assert reason(session) == "err"


# --- callback ---------------------------------------------------------------------------


def callback_flow() -> Any:
    return flow(
        [
            {
                "id": "offer",
                "type": "offer_callback",
                "queue": "support",
                "prompt": {"text": "Press 1 or say yes for a call back, 2 to keep waiting."},
                "outputs": {"scheduled": "bye", "declined": "wait"},
            },
            hangup("bye", reason="callback"),
            {"id": "wait", "type": "transfer_queue", "queue": "support"},
        ]
    )


def test_accepted_callback_is_registered_then_scheduled() -> None:
    session, out = start(callback_flow())
    assert only(out, Collect).grammar == ("yes", "callback", "no")
    out = session.on_input(SpeechRecognized("yes"), T0 + 1)
    offer = only(out, OfferCallback)
    assert (offer.queue, offer.number) == ("support", "+15550100")
    assert session.state is SessionState.WAITING_CALLBACK
    session.on_input(CallbackResult(scheduled=True), T0 + 2)
    assert reason(session) == "callback"


def test_declined_or_failed_callback_keeps_queueing() -> None:
    session, _ = start(callback_flow())
    session.on_input(DigitPressed("2"), T0 + 1)
    assert reason(session) == "queue:support"
    session, _ = start(callback_flow())
    session.on_input(DigitPressed("1"), T0 + 1)
    session.on_input(CallbackResult(scheduled=False, reason="invalid number"), T0 + 2)
    assert reason(session) == "queue:support"  # 'failed' falls back to 'declined'


# --- jumping to another flow ------------------------------------------------------------


def test_transfer_flow_continues_in_loaded_flow_with_variables() -> None:
    from cloudcc.ivr import parse_flow

    from .test_validation import DATA

    billing = parse_flow((DATA / "billing_subflow.json").read_text())
    f = flow(
        [
            {
                "id": "acct",
                "type": "set_variable",
                "assignments": [{"variable": "account", "value": "'9001'"}],
                "outputs": {"next": "jump"},
            },
            {"id": "jump", "type": "transfer_flow", "flow": "billing"},
        ]
    )
    session, out = start(f)
    assert only(out, LoadFlow).flow_id == "billing"
    out = session.on_input(FlowLoaded(billing), T0 + 1)
    assert only(out, RouteToQueue).priority == 10
    assert session.flow.id == "billing"


def test_failed_flow_load_takes_error_output_or_hangs_up() -> None:
    f = flow(
        [
            {"id": "jump", "type": "transfer_flow", "flow": "nope", "outputs": {"error": "end"}},
            hangup("end", reason="fallback"),
        ]
    )
    session, _ = start(f)
    session.on_input(FlowLoadFailed("nope", "not found"), T0 + 1)
    assert reason(session) == "fallback"
    f2 = flow([{"id": "jump", "type": "transfer_flow", "flow": "nope"}])
    session, _ = start(f2)
    out = session.on_input(Timeout(), T0 + 60)
    assert only(out, Hangup).reason == "flow_error"


# --- guards -----------------------------------------------------------------------------


def test_endless_loop_is_stopped_by_the_step_budget() -> None:
    f = flow(
        [
            {
                "id": "a",
                "type": "set_variable",
                "assignments": [{"variable": "n", "value": "1"}],
                "outputs": {"next": "b"},
            },
            {
                "id": "b",
                "type": "branch",
                "conditions": [{"when": "n > 1", "next": "end"}],
                "outputs": {"default": "a"},
            },
            hangup(),
        ]
    )
    session, out = start(f)
    assert only(out, Hangup).reason == "step_budget_exceeded"
    assert events(out, FlowEventKind.FLOW_ERROR)[0].detail["error"] == "step budget exceeded"
    assert session.steps == 101


def test_runtime_error_goes_to_on_error_node_once() -> None:
    f = flow(
        [
            {
                "id": "bad",
                "type": "set_variable",
                "assignments": [{"variable": "x", "value": "1 / 0"}],
                "outputs": {"next": "end"},
            },
            hangup("end"),
            {"id": "oops", "type": "transfer_queue", "queue": "fallback"},
        ],
        on_error="oops",
    )
    _session, out = start(f)
    assert only(out, RouteToQueue).queue == "fallback"
    assert "division by zero" in str(events(out, FlowEventKind.FLOW_ERROR)[0].detail["error"])


def test_runtime_error_without_on_error_hangs_up() -> None:
    f = flow([{"id": "a", "type": "transfer_agent", "agent": "contact.nobody"}])
    _, out = start(f)
    assert only(out, Hangup).reason == "flow_error"


def test_caller_hangup_ends_the_session_and_later_input_is_ignored() -> None:
    session, _ = start(menu_flow())
    out = session.on_input(CallerHungUp(), T0 + 1)
    assert actions(out) == [] and reason(session) == "caller_hangup"
    assert session.on_input(DigitPressed("1"), T0 + 2) == []
    assert [s for s, _ in session.history] == [
        SessionState.NEW,
        SessionState.RUNNING,
        SessionState.COLLECTING,
        SessionState.ENDED,
    ]


def test_driving_a_session_out_of_order_raises() -> None:
    from cloudcc.ivr import FlowSession

    session = FlowSession(menu_flow(), context(), T0)
    with pytest.raises(SessionStateError):
        session.on_input(DigitPressed("1"), T0)
    session.start(T0)
    with pytest.raises(SessionStateError):
        session.start(T0)


def test_every_node_entered_is_also_left_or_ends_the_flow() -> None:
    _session, out = start(branch_flow())
    entered = [e.node_id for e in events(out, FlowEventKind.NODE_ENTERED)]
    left = [e.node_id for e in events(out, FlowEventKind.NODE_LEFT)]
    assert entered == ["set", "which", "high"] and left == ["set", "which"]
    assert events(out, FlowEventKind.FLOW_ENDED)[0].node_id == "high"
