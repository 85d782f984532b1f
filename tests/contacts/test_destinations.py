"""Where calls may go, as pure rules: the dial plan, the allowed SIP destinations, and which
failed attempts on a trunk move a call on to the next one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudcc.contacts.destinations import (
    DialPlan,
    SipDestination,
    check_dial_plan_settings,
    check_sip_destinations,
    international_form,
    is_listed,
    sip_target,
)
from cloudcc.contacts.exceptions import BadTarget, DestinationRefused
from cloudcc.contacts.session import DialOutcome


def test_the_default_plan_allows_national_numbers_and_nothing_abroad_or_premium():
    plan = DialPlan()
    plan.check("15551234")
    plan.check("0301234567")
    for number in ("+447700900123", "0044770090012", "19005551234", "+19765550000", "0900123"):
        with pytest.raises(DestinationRefused):
            plan.check(number)


def test_listed_countries_are_allowed_and_blocked_ranges_win():
    plan = DialPlan.from_settings({"international": ["+44", "+1"], "blocked": ["+1900"]})
    plan.check("+447700900123")
    plan.check("0014155550100")  # 00 is the international prefix
    with pytest.raises(DestinationRefused, match="blocked range"):
        plan.check("+19005550100")
    with pytest.raises(DestinationRefused, match=r"\+33"):
        plan.check("+33123456789")


def test_a_plan_without_national_numbers_refuses_them():
    plan = DialPlan.from_settings({"national": False, "international": ["+"]})
    plan.check("+861012345678")
    with pytest.raises(DestinationRefused, match="national"):
        plan.check("5551234")


def test_only_phone_numbers_are_dialed():
    with pytest.raises(BadTarget):
        DialPlan().check("bob")


@given(st.from_regex(r"\+?[0-9]{1,15}", fullmatch=True))
def test_the_international_form_keeps_the_digits(number):
    e164 = international_form(number)
    if number.startswith("+"):
        assert e164 == number
    elif number.startswith("00") and len(number) > 2:
        assert e164 == "+" + number[2:]
    else:
        assert e164 is None


def test_stored_plans_are_checked():
    assert check_dial_plan_settings({"international": ["+44"]})["national"] is True
    with pytest.raises(BadTarget):
        check_dial_plan_settings({"international": ["44"]})


def test_sip_destinations_match_host_port_wildcard_and_network():
    entries = check_sip_destinations(
        ["127.0.0.1:46999", "pbx.example.com", "*.corp.example", "10.1.0.0/16", "[::1]:5070"]
    )
    assert entries == [
        "127.0.0.1:46999",
        "pbx.example.com",
        "*.corp.example",
        "10.1.0.0/16",
        "[::1]:5070",
    ]
    allowed = [
        "sip:x@127.0.0.1:46999",
        "sip:100@pbx.example.com",
        "sip:100@pbx.example.com:5080",
        "sip:a@edge.corp.example",
        "sip:a@10.1.2.3:5062",
        "sip:a@[::1]:5070",
    ]
    refused = [
        "sip:x@127.0.0.1:46998",
        "sip:x@127.0.0.1",
        "sip:x@evil.example.com",
        "sip:x@corp.example.evil",
        "sip:a@10.2.0.1",
        "sip:a@[::1]:5060",
    ]
    for uri in allowed:
        assert is_listed(sip_target(uri), entries), uri
    for uri in refused:
        assert not is_listed(sip_target(uri), entries), uri


def test_a_port_given_in_the_entry_is_required():
    entry = SipDestination.parse("pbx.example.com:5080")
    assert entry.allows("pbx.example.com", 5080)
    assert not entry.allows("pbx.example.com", None)  # 5060


@pytest.mark.parametrize("text", ["", "a b", "host:99999", "10.0.0.0/33", "x@y"])
def test_malformed_destinations_are_refused(text):
    with pytest.raises(BadTarget):
        SipDestination.parse(text)


@pytest.mark.parametrize(
    ("outcome", "next_trunk"),
    [
        (DialOutcome("failed", 503), True),
        (DialOutcome("failed", 500), True),
        (DialOutcome("timeout", 408), True),  # the carrier gave up before any ringing
        (DialOutcome("timeout", None), True),  # nothing came back at all
        (DialOutcome("timeout", 408, rang=True), False),  # rang, nobody answered
        (DialOutcome("rejected", 486), False),
        (DialOutcome("failed", 404), False),
        (DialOutcome("rejected", 603), False),
        (DialOutcome("answered", 200), False),
    ],
)
def test_a_call_moves_to_the_next_trunk_only_when_the_trunk_failed(outcome, next_trunk):
    assert outcome.fails_over is next_trunk
