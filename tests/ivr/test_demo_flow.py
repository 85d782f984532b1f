"""The demo flow on number 4000 walked by keys, by speech, and as a chat; plus the chat fixture."""

from __future__ import annotations

from datetime import UTC, datetime

from cloudcc.ivr import (
    Collect,
    CollectMode,
    DigitPressed,
    FlowEventKind,
    Hangup,
    Play,
    PlaybackDone,
    RouteToQueue,
    SendMessage,
    SpeechRecognized,
    StartVoicemail,
    TextReceived,
    Timeout,
    parse_flow,
    render_wait_announcement,
)
from cloudcc.ivr.flows import DEMO_NUMBER, demo_flow
from cloudcc.ivr.model import Channel

from .helpers import context, events, of, only, start
from .test_validation import DATA

OPEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()  # Tuesday 10:00
NIGHT = datetime(2026, 12, 1, 22, 0, tzinfo=UTC).timestamp()
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=UTC).timestamp()


def to_menu(now: float = OPEN):  # type: ignore[no-untyped-def]
    session, out = start(demo_flow(), now, ctx=context(dialed=DEMO_NUMBER))
    greeting = only(out, Play)
    assert "Thank you for calling" in (greeting.text or "")
    out = session.on_input(PlaybackDone(greeting.play_id), now + 3)
    return session, out


def test_demo_by_keys_reaches_each_queue() -> None:
    for key, queue, skills, priority in [
        ("1", "sales", ("sales",), 0),
        ("2", "support", ("support",), 0),
        ("0", "support", (), 5),
    ]:
        session, out = to_menu()
        menu_prompt = of(out, Play)[0]
        assert menu_prompt.barge_in and "For sales, press 1" in (menu_prompt.text or "")
        out = session.on_input(DigitPressed(key), OPEN + 4)
        routed = only(out, RouteToQueue)
        assert (routed.queue, routed.skills, routed.priority) == (queue, skills, priority)
        assert routed.music == "default" and routed.wait_announcement


def test_demo_by_speech_reaches_each_queue() -> None:
    for word, queue in [("sales", "sales"), ("support", "support"), ("agent", "support")]:
        session, out = to_menu()
        assert only(out, Collect).grammar == ("sales", "support", "agent")
        out = session.on_input(SpeechRecognized(word, 0.8), OPEN + 5)
        assert only(out, RouteToQueue).queue == queue
        collected = events(out, FlowEventKind.INPUT_COLLECTED)[0]
        assert collected.detail["mode"] == "speech" and collected.detail["value"] == word
        assert session.variables["choice"] == word


def test_demo_silent_caller_is_reprompted_then_queued_for_support() -> None:
    session, out = to_menu()
    for attempt in range(3):
        last = of(out, Play)[-1]
        session.on_input(PlaybackDone(last.play_id), OPEN + 10 * attempt + 5)
        deadline = session.next_deadline
        assert deadline == OPEN + 10 * attempt + 10
        out = session.on_input(Timeout(), deadline)
        if attempt < 2:
            assert next(p.text for p in of(out, Play)) == "Sorry, I did not hear you."
    assert only(out, RouteToQueue).queue == "support"


def test_demo_after_hours_offers_voicemail() -> None:
    session, out = to_menu(NIGHT)
    closed = of(out, Play)[0]
    assert "We are closed now" in (closed.text or "")
    out = session.on_input(PlaybackDone(closed.play_id), NIGHT + 8)
    out = session.on_input(DigitPressed("1"), NIGHT + 9)
    out = session.on_input(PlaybackDone(only(out, Play).play_id), NIGHT + 12)
    assert only(out, StartVoicemail).mailbox == "general"


def test_demo_on_a_holiday_says_so_and_hangs_up_without_answer() -> None:
    session, out = to_menu(CHRISTMAS)
    holiday = of(out, Play)[0]
    assert "holiday" in (holiday.text or "")
    out = session.on_input(PlaybackDone(holiday.play_id), CHRISTMAS + 5)
    out = session.on_input(PlaybackDone(of(out, Play)[-1].play_id), CHRISTMAS + 9)
    out = session.on_input(Timeout(), CHRISTMAS + 13)
    out = session.on_input(PlaybackDone(only(out, Play).play_id), CHRISTMAS + 14)
    assert only(out, Hangup).reason == "normal"


def test_demo_runs_as_a_chat() -> None:
    session, out = start(demo_flow(), OPEN, channel=Channel.CHAT)
    assert of(out, Play) == []
    messages = [m.text for m in of(out, SendMessage)]
    assert messages[0].startswith("Thank you for calling") and "For sales" in messages[1]
    assert only(out, Collect).mode is CollectMode.TEXT
    assert session.next_deadline == OPEN + 300
    out = session.on_input(TextReceived("I need SUPPORT please"), OPEN + 20)
    assert only(out, RouteToQueue).queue == "support"


def test_wait_announcement_is_rendered_for_the_edge() -> None:
    text = render_wait_announcement(
        "You are caller number {position}. Your estimated wait is {wait_minutes} minutes.",
        position=3,
        wait_seconds=250,
        queue="support",
    )
    assert text == "You are caller number 3. Your estimated wait is 4 minutes."


def test_chat_flow_collects_order_number_by_text() -> None:
    f = parse_flow((DATA / "chat_order_status.json").read_text())
    session, out = start(f, OPEN, ctx=context(Channel.CHAT, attributes={"name": "Mei"}))
    assert next(m.text for m in of(out, SendMessage)) == "Hi Mei! I can help with orders."
    out = session.on_input(TextReceived("hmm"), OPEN + 5)
    assert next(m.text for m in of(out, SendMessage)) == "Sorry, I did not get that."
    out = session.on_input(TextReceived("Orders"), OPEN + 10)
    assert [m.text for m in of(out, SendMessage)] == ["What is your order number?"]
    out = session.on_input(TextReceived("12-34"), OPEN + 15)
    assert next(m.text for m in of(out, SendMessage)) == "Order numbers have 6 to 8 digits."
    out = session.on_input(TextReceived("1234 567"), OPEN + 20)
    assert session.variables["order"] == "1234567"
    assert [m.text for m in of(out, SendMessage)] == [
        "Thanks, looking up order 1234567 for you now."
    ]
    assert only(out, RouteToQueue).queue == "chat-support"


def test_idle_chat_is_closed_with_a_message() -> None:
    f = parse_flow((DATA / "chat_order_status.json").read_text())
    session, out = start(f, OPEN, channel=Channel.CHAT)
    out = session.on_input(Timeout(), OPEN + 300)  # retry 1 of 1
    out = session.on_input(Timeout(), OPEN + 600)
    assert [m.text for m in of(out, SendMessage)] == ["Chat closed for inactivity. Bye!"]
    assert only(out, Hangup)
