"""URIs (RFC 3261 §19.1) and structured headers (§20, §25)."""

from __future__ import annotations

import pytest

from cloudcc.sip.exceptions import ParseError
from cloudcc.sip.headers import header_key, parse_name_address, parse_params, parse_via, split_list
from cloudcc.sip.timers import TimerQueue
from cloudcc.sip.uri import AbsoluteUri, SipUri, parse_sip_uri, parse_uri


def test_full_sip_uri():
    uri = parse_sip_uri("sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?subject=hi&x=y")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips", "alice", "pw", "[2001:db8::1]", 5061,
    )  # fmt: skip
    assert uri.transport == "TLS" and uri.is_loose_router
    assert uri.headers == {"subject": "hi", "x": "y"}
    assert str(uri) == "sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?subject=hi&x=y"


def test_uri_equality_follows_section_19_1_4():
    assert parse_sip_uri("sip:%61lice@ATLANTA.com;transport=TCP") == parse_sip_uri(
        "sip:alice@AtLanTa.CoM;Transport=tcp"
    )
    assert parse_sip_uri("sip:alice@atlanta.com") != parse_sip_uri("sip:alice@atlanta.com:5060")
    assert parse_sip_uri("sip:bob@b;transport=udp") != parse_sip_uri("sip:bob@b")


def test_other_schemes_stay_opaque_and_sip_is_required_where_needed():
    assert parse_uri("tel:+15551234;phone-context=x") == AbsoluteUri(
        "tel", "+15551234;phone-context=x"
    )
    with pytest.raises(ParseError) as info:
        parse_sip_uri("tel:+15551234")
    assert info.value.status == 416


@pytest.mark.parametrize(
    "bad", ["sip:", "sip:a@b@c", "sip:a b@c", "sip:user@host:99999", "sip:@host", "sip:a@[::1", "x"]
)
def test_bad_uris_raise(bad):
    with pytest.raises(ParseError):
        parse_uri(bad)


def test_via_with_spaces_ipv6_and_params():
    via = parse_via(
        "SIP / 2.0 / tcp [2001:db8::9]:5062 ; branch = z9hG4bK7 ; rport ; received=1.2.3.4"
    )
    assert (via.transport, via.host, via.port) == ("TCP", "[2001:db8::9]", 5062)
    assert via.params == {"branch": "z9hG4bK7", "rport": None, "received": "1.2.3.4"}
    assert str(via) == "SIP/2.0/TCP [2001:db8::9]:5062;branch=z9hG4bK7;rport;received=1.2.3.4"


def test_name_address_forms():
    quoted = parse_name_address('"Doe, John" <sip:j@d.com;transport=udp>;tag=9;expires=60')
    assert quoted.display == "Doe, John" and quoted.tag == "9"
    assert quoted.sip_uri.params == {"transport": "udp"}
    bare = parse_name_address("sip:j@d.com;tag=9")
    assert bare.display is None and bare.tag == "9" and bare.sip_uri.params == {}
    assert str(quoted) == '"Doe, John" <sip:j@d.com;transport=udp>;tag=9;expires=60'


def test_commas_inside_quotes_and_brackets_do_not_split():
    assert split_list('"a, b" <sip:x@y>, <sip:z@w;p=1,2>') == [
        '"a, b" <sip:x@y>',
        "<sip:z@w;p=1,2>",
    ]


def test_compact_and_odd_case_header_names():
    assert header_key("v") == header_key("VIA") == "via"
    assert header_key("i") == "call-id" and header_key("x") == "session-expires"
    with pytest.raises(ParseError):
        header_key("Bad Header")


def test_params_reject_empty_items():
    with pytest.raises(ParseError):
        parse_params(";;tag=1")
    assert parse_params(' ; a = "x;y" ; b') == {"a": '"x;y"', "b": None}


def test_timer_queue_orders_reschedules_and_cancels():
    q = TimerQueue()
    q.schedule("a", 5.0)
    q.schedule("b", 3.0)
    q.schedule("a", 1.0)  # rescheduled earlier
    q.schedule("c", 4.0)
    q.cancel("c")
    assert q.next_deadline() == 1.0
    assert q.due(3.5) == ["a", "b"]
    assert q.due(10.0) == []
    assert len(q) == 0


def test_sip_uri_copy_is_independent():
    uri = SipUri("h", "u", params={"lr": None})
    copy = uri.copy()
    copy.params["x"] = "1"
    assert "x" not in uri.params
