"""Dialogs (RFC 3261 §12): creation on both sides, routing, CSeq, session timers."""

from __future__ import annotations

import pytest

from cloudcc.sip.dialog import (
    Dialog,
    DialogState,
    Refresher,
    SessionIntervalTooSmall,
    SessionTimer,
    negotiate_as_uas,
    parse_session_expires,
)
from cloudcc.sip.exceptions import CSeqOutOfOrder, InvalidTransition
from cloudcc.sip.message import Request, Response, make_response
from cloudcc.sip.parser import parse_message

INVITE = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK1\r\n"
    "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n"
    "Max-Forwards: 69\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\nCall-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.example.com>\r\n{extra}Content-Length: 0\r\n\r\n"
)


def invite(extra: str = "") -> Request:
    message = parse_message(INVITE.format(extra=extra).encode())
    assert isinstance(message, Request)
    return message


def test_uas_dialog_takes_route_set_target_and_remote_cseq_from_the_request():
    d = Dialog.for_uas(invite(), "bobtag", "<sip:bob@192.0.2.4>", 0.0)
    assert d.key == ("a84b4c76e66710", "bobtag", "1928301774")
    assert d.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert d.remote_target == "sip:alice@pc33.atlanta.example.com"
    assert d.remote_seq == 314159
    assert d.state is DialogState.EARLY
    bye = d.create_request("BYE")
    assert bye.uri_text == "sip:alice@pc33.atlanta.example.com"  # loose routing
    assert bye.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.from_.tag == "bobtag" and bye.to.tag == "1928301774"
    assert bye.cseq.seq == d.local_seq


def test_uac_dialog_reverses_record_route_and_targets_the_contact():
    req = invite()
    ok = make_response(req, 200, to_tag="bobtag")
    ok.headers["record-route"] = list(req.headers["record-route"])
    ok.add("Contact", "<sip:bob@192.0.2.4>")
    d = Dialog.for_uac(req, ok, 0.0)
    assert d.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert d.remote_target == "sip:bob@192.0.2.4"
    assert d.local_seq == 314159 and d.remote_seq is None
    assert d.state is DialogState.CONFIRMED
    ack = d.create_request("ACK", cseq=314159)
    assert str(ack.cseq) == "314159 ACK"
    bye = d.create_request("BYE")
    assert bye.cseq.seq == 314160


def test_strict_router_moves_the_target_to_the_last_route():
    req = invite().copy_headers()
    req["record-route"] = ["<sip:strict.example.com>"]
    d = Dialog.for_uas(Request("INVITE", "sip:bob@b", req), "t", "<sip:b@c>", 0.0)
    bye = d.create_request("BYE")
    assert bye.uri_text == "sip:strict.example.com"
    assert bye.get_all("Route") == ["<sip:alice@pc33.atlanta.example.com>"]


def test_lower_or_repeated_cseq_is_out_of_order():
    d = Dialog.for_uas(invite(), "bobtag", "<sip:bob@192.0.2.4>", 0.0)
    stale = invite().copy_headers()
    stale["cseq"] = ["314158 BYE"]
    with pytest.raises(CSeqOutOfOrder) as info:
        d.receive_request(Request("BYE", "sip:bob@b", stale))
    assert info.value.status == 500


def test_reinvite_refreshes_the_remote_target():
    d = Dialog.for_uas(invite(), "bobtag", "<sip:bob@192.0.2.4>", 0.0)
    h = invite().copy_headers()
    h["cseq"] = ["314160 INVITE"]
    h["contact"] = ["<sip:alice@10.0.0.9:5070>"]
    d.receive_request(Request("INVITE", "sip:bob@b", h))
    assert d.remote_target == "sip:alice@10.0.0.9:5070"
    assert d.remote_seq == 314160


def test_dialog_states_follow_the_table():
    d = Dialog.for_uas(invite(), "bobtag", "<sip:bob@192.0.2.4>", 0.0)
    d.confirm(1.0)
    d.terminate(2.0)
    assert [s for s, _ in d.history] == [
        DialogState.EARLY,
        DialogState.CONFIRMED,
        DialogState.TERMINATED,
    ]
    with pytest.raises(InvalidTransition):
        d.confirm(3.0)


# ---------------------------------------------------------------- RFC 4028


def test_session_expires_header_parses_refresher():
    assert parse_session_expires("1800;refresher=uac") == (1800, "uac")
    assert parse_session_expires("90") == (90, None)


def test_uas_rejects_a_too_small_interval_with_min_se():
    with pytest.raises(SessionIntervalTooSmall) as info:
        negotiate_as_uas(invite("Supported: timer\r\nSession-Expires: 60\r\n"), 1800, 90)
    assert info.value.status == 422 and info.value.min_se == 90


def test_uas_lets_a_timer_capable_uac_refresh_and_refreshes_itself_otherwise():
    assert negotiate_as_uas(invite("Supported: timer\r\nSession-Expires: 600\r\n"), 1800, 90) == (
        600,
        "uac",
    )
    assert negotiate_as_uas(invite("Session-Expires: 600\r\n"), 1800, 90) == (600, "uas")
    assert negotiate_as_uas(invite(), 1800, 90) == (1800, "uas")
    assert negotiate_as_uas(invite(), 0, 90) is None


def test_session_timer_deadlines():
    local = SessionTimer(1800, Refresher.LOCAL, 100.0)
    assert local.deadline == 100.0 + 900
    remote = SessionTimer(90, Refresher.REMOTE, 100.0)
    assert remote.deadline == 100.0 + 90 - 30  # SE - min(32, SE/3)
    remote.refreshed(150.0)
    assert remote.expires_at == 150.0 + 60


def test_response_needs_a_to_tag_to_make_a_dialog():
    req = invite()
    provisional = Response(180, None, {k: list(v) for k, v in req.headers.items()})
    from cloudcc.sip.exceptions import DialogError

    with pytest.raises(DialogError):
        Dialog.for_uac(req, provisional, 0.0)


def test_a_restored_dialog_sends_the_same_bye_with_a_higher_cseq():
    # What a restarted node rebuilds from the journal after a crash (RFC 3261 §12.2.1.1).
    import json

    d = Dialog.for_uas(invite(), "bobtag", "<sip:bob@192.0.2.4>", 0.0)
    stored = json.loads(json.dumps(d.snapshot()))  # through a JSON column
    restored = Dialog.restore(stored, 5.0, seq_gap=1000)
    assert restored.key == d.key and restored.state is DialogState.CONFIRMED
    bye, again = d.create_request("BYE"), restored.create_request("BYE")
    assert again.uri_text == bye.uri_text
    assert again.get_all("Route") == bye.get_all("Route")
    assert str(again.from_) == str(bye.from_) and str(again.to) == str(bye.to)
    assert again.call_id == bye.call_id
    assert again.cseq.seq == bye.cseq.seq - 1 + 1001
