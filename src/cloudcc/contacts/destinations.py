"""Where a tenant's calls may go: its dial plan for outside numbers, its allowed SIP addresses.

Toll fraud and SSRF both start with "make the node call there". An outside number is dialed
only through the tenant's trunks and only when the dial plan allows it (national numbers,
listed country prefixes, never the blocked premium and satellite ranges); a direct ``sip:``
address only when an admin listed it (a host, ``host:port``, ``*.domain`` or a network) or it
is one of the tenant's own registered phones (checked by the caller). Pure functions: the
voice service feeds them the tenant's settings.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudcc.contacts.exceptions import BadTarget, DestinationRefused
from cloudcc.sip.exceptions import ParseError
from cloudcc.sip.uri import SipUri, parse_sip_uri

NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")

# Ranges that cost the caller a fortune or feed revenue-share fraud: North American 900/976
# (also Australia's 1900), 0900 in much of Europe, international premium rate (+979) and
# the satellite and global networks (+870, +881, +882, +883). A tenant edits the list.
DEFAULT_BLOCKED = ("+1900", "+1976", "1900", "1976", "0900", "+979", "+870", "+881", "+882",
                   "+883")  # fmt: skip


@dataclass(frozen=True)
class DialPlan:
    """Which outside numbers may be dialed.

    ``national``: numbers dialed without an international prefix (no ``+`` or ``00``);
    ``international``: E.164 prefixes allowed (``+44``, ``+4930``; ``+`` allows every
    country); ``blocked``: prefixes never dialed, matched against the number as dialed and
    in its ``+`` form, whatever the two others allow."""

    national: bool = True
    international: tuple[str, ...] = ()
    blocked: tuple[str, ...] = DEFAULT_BLOCKED

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> DialPlan:
        """The plan a tenant stored (its ``dial_plan``); missing keys keep the defaults."""
        settings = settings or {}
        default = cls()
        return cls(
            national=bool(settings.get("national", default.national)),
            international=tuple(settings.get("international", default.international)),
            blocked=tuple(settings.get("blocked", default.blocked)),
        )

    def to_settings(self) -> dict[str, Any]:
        return {
            "national": self.national,
            "international": list(self.international),
            "blocked": list(self.blocked),
        }

    def check(self, number: str) -> None:
        """Raise DestinationRefused unless ``number`` may be dialed."""
        if not NUMBER.match(number):
            raise BadTarget(f"{number!r} is not a phone number (digits, * and #, + in front)")
        e164 = international_form(number)
        for prefix in self.blocked:
            if prefix and (number.startswith(prefix) or (e164 or "").startswith(prefix)):
                raise DestinationRefused(
                    f"{number} is in the blocked range {prefix} of the tenant's dial plan; "
                    "an admin can change dial_plan.blocked (PATCH /tenant)"
                )
        if e164 is None:
            if not self.national:
                raise DestinationRefused(
                    f"the tenant's dial plan does not allow national numbers ({number}); an "
                    "admin can set dial_plan.national (PATCH /tenant)"
                )
            return
        if not any(e164.startswith(prefix) for prefix in self.international):
            raise DestinationRefused(
                f"the tenant's dial plan does not allow {e164}: an admin can add its country "
                "prefix to dial_plan.international (PATCH /tenant)"
            )


def international_form(number: str) -> str | None:
    """``+CC...`` for a number dialed internationally (``+`` or ``00``), else None."""
    if number.startswith("+"):
        return number
    if number.startswith("00") and len(number) > 2:
        return "+" + number[2:]
    return None


def check_dial_plan_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a stored dial plan's prefixes; the normalised settings."""
    plan = DialPlan.from_settings(settings)
    for prefix in plan.international:
        if not re.match(r"^\+[0-9]{0,15}$", prefix):
            raise BadTarget(f"international prefix {prefix!r} must be + and digits (e.g. +44)")
    for prefix in plan.blocked:
        if not re.match(r"^\+?[0-9*#]{1,32}$", prefix):
            raise BadTarget(f"blocked prefix {prefix!r} must be digits, optionally with +")
    return plan.to_settings()


# --- direct SIP destinations -------------------------------------------------------------------


@dataclass(frozen=True)
class SipDestination:
    """One allowed entry: a host name or address (``*.`` for subdomains), an optional port,
    or an IP network."""

    host: str | None = None
    port: int | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, text: str) -> SipDestination:
        entry = text.strip().lower()
        if entry.startswith(("sip:", "sips:")):
            entry = entry.split(":", 1)[1].split("@")[-1].split(";")[0]
        if "/" in entry:
            try:
                return cls(network=ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise BadTarget(f"{text!r} is not a network (like 10.1.0.0/16)") from exc
        host, port = _split_host_port(entry)
        if not host or not re.match(r"^(\*\.)?[a-z0-9.\-:\[\]]+$", host):
            raise BadTarget(
                f"{text!r} is not a SIP destination (host, host:port, *.domain or a network)"
            )
        return cls(host=host.strip("[]"), port=port)

    def allows(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        if self.port is not None and (port or 5060) != self.port:
            return False
        if self.host is not None and self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def __str__(self) -> str:
        if self.network is not None:
            return str(self.network)
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host or ""
        return f"{host}:{self.port}" if self.port else host


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        return host, _port(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, _port(port)
    return entry, None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise BadTarget(f"{text!r} is not a port")
    return int(text)


def check_sip_destinations(entries: Iterable[str]) -> list[str]:
    """Validate a tenant's allowed SIP destinations; their normalised text."""
    return [str(SipDestination.parse(entry)) for entry in entries]


def sip_target(uri: str) -> SipUri:
    """The parsed SIP URI of a destination, or BadTarget."""
    try:
        return parse_sip_uri(uri)
    except ParseError as exc:
        raise BadTarget(f"{uri!r} is not a SIP URI") from exc


def is_listed(uri: SipUri, entries: Iterable[str]) -> bool:
    """Whether an admin listed the URI's host (and port) among the tenant's destinations."""
    for entry in entries:
        try:
            if SipDestination.parse(entry).allows(uri.host, uri.port):
                return True
        except BadTarget:
            continue
    return False
