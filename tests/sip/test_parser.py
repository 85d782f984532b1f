"""Parsing and serialising SIP messages: RFC 4475 torture messages, framing, round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcc.sip.exceptions import MessageTooLarge, ParseError, TooManyHeaders
from cloudcc.sip.headers import NameAddress, quote
from cloudcc.sip.message import Request, Response, make_response
from cloudcc.sip.parser import Limits, StreamFramer, parse_message
from cloudcc.sip.uri import SipUri

from .helpers import DATA

TORTURE = DATA / "rfc4475"
EXPECTED = json.loads((TORTURE / "expected.json").read_text())


def torture(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["parse"] == "ok"))
def test_rfc4475_valid_message_parses(name):
    message = parse_message(torture(name))
    assert message.call_id
    # what we write back parses to the same transaction-relevant fields
    again = parse_message(message.encode())
    assert again.call_id == message.call_id
    assert str(again.cseq) == str(message.cseq)
    assert [str(v) for v in again.vias] == [str(v) for v in message.vias]
    assert again.body == message.body


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["parse"] != "ok"))
def test_rfc4475_invalid_message_is_rejected_with_its_status(name):
    with pytest.raises(ParseError) as info:
        parse_message(torture(name))
    assert info.value.status == EXPECTED[name]["parse"]


def test_short_tortuous_invite_is_understood_field_by_field():
    m = parse_message(torture("wsinv"))
    assert isinstance(m, Request)
    assert m.method == "INVITE"
    assert isinstance(m.uri, SipUri) and m.uri.params == {"unknownparam": None}
    assert m.to.tag == "1918181833n"
    assert m.from_.display == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert (m.cseq.seq, m.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    contact = m.contacts[0]
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert m.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.get("Subject") == ""
    assert m.routes[0].sip_uri.is_loose_router
    assert len(m.body) == 150


def test_wide_range_of_characters_survive():
    m = parse_message(torture("intmeth"))
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display == "token1~` token2'+_ token3*%!.-"
    assert m.from_.params["fromparam''~+*_!.-%"] == '"работающий"'
    uri = m.uri
    assert isinstance(uri, SipUri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    # the control characters are re-escaped when written
    assert b'"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"' in m.encode()


def test_escapes_in_uris_are_kept_and_unescaped_for_aors():
    m = parse_message(torture("esc01"))
    assert m.uri.aor == "sip:sips:user@example.com@example.net"
    assert m.to.sip_uri.aor == "sip:user@example.com"
    assert m.contacts[0].sip_uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}
    nulls = parse_message(torture("escnull"))
    assert nulls.to.sip_uri.aor == "sip:null-\x00-null@example.com"
    assert [c.sip_uri.aor for c in nulls.contacts] == [
        "sip:\x00@host5.example.com",
        "sip:\x00\x00@host5.example.com",
    ]


def test_percent_is_not_an_escape_outside_uris():
    m = parse_message(torture("esc02"))
    assert m.method == "RE%47IST%45R"
    assert m.to.display == "%Z%45"
    assert [c.sip_uri.user for c in m.contacts] == ["alias1", "alias3"]
    assert m.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_compact_forms_and_case_map_to_the_same_header():
    m = parse_message(torture("longreq"))
    assert len(m.vias) == 34
    assert m.vias[0].host == "sip33.example.com"
    assert m.from_.tag is not None and m.from_.tag.startswith("12982")
    assert len(m.body) == 150


def test_datagram_bytes_after_content_length_are_ignored():
    m = parse_message(torture("dblreq"))
    assert m.method == "REGISTER"
    assert m.body == b""


def test_user_part_with_semicolon_keeps_its_escape():
    m = parse_message(torture("semiuri"))
    assert m.uri.user == "user;par=u%40example.net"
    assert m.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_binary_multipart_body_is_framed_by_content_length():
    m = parse_message(torture("mpart01"))
    assert b"\x00" in m.body
    assert m.body.endswith(b"--7a9cbec02ceef655--\r\n")


def test_reason_phrases_unusual_and_empty():
    unreason = parse_message(torture("unreason"))
    assert isinstance(unreason, Response) and unreason.status == 200
    assert unreason.reason.startswith("= 2**3 * 5**2 но сто")
    noreason = parse_message(torture("noreason"))
    assert isinstance(noreason, Response) and noreason.reason == ""


def test_contact_params_without_brackets_belong_to_the_header():
    in_header = parse_message(torture("cparam01")).contacts[0]
    assert in_header.params == {"unknownparam": None}
    assert in_header.sip_uri.params == {}
    in_uri = parse_message(torture("cparam02")).contacts[0]
    assert in_uri.params == {}
    assert in_uri.sip_uri.params == {"unknownparam": None}


def test_a_bad_version_carries_the_parsed_request_for_a_505():
    with pytest.raises(ParseError) as info:
        parse_message(torture("badvers"))
    assert info.value.status == 505
    assert isinstance(info.value.message, Request)
    assert "via" in info.value.message.headers


def test_folded_and_multi_valued_headers():
    raw = (
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1,\r\n"
        b" SIP/2.0/TCP g;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP f;branch=z9hG4bK3\r\n"
        b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
        b"Supported: timer,\r\n\treplaces\r\nl: 0\r\n\r\n"
    )
    m = parse_message(raw)
    assert [v.host for v in m.vias] == ["h", "g", "f"]
    assert m.option_tags("Supported") == ["timer", "replaces"]


def test_bare_lf_line_endings_are_tolerated():
    raw = (
        b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:x@y>;tag=1\n"
        b"To: <sip:a@b>\nCall-ID: c\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
    )
    assert parse_message(raw).method == "OPTIONS"


def test_size_and_header_caps():
    raw = torture("lwsdisp")
    with pytest.raises(MessageTooLarge):
        parse_message(raw, Limits(max_message_size=100))
    with pytest.raises(TooManyHeaders):
        parse_message(raw, Limits(max_headers=3))


def test_response_copies_the_transaction_headers_and_adds_a_to_tag():
    request = parse_message(torture("lwsdisp"))
    assert isinstance(request, Request)
    response = make_response(request, 200, to_tag="abc")
    again = parse_message(response.encode())
    assert isinstance(again, Response)
    assert again.to.tag == "abc"
    assert again.via.branch == request.via.branch
    assert again.call_id == request.call_id


# ------------------------------------------------------------------ stream framing


def test_stream_framer_cuts_by_content_length_across_chunks():
    one = torture("esc01")
    two = torture("lwsdisp")
    stream = b"\r\n\r\n" + one + two
    framer = StreamFramer()
    out: list[bytes] = []
    for i in range(0, len(stream), 7):
        out += framer.feed(stream[i : i + 7])
    assert out == [one, two]
    assert framer.pings == 1  # the leading CRLF CRLF keep-alive (RFC 5626 §3.5.1)
    assert framer.buffered == 0


def test_stream_framer_refuses_missing_or_negative_content_length():
    with pytest.raises(ParseError):
        StreamFramer().feed(torture("ncl"))
    with pytest.raises(ParseError):
        StreamFramer().feed(torture("inv2543"))


def test_stream_framer_returns_the_whole_message_before_a_bad_fragment():
    good = torture("esc01")
    framer = StreamFramer()
    assert framer.feed(good + b"GARBAGE sip:x SIP/2.0\r\nContent-Length: x\r\n\r\n") == [good]
    assert framer.error is not None  # the caller answers ``good``, then closes
    with pytest.raises(ParseError):
        framer.feed(good)  # nothing more is read from a stream that lost its framing


def test_stream_framer_waits_for_a_body_that_is_promised():
    framer = StreamFramer()
    assert framer.feed(torture("clerr")) == []
    assert framer.buffered > 0


def test_stream_framer_caps_the_buffer():
    framer = StreamFramer(Limits(max_message_size=1000))
    with pytest.raises(MessageTooLarge):
        framer.feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 300)


# ------------------------------------------------------------------ properties

token = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)
host = st.from_regex(r"[a-z][a-z0-9\-]{0,10}(\.[a-z][a-z0-9\-]{0,8}){0,2}", fullmatch=True)
user = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/", min_size=1, max_size=12)
display = st.one_of(
    st.none(),
    st.text(min_size=1, max_size=20).filter(
        lambda s: s.strip() == s and "\r" not in s and "\n" not in s
    ),
)


paramchars = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'", min_size=1, max_size=10)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    params = draw(st.dictionaries(paramchars, st.one_of(st.none(), paramchars), max_size=3))
    return SipUri(
        draw(host),
        draw(st.one_of(st.none(), user)),
        draw(st.one_of(st.none(), st.integers(1, 65535))),
        params=params,
    )


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(token)
    uri = draw(sip_uris())
    from_ = NameAddress(draw(sip_uris()), draw(display), {"tag": draw(token)})
    to = NameAddress(draw(sip_uris()), draw(display))
    branch = "z9hG4bK" + draw(token)
    headers = {
        "via": [
            f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} {draw(host)};branch={branch}"
        ],
        "from": [str(from_)],
        "to": [str(to)],
        "call-id": [draw(token) + "@" + draw(host)],
        "cseq": [f"{draw(st.integers(0, 2**31))} {method}"],
        "max-forwards": [str(draw(st.integers(0, 255)))],
    }
    request = Request(method, uri, headers, draw(st.binary(max_size=200)))
    for _ in range(draw(st.integers(0, 3))):
        request.add("X-" + draw(token), draw(st.text("abc xyz,;=\"'", max_size=20)).strip())
    return request


@settings(max_examples=200, deadline=None)
@given(requests())
def test_any_request_we_write_parses_back_to_the_same_meaning(request: Request):
    again = parse_message(request.encode())
    assert isinstance(again, Request)
    assert again.method == request.method
    assert str(again.uri) == str(request.uri)
    assert again.from_.display == request.from_.display
    assert str(again.from_.uri) == str(request.from_.uri)
    assert again.from_.tag == request.from_.tag
    assert str(again.to.uri) == str(request.to.uri)
    assert again.via.branch == request.via.branch
    assert str(again.cseq) == str(request.cseq)
    assert again.body == request.body
    for key, values in request.headers.items():
        if key.startswith("x-"):
            assert again.headers[key] == values


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_anything_but_parse_error(data: bytes):
    try:
        parse_message(data)
    except ParseError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(EXPECTED)), st.integers(0, 2000), st.binary(min_size=1, max_size=8))
def test_mutated_torture_messages_never_crash_the_parser(name: str, at: int, junk: bytes):
    data = torture(name)
    at = at % (len(data) + 1)
    try:
        message = parse_message(data[:at] + junk + data[at:])
    except ParseError:
        return
    message.encode()


@given(st.text(max_size=30))
def test_quoting_round_trips(text: str):
    from cloudcc.sip.headers import unquote

    assert unquote(quote(text)) == text
