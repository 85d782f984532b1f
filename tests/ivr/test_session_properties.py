"""Property tests: any sequence of inputs at any times keeps a session well-behaved."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcc.ivr import (
    CallbackResult,
    CallerHungUp,
    DigitPressed,
    DigitsCollected,
    FlowEvent,
    FlowEventKind,
    FlowLoadFailed,
    NoInput,
    PlaybackDone,
    SessionState,
    SpeechRecognized,
    TextReceived,
    Timeout,
    WebhookOutcome,
    WebhookResult,
    parse_flow,
)
from cloudcc.ivr.actions import TERMINAL_ACTIONS
from cloudcc.ivr.engine import TRANSITIONS
from cloudcc.ivr.flows import demo_flow
from cloudcc.ivr.model import Channel

from .helpers import MONDAY_10_UTC, start
from .test_validation import DATA

INPUTS = st.one_of(
    st.builds(PlaybackDone, st.integers(0, 12)),
    st.builds(DigitPressed, st.sampled_from(list("0123456789*#AB"))),
    st.builds(DigitsCollected, st.text("0123456789#", max_size=8)),
    st.builds(
        SpeechRecognized,
        st.sampled_from(["sales", "support", "agent", "yes", "", "uh"]),
        st.floats(0, 1),
    ),
    st.builds(TextReceived, st.text(max_size=20)),
    st.just(NoInput()),
    st.just(Timeout()),
    st.builds(WebhookResult, st.just("c1-1"), st.sampled_from(list(WebhookOutcome))),
    st.builds(CallbackResult, st.booleans()),
    st.builds(FlowLoadFailed, st.just("x")),
)


def flows() -> list:  # type: ignore[type-arg]
    return [demo_flow(), parse_flow((DATA / "chat_order_status.json").read_text())]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 1),
    st.sampled_from(list(Channel)),
    st.lists(st.tuples(INPUTS, st.floats(0, 30)), max_size=25),
    st.booleans(),
)
def test_any_input_sequence_keeps_the_session_consistent(
    which: int,
    channel: Channel,
    steps: list,
    hang_up: bool,  # type: ignore[type-arg]
) -> None:
    session, out = start(flows()[which], MONDAY_10_UTC, channel=channel)
    now = MONDAY_10_UTC
    all_out = list(out)
    for event, delay in steps:
        now += delay
        if isinstance(event, Timeout) and session.next_deadline is not None:
            now = max(now, session.next_deadline)
        before = session.next_deadline
        all_out += session.on_input(event, now)
        deadline = session.next_deadline
        # A deadline the input set counts from the input's time. One the input left alone may
        # have lapsed (the driver owes the session a Timeout): that is the driver's to send.
        if deadline is not None and deadline != before:
            assert deadline >= now
        if session.state is SessionState.COLLECTING and channel is Channel.CHAT:
            assert deadline is not None  # a chat never waits forever
    if hang_up:
        all_out += session.on_input(CallerHungUp(), now)
    # states only ever moved along the transition table
    states = [s for s, _ in session.history]
    for old, new in itertools.pairwise(states):
        assert new in TRANSITIONS[old]
    # a flow ends at most once, with at most one terminal action
    ended = [o for o in all_out if isinstance(o, FlowEvent) and o.kind is FlowEventKind.FLOW_ENDED]
    assert len(ended) == (1 if session.ended else 0)
    terminal = [i for i, o in enumerate(all_out) if isinstance(o, TERMINAL_ACTIONS)]
    assert len(terminal) <= 1
    if session.ended:
        assert session.next_deadline is None
