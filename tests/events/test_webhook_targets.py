"""The webhook SSRF guard sees through IPv6 transition forms that reach private space."""

from __future__ import annotations

import ipaddress

import pytest

from cloudcc.events.targets import TargetPolicy, TargetRefused, embedded_ipv4

PRIVATE_IN_DISGUISE = [
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::808:808",  # local-use NAT64 prefix: never public
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "::a00:1",  # IPv4-compatible 10.0.0.1
    "::ffff:10.0.0.1",  # IPv4-mapped
    "fec0::1",  # site-local
    "fed0::1234",  # site-local
]
PUBLIC = ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize("address", PRIVATE_IN_DISGUISE)
def test_transition_forms_of_private_addresses_are_refused(address):
    assert not TargetPolicy().allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_and_their_transition_forms_are_allowed(address):
    assert TargetPolicy().allows(ipaddress.ip_address(address))


def test_embedded_ipv4_of_each_form():
    six = ipaddress.IPv6Address
    assert str(embedded_ipv4(six("64:ff9b::a9fe:a9fe"))) == "169.254.169.254"
    assert str(embedded_ipv4(six("2002:c0a8:101::"))) == "192.168.1.1"
    assert str(embedded_ipv4(six("::7f00:1"))) == "127.0.0.1"
    assert embedded_ipv4(six("2606:4700:4700::1111")) is None


def test_an_allowed_network_admits_its_own_transition_form():
    policy = TargetPolicy(["64:ff9b::/96"])
    assert policy.allows(ipaddress.ip_address("64:ff9b::7f00:1"))


async def test_a_name_resolving_to_a_disguised_private_address_is_refused():
    async def resolver(host: str, port: int) -> list[str]:
        return ["2606:4700:4700::1111", "64:ff9b::a9fe:a9fe"]

    with pytest.raises(TargetRefused):
        await TargetPolicy(resolver=resolver).check("https://hooks.example.com/x")

    answers = iter([["8.8.8.8"], ["2002:7f00:1::"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    policy = TargetPolicy(resolver=rebinding)
    first = await policy.check("https://hooks.example.com/x")
    assert str(first.address) == "8.8.8.8"
    assert first.request_url().host == "8.8.8.8"  # the connection goes to the checked address
    with pytest.raises(TargetRefused):  # checked again before the next attempt
        await policy.check("https://hooks.example.com/x")
