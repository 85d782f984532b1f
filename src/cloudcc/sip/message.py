"""SIP requests and responses (RFC 3261 §7) with lazily parsed, cached header values.

Header values are stored as the strings received (unfolded), keyed by lower-case
name; the structured views (``via``, ``from_``, ``cseq``...) parse on first access.
``encode`` writes canonical names and always recomputes Content-Length.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

from .exceptions import ParseError
from .headers import (
    DISPLAY_NAMES,
    CSeq,
    NameAddress,
    Via,
    header_key,
    parse_cseq,
    parse_int,
    parse_name_address,
    parse_name_addresses,
    parse_option_tags,
    parse_vias,
    split_list,
)
from .uri import Uri, parse_uri

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip

_PREFIX = os.urandom(4).hex()
_COUNTER = itertools.count(1)


def new_branch() -> str:
    """A branch unique in space and time, with the RFC 3261 magic cookie (§8.1.1.7)."""
    return f"{MAGIC_COOKIE}{_PREFIX}{next(_COUNTER):x}"


def new_tag() -> str:
    """A From/To tag (§19.3): random, at least 32 bits."""
    return secrets.token_hex(6)


def new_call_id(host: str = "") -> str:
    """A globally unique Call-ID (§8.1.1.4)."""
    return f"{secrets.token_hex(12)}@{host}" if host else secrets.token_hex(12)


class SipMessage:
    """Headers and body shared by requests and responses."""

    __slots__ = ("_names", "_parsed", "body", "headers")

    def __init__(self, headers: dict[str, list[str]] | None = None, body: bytes = b"") -> None:
        self.headers: dict[str, list[str]] = headers if headers is not None else {}
        self.body = body
        self._parsed: dict[str, Any] = {}
        self._names: dict[str, str] | None = None  # spellings of unknown header names

    # ------------------------------------------------------------- raw access
    def get(self, name: str) -> str | None:
        """The first value of a header, as received (folding undone), or None."""
        values = self.headers.get(header_key(name))
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every value of a header; list headers are split on their commas."""
        key = header_key(name)
        values = self.headers.get(key, [])
        if key in _SPLIT_ON_READ:
            return [item for v in values for item in split_list(v)]
        return list(values)

    def __contains__(self, name: str) -> bool:
        return header_key(name) in self.headers

    def set(self, name: str, value: object) -> None:
        """Replace every value of a header by ``value``."""
        key = self._key(name)
        self.headers[key] = [str(value)]
        self._parsed.pop(key, None)

    def add(self, name: str, value: object, *, first: bool = False) -> None:
        """Add a header value, at the end or (``first``) before the existing ones."""
        key = self._key(name)
        values = self.headers.setdefault(key, [])
        if first:
            values.insert(0, str(value))
        else:
            values.append(str(value))
        self._parsed.pop(key, None)

    def remove(self, name: str) -> None:
        key = header_key(name)
        self.headers.pop(key, None)
        self._parsed.pop(key, None)

    def _key(self, name: str) -> str:
        key = header_key(name)
        if key not in DISPLAY_NAMES and name.lower() == key:
            if self._names is None:
                self._names = {}
            self._names.setdefault(key, name)
        return key

    def header_items(self) -> Iterator[tuple[str, str]]:
        """(display name, value) for every header value, in order."""
        names = self._names or {}
        for key, values in self.headers.items():
            name = DISPLAY_NAMES.get(key) or names.get(key) or key
            for value in values:
                yield name, value

    # ------------------------------------------------------ structured views
    def _single(self, key: str) -> str:
        values = self.headers.get(key)
        if not values:
            raise ParseError(f"missing {DISPLAY_NAMES.get(key, key)} header")
        return values[0]

    @property
    def vias(self) -> list[Via]:
        vias = self._parsed.get("via")
        if vias is None:
            values = self.headers.get("via")
            if not values:
                raise ParseError("missing Via header")
            vias = self._parsed["via"] = parse_vias(values)
        return vias

    @property
    def via(self) -> Via:
        """The top Via."""
        return self.vias[0]

    def replace_top_via(self, via: Via) -> None:
        values = self.headers["via"]
        items = split_list(values[0])
        items[0] = str(via)
        values[0] = ", ".join(items)
        vias = self._parsed.get("via")
        if vias is not None:
            vias[0] = via

    @property
    def from_(self) -> NameAddress:
        value = self._parsed.get("from")
        if value is None:
            value = self._parsed["from"] = parse_name_address(self._single("from"))
        return value

    @property
    def to(self) -> NameAddress:
        value = self._parsed.get("to")
        if value is None:
            value = self._parsed["to"] = parse_name_address(self._single("to"))
        return value

    @property
    def call_id(self) -> str:
        return self._single("call-id")

    @property
    def cseq(self) -> CSeq:
        value = self._parsed.get("cseq")
        if value is None:
            value = self._parsed["cseq"] = parse_cseq(self._single("cseq"))
        return value

    @property
    def max_forwards(self) -> int | None:
        values = self.headers.get("max-forwards")
        return parse_int(values[0], "Max-Forwards", 255) if values else None

    @property
    def expires(self) -> int | None:
        values = self.headers.get("expires")
        return parse_int(values[0], "Expires") if values else None

    @property
    def contacts(self) -> list[NameAddress]:
        """Contact values; a lone ``*`` (REGISTER, §10.2.2) is returned as an empty list."""
        value = self._parsed.get("contact")
        if value is None:
            values = self.headers.get("contact", [])
            value = [] if self.is_wildcard_contact else parse_name_addresses(values)
            self._parsed["contact"] = value
        return value

    @property
    def is_wildcard_contact(self) -> bool:
        values = self.headers.get("contact")
        return values is not None and len(values) == 1 and values[0].strip() == "*"

    @property
    def routes(self) -> list[NameAddress]:
        return parse_name_addresses(self.headers.get("route", []))

    @property
    def record_routes(self) -> list[NameAddress]:
        return parse_name_addresses(self.headers.get("record-route", []))

    @property
    def content_type(self) -> str | None:
        """The media type without parameters, lower case (``application/sdp``)."""
        values = self.headers.get("content-type")
        if not values:
            return None
        return values[0].split(";", 1)[0].strip().lower()

    def option_tags(self, name: str) -> list[str]:
        """Option tags of Supported, Require, Proxy-Require or Unsupported."""
        return parse_option_tags(self.headers.get(header_key(name), []))

    def allows(self, method: str) -> bool:
        """Whether the Allow header lists ``method``."""
        allow = parse_option_tags(self.headers.get("allow", []))
        return method.upper() in (m.upper() for m in allow)

    # ------------------------------------------------------------------ output
    def _start_line(self) -> str:
        raise NotImplementedError

    def encode(self) -> bytes:
        """The message on the wire, Content-Length computed from the body."""
        lines = [self._start_line()]
        names = self._names
        for key, values in self.headers.items():
            if key == "content-length":
                continue
            name = DISPLAY_NAMES.get(key) or (names.get(key) if names else None) or key
            for value in values:
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}\r\n\r\n")
        head = "\r\n".join(lines).encode("utf-8", "surrogateescape")
        return head + self.body if self.body else head

    def __bytes__(self) -> bytes:
        return self.encode()

    def copy_headers(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.headers.items()}


# List headers the public get_all() splits; Via/Contact/... are parsed through views.
_SPLIT_ON_READ = frozenset(
    {"via", "contact", "route", "record-route", "allow", "supported", "require",
     "proxy-require", "unsupported", "accept", "path", "p-asserted-identity"}
)  # fmt: skip


class Request(SipMessage):
    """A SIP request; the Request-URI is parsed on first access of ``uri``."""

    __slots__ = ("_uri", "method", "uri_text")

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: dict[str, list[str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        if isinstance(uri, str):
            self.uri_text = uri
            self._uri: Uri | None = None
        else:
            self.uri_text = str(uri)
            self._uri = uri

    @property
    def uri(self) -> Uri:
        if self._uri is None:
            self._uri = parse_uri(self.uri_text)
        return self._uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self.uri_text = str(value)

    def _start_line(self) -> str:
        return f"{self.method} {self.uri_text} SIP/2.0"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri_text}>"


class Response(SipMessage):
    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: dict[str, list[str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = REASON_PHRASES.get(status, "") if reason is None else reason

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, object]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to ``request`` (§8.2.6.2): Via, From, To, Call-ID, CSeq copied.

    ``to_tag`` is added to To when the request's To has none (never for 100, §8.2.6.2).
    """
    src = request.headers
    h: dict[str, list[str]] = {"via": list(src["via"])}
    h["from"] = list(src["from"])
    to = src["to"][0]
    if to_tag and status != 100 and request.to.tag is None:
        to = f"{to};tag={to_tag}"
    h["to"] = [to]
    h["call-id"] = list(src["call-id"])
    h["cseq"] = list(src["cseq"])
    response = Response(status, reason, h, body)
    for name, value in headers:
        response.add(name, value)
    if content_type:
        response.set("content-type", content_type)
    return response
