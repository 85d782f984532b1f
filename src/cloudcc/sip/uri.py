"""SIP and SIPS URIs (RFC 3261 §19.1, grammar in §25.1) and other absolute URIs.

The user part is kept as it appeared on the wire (escaped); comparisons and
address-of-record keys use its unescaped form (§19.1.4), never re-splitting it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from .exceptions import ParseError

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
# hostname / IPv4address (§25.1); '_' tolerated as many deployed hosts use it
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_\-.]+\Z")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
# user / password: unreserved, escaped, user-unreserved (§25.1), plus the
# non-ASCII tolerated by RFC 4475 §3.1.1.2 expectations is NOT allowed here.
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%&=+$,;?/]+\Z")
_PASSWORD_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%&=+$,]*\Z")
_PARAM_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+\Z")
_HEADER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/?:+$]*\Z")

DEFAULT_PORTS = {"sip": 5060, "sips": 5061}


class SipUri:
    """A ``sip:`` or ``sips:`` URI; parameters keep their order, names are lower case."""

    __slots__ = ("headers", "host", "params", "password", "port", "scheme", "user")

    def __init__(
        self,
        host: str,
        user: str | None = None,
        port: int | None = None,
        *,
        scheme: str = "sip",
        password: str | None = None,
        params: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params: dict[str, str | None] = params if params is not None else {}
        self.headers: dict[str, str] = headers if headers is not None else {}

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts.append(":" + self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params.items():
            parts.append(f";{name}" if value is None else f";{name}={value}")
        if self.headers:
            parts.append("?" + "&".join(f"{k}={v}" for k, v in self.headers.items()))
        return "".join(parts)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        # §19.1.4, simplified: components compared unescaped, host case-insensitively,
        # and the parameters that must match when present on either side.
        if not isinstance(other, SipUri):
            return NotImplemented
        if (
            self.scheme.lower() != other.scheme.lower()
            or unescape(self.user or "") != unescape(other.user or "")
            or (self.password or "") != (other.password or "")
            or self.host.lower() != other.host.lower()
            or self.port != other.port
        ):
            return False
        for name in ("transport", "user", "ttl", "method", "maddr"):
            if _lower(self.params.get(name, "")) != _lower(other.params.get(name, "")):
                return False
        for name, value in self.params.items():
            if name in other.params and _lower(value) != _lower(other.params[name]):
                return False
        return {k.lower(): v for k, v in self.headers.items()} == {
            k.lower(): v for k, v in other.headers.items()
        }

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), unescape(self.user or ""), self.host.lower(), self.port))

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter in upper case, if any."""
        value = self.params.get("transport")
        return value.upper() if value else None

    @property
    def is_loose_router(self) -> bool:
        """Whether the URI carries ``lr`` (RFC 3261 §16.12.1.1)."""
        return "lr" in self.params

    @property
    def aor(self) -> str:
        """The address-of-record key: ``scheme:user@host``, user unescaped, host lower case."""
        user = unescape(self.user) if self.user is not None else ""
        scheme = "sips" if self.scheme.lower() == "sips" else "sip"
        return f"{scheme}:{user}@{self.host.lower()}" if user else f"{scheme}:{self.host.lower()}"

    def copy(self) -> SipUri:
        return SipUri(
            self.host,
            self.user,
            self.port,
            scheme=self.scheme,
            password=self.password,
            params=dict(self.params),
            headers=dict(self.headers),
        )

    def without_headers(self) -> SipUri:
        """The URI as allowed in a Request-URI or a Route (§19.1.5 drops ``?headers``)."""
        uri = self.copy()
        uri.headers = {}
        return uri


class AbsoluteUri:
    """A URI of another scheme (``tel:``, ``http:``, unknown ones), kept opaque."""

    __slots__ = ("opaque", "scheme")

    def __init__(self, scheme: str, opaque: str) -> None:
        self.scheme = scheme
        self.opaque = opaque

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"

    def __repr__(self) -> str:
        return f"AbsoluteUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.opaque == other.opaque

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.opaque))

    @property
    def aor(self) -> str:
        return str(self)


Uri = SipUri | AbsoluteUri


def unescape(text: str) -> str:
    """Undo %HH escapes once (never recursively, RFC 3986 §2.4); keeps NUL octets."""
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def parse_uri(text: str) -> Uri:
    """Parse any URI; ``sip``/``sips`` become :class:`SipUri`, others :class:`AbsoluteUri`."""
    colon = text.find(":")
    if colon <= 0:
        raise ParseError(f"URI without scheme: {text[:80]!r}")
    scheme = text[:colon]
    if not _SCHEME_RE.match(scheme):
        raise ParseError(f"bad URI scheme in {text[:80]!r}")
    low = scheme.lower()
    if low not in ("sip", "sips"):
        rest = text[colon + 1 :]
        if not rest or any(c in rest for c in ' \t\r\n<>"'):
            raise ParseError(f"bad {scheme} URI {text[:80]!r}")
        return AbsoluteUri(scheme, rest)
    return _parse_sip(text, colon, low)


def parse_sip_uri(text: str) -> SipUri:
    """Parse a URI that must be ``sip:`` or ``sips:`` (416 otherwise, §8.2.2.1)."""
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise ParseError(f"unsupported URI scheme {uri.scheme!r}", 416)
    return uri


# the common shape (user@host:port;params, no headers) in one match
_SIMPLE_SIP = re.compile(
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/%]+)@)?([A-Za-z0-9_\-.]+)(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()%\[\]/:&+$=]+)*)\Z"
)


def _parse_sip(text: str, colon: int, scheme: str) -> SipUri:
    rest = text[colon + 1 :]
    m = _SIMPLE_SIP.match(rest)
    if m is not None and rest.count("@") <= 1:
        user, host, port_text, ptext = m.groups()
        if user is None or ":" not in user:
            port = _parse_port(port_text, text) if port_text else None
            params: dict[str, str | None] = {}
            if ptext:
                for item in ptext[1:].split(";"):
                    name, eq, value = item.partition("=")
                    if not name or (eq and not value):
                        raise ParseError(f"bad URI parameter {item!r} in {text[:80]!r}")
                    params[name.lower()] = value if eq else None
            return SipUri(host, user, port, scheme=scheme, params=params)
    if not rest:
        raise ParseError("empty SIP URI")
    for c in ' \t\r\n<>"':
        if c in rest:
            raise ParseError(f"illegal character {c!r} in SIP URI {text[:80]!r}")
    user = password = None
    at = rest.find("@")
    if at >= 0:
        if rest.find("@", at + 1) >= 0:
            raise ParseError(f"more than one '@' in {text[:80]!r}")
        userinfo, rest = rest[:at], rest[at + 1 :]
        pcolon = userinfo.find(":")
        if pcolon >= 0:
            user, password = userinfo[:pcolon], userinfo[pcolon + 1 :]
            if not _PASSWORD_RE.match(password):
                raise ParseError(f"bad password in {text[:80]!r}")
        else:
            user = userinfo
        if not user or not _USER_RE.match(user):
            raise ParseError(f"bad user part in {text[:80]!r}")
    headers: dict[str, str] = {}
    q = rest.find("?")
    if q >= 0:
        rest, htext = rest[:q], rest[q + 1 :]
        for item in htext.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq or not _HEADER_RE.match(name) or not _HEADER_RE.match(value):
                raise ParseError(f"bad URI header {item!r}")
            headers[name] = value
    params = {}
    semi = rest.find(";")
    if semi >= 0:
        rest, ptext = rest[:semi], rest[semi + 1 :]
        for item in ptext.split(";"):
            name, eq, value = item.partition("=")
            if not name or not _PARAM_RE.match(name) or (eq and not _PARAM_RE.match(value)):
                raise ParseError(f"bad URI parameter {item!r} in {text[:80]!r}")
            params[name.lower()] = value if eq else None
    host, port = _parse_hostport(rest, text)
    return SipUri(
        host, user, port, scheme=scheme, password=password, params=params, headers=headers
    )


def _parse_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    port: int | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference in {text[:80]!r}")
        host, tail = hostport[: end + 1], hostport[end + 1 :]
        if not _IPV6_RE.match(host):
            raise ParseError(f"bad IPv6 reference in {text[:80]!r}")
        if tail:
            if not tail.startswith(":"):
                raise ParseError(f"bad host in {text[:80]!r}")
            port = _parse_port(tail[1:], text)
        return host, port
    host, pcolon, ptext = hostport.partition(":")
    if not host or not _HOSTNAME_RE.match(host):
        raise ParseError(f"bad host in {text[:80]!r}")
    if pcolon:
        port = _parse_port(ptext, text)
    return host, port


def _parse_port(text: str, uri: str) -> int:
    if not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise ParseError(f"bad port in {uri[:80]!r}")
    return int(text)


def escape_user(user: str) -> str:
    """Escape a user part for a SIP URI (§25.1 ``user``)."""
    out = []
    for ch in user:
        if ch.isascii() and (ch.isalnum() or ch in "-_.!~*'()&=+$,;?/"):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)
