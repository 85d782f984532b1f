"""The four RFC 3261 §17 transaction machines, driven timer by timer with a fake clock."""

from __future__ import annotations

import pytest

from cloudcc.sip.exceptions import InvalidTransition
from cloudcc.sip.message import Request, Response, make_response
from cloudcc.sip.parser import parse_message
from cloudcc.sip.timers import TimerSettings
from cloudcc.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    Send,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TimedOut,
    TxState,
    server_key_for,
)

T = TimerSettings(t1=0.5, t2=4.0, t4=5.0)
TARGET = ("UDP", ("192.0.2.1", 5060))


def request(method: str = "INVITE", branch: str = "z9hG4bKabc") -> Request:
    raw = (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.9:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: tx-test\r\nCSeq: 1 {method}\r\nContact: <sip:alice@192.0.2.9>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(raw)
    assert isinstance(message, Request)
    return message


def response_to(req: Request, status: int) -> Response:
    return make_response(req, status, to_tag="b1" if status > 100 else None)


def sends(actions: list) -> int:
    return sum(1 for a in actions if isinstance(a, Send))


def timeouts(actions: list) -> list[str]:
    return [a.timer for a in actions if isinstance(a, TimedOut)]


# --------------------------------------------------------------- client INVITE


def test_client_invite_timer_a_doubles_and_timer_b_times_out():
    tx = ClientInviteTransaction(request(), TARGET, False, 0.0, T)
    assert sends(tx.start()) == 1
    fired = []
    now = 0.0
    while tx.state is TxState.CALLING:
        assert tx.deadline is not None
        now = tx.deadline
        actions = tx.on_timer(now)
        fired.append((now, sends(actions), timeouts(actions)))
    retransmit_times = [t for t, n, _ in fired if n]
    # A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 (intervals 0.5, 1, 2, 4, 8, 16: no T2 cap)
    assert retransmit_times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert fired[-1] == (32.0, 0, ["B"])
    assert tx.state is TxState.TERMINATED


def test_client_invite_provisional_stops_retransmissions_and_timer_b():
    tx = ClientInviteTransaction(request(), TARGET, False, 0.0, T)
    tx.start()
    actions = tx.receive(response_to(tx.request, 180), 0.2)
    assert [type(a) for a in actions] == [Deliver]
    assert tx.state is TxState.PROCEEDING
    assert tx.deadline is None  # a UAC waits as long as the callee rings


def test_client_invite_timer_c_reports_a_ring_timeout():
    tx = ClientInviteTransaction(request(), TARGET, False, 0.0, T, ring_timeout=60.0)
    tx.start()
    tx.receive(response_to(tx.request, 180), 0.1)
    assert tx.deadline == 60.0
    assert timeouts(tx.on_timer(60.0)) == ["C"]


def test_client_invite_acks_a_failure_itself_and_waits_timer_d():
    tx = ClientInviteTransaction(request(), TARGET, False, 0.0, T)
    tx.start()
    actions = tx.receive(response_to(tx.request, 486), 0.3)
    ack = next(a for a in actions if isinstance(a, Send)).data
    assert ack.startswith(b"ACK sip:bob@example.com SIP/2.0")
    assert b"branch=z9hG4bKabc" in ack  # same branch (§17.1.1.3)
    assert b"CSeq: 1 ACK" in ack and b"tag=b1" in ack
    assert tx.state is TxState.COMPLETED
    # a retransmitted 486 is ACKed again but not passed up
    again = tx.receive(response_to(tx.request, 486), 1.0)
    assert [type(a) for a in again] == [Send]
    assert tx.deadline == pytest.approx(32.3)
    tx.on_timer(32.3)
    assert tx.state is TxState.TERMINATED


def test_client_invite_over_tcp_has_no_timer_a_and_no_timer_d():
    tx = ClientInviteTransaction(request(), TARGET, True, 0.0, T)
    tx.start()
    assert tx.deadline == 32.0  # only B
    tx.receive(response_to(tx.request, 404), 0.1)
    assert tx.state is TxState.TERMINATED


def test_client_invite_accepted_state_passes_2xx_retransmissions_up():
    tx = ClientInviteTransaction(request(), TARGET, False, 0.0, T)
    tx.start()
    first = tx.receive(response_to(tx.request, 200), 0.1)
    second = tx.receive(response_to(tx.request, 200), 0.6)
    assert [type(a) for a in first] == [Deliver] == [type(a) for a in second]
    assert tx.state is TxState.ACCEPTED
    tx.on_timer(0.1 + 32.0)  # Timer M (RFC 6026)
    assert tx.state is TxState.TERMINATED


# ----------------------------------------------------------- client non-INVITE


def test_client_non_invite_timer_e_caps_at_t2_and_timer_f_times_out():
    tx = ClientNonInviteTransaction(request("OPTIONS"), TARGET, False, 0.0, T)
    tx.start()
    times = []
    while tx.state is not TxState.TERMINATED:
        now = tx.deadline
        assert now is not None
        actions = tx.on_timer(now)
        if sends(actions):
            times.append(now)
        if timeouts(actions):
            assert timeouts(actions) == ["F"] and now == 32.0
    intervals = [round(b - a, 3) for a, b in zip([0.0, *times], times, strict=False)]
    assert intervals[:4] == [0.5, 1.0, 2.0, 4.0]
    assert set(intervals[4:]) == {4.0}


def test_client_non_invite_proceeding_retransmits_every_t2():
    tx = ClientNonInviteTransaction(request("BYE"), TARGET, False, 0.0, T)
    tx.start()
    tx.receive(response_to(tx.request, 100), 0.1)
    assert tx.state is TxState.PROCEEDING
    tx.on_timer(0.5)
    assert tx.deadline == pytest.approx(4.5)


def test_client_non_invite_final_then_timer_k():
    tx = ClientNonInviteTransaction(request("BYE"), TARGET, False, 0.0, T)
    tx.start()
    assert [type(a) for a in tx.receive(response_to(tx.request, 200), 0.2)] == [Deliver]
    assert tx.receive(response_to(tx.request, 200), 0.3) == []  # absorbed
    assert tx.deadline == pytest.approx(5.2)
    tx.on_timer(5.2)
    assert tx.state is TxState.TERMINATED


# --------------------------------------------------------------- server INVITE


def test_server_invite_sends_100_after_200_ms_without_an_answer():
    tx = ServerInviteTransaction(request(), TARGET, False, 0.0, T)
    assert tx.deadline == pytest.approx(0.2)
    actions = tx.on_timer(0.2)
    assert actions[0].data.startswith(b"SIP/2.0 100 Trying")


def test_server_invite_answering_quickly_sends_no_100():
    tx = ServerInviteTransaction(request(), TARGET, False, 0.0, T)
    actions = tx.respond(response_to(tx.request, 180), 0.05)
    assert actions[0].data.startswith(b"SIP/2.0 180")
    assert tx.on_timer(0.2) == []


def test_server_invite_retransmitted_invite_gets_the_last_provisional():
    tx = ServerInviteTransaction(request(), TARGET, False, 0.0, T)
    tx.respond(response_to(tx.request, 180), 0.05)
    again = tx.receive_request(tx.request, 0.5)
    assert again[0].data.startswith(b"SIP/2.0 180")


def test_server_invite_failure_timer_g_doubles_to_t2_and_timer_h_times_out():
    invite = request()
    tx = ServerInviteTransaction(invite, TARGET, False, 0.0, T)
    tx.respond(response_to(invite, 486), 0.0)
    times = []
    while tx.state is TxState.COMPLETED:
        now = tx.deadline
        assert now is not None
        actions = tx.on_timer(now)
        if sends(actions):
            times.append(now)
        if timeouts(actions):
            assert timeouts(actions) == ["H"]
            assert now == 32.0
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert tx.state is TxState.TERMINATED


def test_server_invite_ack_confirms_and_timer_i_absorbs_ack_retransmits():
    tx = ServerInviteTransaction(request(), TARGET, False, 0.0, T)
    tx.respond(response_to(tx.request, 486), 0.0)
    ack = request("ACK")
    assert server_key_for(ack) == tx.key  # the ACK of a non-2xx matches by branch
    assert tx.receive_request(ack, 0.1) == []
    assert tx.state is TxState.CONFIRMED
    assert tx.receive_request(ack, 0.2) == []
    assert tx.deadline == pytest.approx(5.1)
    tx.on_timer(5.1)
    assert tx.state is TxState.TERMINATED


def test_server_invite_2xx_is_retransmitted_until_the_ack():
    tx = ServerInviteTransaction(request(), TARGET, False, 0.0, T)
    tx.respond(response_to(tx.request, 200), 0.0)
    assert tx.state is TxState.ACCEPTED
    assert sends(tx.on_timer(0.5)) == 1
    assert sends(tx.on_timer(1.5)) == 1
    delivered = tx.receive_request(request("ACK", "z9hG4bKother"), 2.0)
    assert [type(a) for a in delivered] == [Deliver]
    assert tx.receive_request(request("ACK", "z9hG4bKother"), 2.1) == []  # once only
    assert tx.deadline == pytest.approx(32.0)  # Timer L only
    assert sends(tx.on_timer(32.0)) == 0
    assert tx.state is TxState.TERMINATED


def test_server_invite_2xx_without_ack_reports_timer_l():
    tx = ServerInviteTransaction(request(), TARGET, False, 0.0, T)
    tx.respond(response_to(tx.request, 200), 0.0)
    fired: list[str] = []
    while tx.state is not TxState.TERMINATED:
        assert tx.deadline is not None
        fired += timeouts(tx.on_timer(tx.deadline))
    assert fired == ["L"]


def test_server_invite_accepted_absorbs_retransmitted_invites():
    invite = request()
    tx = ServerInviteTransaction(invite, TARGET, False, 0.0, T)
    tx.respond(response_to(invite, 200), 0.0)
    assert tx.request is None  # only the response bytes are kept once answered
    assert tx.receive_request(invite, 0.3) == []  # RFC 6026 §8.4


def test_server_invite_rejects_a_second_final_response():
    invite = request()
    tx = ServerInviteTransaction(invite, TARGET, False, 0.0, T)
    tx.respond(response_to(invite, 486), 0.0)
    with pytest.raises(InvalidTransition):
        tx.respond(response_to(invite, 200), 0.1)


# ----------------------------------------------------------- server non-INVITE


def test_server_non_invite_absorbs_in_trying_and_replays_after_final():
    req = request("OPTIONS")
    tx = ServerNonInviteTransaction(req, TARGET, False, 0.0, T)
    assert tx.receive_request(req, 0.1) == []
    tx.respond(response_to(req, 200), 0.2)
    assert tx.request is None  # only the response bytes are kept
    replay = tx.receive_request(req, 0.5)
    assert replay[0].data.startswith(b"SIP/2.0 200")
    assert tx.deadline == pytest.approx(32.2)  # Timer J
    tx.on_timer(32.2)
    assert tx.state is TxState.TERMINATED


def test_server_non_invite_over_tcp_terminates_at_once():
    req = request("OPTIONS")
    tx = ServerNonInviteTransaction(req, TARGET, True, 0.0, T)
    tx.respond(response_to(req, 200), 0.0)
    assert tx.state is TxState.TERMINATED


def test_transitions_are_recorded_with_their_time():
    tx = ServerNonInviteTransaction(request("OPTIONS"), TARGET, False, 1.0, T)
    tx.respond(response_to(request("OPTIONS"), 100), 1.5)
    tx.respond(response_to(request("OPTIONS"), 200), 2.0)
    assert tx.history == [
        (TxState.TRYING, 1.0),
        (TxState.PROCEEDING, 1.5),
        (TxState.COMPLETED, 2.0),
    ]


def test_rfc2543_requests_match_without_magic_cookie():
    old = request("OPTIONS", branch="1234")
    again = request("OPTIONS", branch="1234")
    assert server_key_for(old) == server_key_for(again)
    assert server_key_for(old)[0] == "2543"
