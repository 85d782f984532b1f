"""Turning bytes into requests and responses (RFC 3261 §7, §18.3, grammar §25).

``parse_message`` parses one datagram (or one framed stream message) and checks
what the transaction layer relies on: the start line, the mandatory headers
(§8.1.1) parsed strictly, single-valued headers present once and Content-Length.
``StreamFramer`` cuts a TCP/TLS byte stream into messages by Content-Length and
answers RFC 5626 CRLF keep-alive pings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .exceptions import MessageTooLarge, ParseError, TooManyHeaders
from .headers import _KEY_CACHE, DISPLAY_NAMES, SINGLE_HEADERS, header_key, is_token, parse_int
from .message import Request, Response, SipMessage

_VERSION = "SIP/2.0"
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+\Z", re.I)
_REQUIRED = ("via", "from", "to", "call-id", "cseq")


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile peer from making us allocate without bound."""

    max_message_size: int = 65535
    max_headers: int = 120


DEFAULT_LIMITS = Limits()


def parse_message(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, stream: bool = False
) -> Request | Response:
    """Parse and validate one message.

    With ``stream`` false (a datagram) the body is what Content-Length says, and
    anything after it is ignored (§18.3); without Content-Length the body is the
    rest of the datagram. Raises :class:`ParseError` (``.status`` is the response
    code to use, ``.message`` the partly parsed message when there is one).
    """
    if len(data) > limits.max_message_size:
        raise MessageTooLarge(len(data), limits.max_message_size)
    start = 0
    while data.startswith(b"\r\n", start):  # §7.5: ignore CRLF before the start line
        start += 2
    end = data.find(b"\r\n\r\n", start)
    sep = 4
    if end < 0:
        end = data.find(b"\n\n", start)
        sep = 2
        if end < 0:
            raise ParseError("no empty line after the headers")
    head = data[start:end].decode("utf-8", "surrogateescape")
    if sep == 2:  # bare-LF message: tolerated, normalised
        head = head.replace("\r\n", "\n").replace("\n", "\r\n")
    lines = head.split("\r\n")
    deferred: ParseError | None = None
    try:
        message = _start(lines[0])
    except ParseError as exc:
        if lines[0].startswith("SIP/") or len(lines) < 2:
            raise
        # a broken request line: read the headers anyway so a 400 can be sent
        deferred = exc
        message = Request("INVALID", "sip:invalid")
    headers = message.headers
    if len(lines) > limits.max_headers + 1:
        raise TooManyHeaders(len(lines) - 1, limits.max_headers)
    name = ""
    value = ""
    cache = _KEY_CACHE
    for line in lines[1:]:
        first = line[:1]
        if first == " " or first == "\t":  # folding (§7.3.1): joins with one SP
            if not name:
                raise ParseError("continuation line before any header", message=message)
            value = f"{value} {line.strip()}"
            continue
        if name:
            key = cache.get(name) or _key(name, message)
            values = headers.get(key)
            if values is None:
                headers[key] = [value]
            else:
                values.append(value)
        name, colon, value = line.partition(":")
        if not colon or not name:
            raise ParseError(f"header line without name or colon: {line[:60]!r}", message=message)
        name = name.rstrip(" \t")
        value = value.strip()
    if name:
        key = cache.get(name) or _key(name, message)
        values = headers.get(key)
        if values is None:
            headers[key] = [value]
        else:
            values.append(value)
    if deferred is not None:
        deferred.message = message
        raise deferred
    if isinstance(message, Request) and not lines[0].endswith(" SIP/2.0"):
        # a well-formed request of another SIP version: 505 (RFC 4475 §3.1.2.16)
        raise ParseError("SIP version not supported", 505, message)
    body_start = end + sep
    lengths = headers.get("content-length")
    if lengths is None:
        if stream:
            raise ParseError("Content-Length is mandatory on streams (§18.3)", message=message)
        message.body = data[body_start:]
    else:
        if len(lengths) != 1:
            raise ParseError("more than one Content-Length", message=message)
        try:
            length = parse_int(lengths[0], "Content-Length", limits.max_message_size)
        except ParseError as exc:
            exc.message = message
            raise
        if len(data) - body_start < length:
            raise ParseError("Content-Length larger than the body", message=message)
        message.body = data[body_start : body_start + length]
    validate(message)
    return message


def _start(line: str) -> Request | Response:
    if line.startswith("SIP/"):
        parts = line.split(" ", 2)
        if len(parts) < 2:
            raise ParseError(f"bad status line {line[:80]!r}")
        version, code = parts[0], parts[1]
        if version.upper() != _VERSION:
            raise ParseError(f"unsupported version {version!r}")
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise ParseError(f"bad status code {code[:20]!r}")
        return Response(int(code), parts[2] if len(parts) > 2 else "")
    parts = line.split(" ")
    if len(parts) != 3:
        raise ParseError(f"bad request line {line[:80]!r}")
    method, uri, version = parts
    if not is_token(method):
        raise ParseError(f"bad method {method[:40]!r}")
    if version != _VERSION and not (_VERSION_RE.match(version) and version.upper() != _VERSION):
        raise ParseError(f"bad SIP version {version[:40]!r}")
    if not uri or uri[0] == "<":
        raise ParseError(f"bad Request-URI {uri[:80]!r}")
    return Request(method, uri)


def _key(name: str, message: SipMessage) -> str:
    try:
        key = header_key(name)
    except ParseError as exc:
        exc.message = message
        raise
    if key not in DISPLAY_NAMES:  # keep the spelling of unknown names for output
        if message._names is None:
            message._names = {}
        message._names.setdefault(key, name if name.lower() == key else key)
    return key


def validate(message: Request | Response) -> None:
    """Check what every request/response needs (§8.1.1, §8.2.2, §20); ParseError if not."""
    h = message.headers
    try:
        for key in _REQUIRED:
            if key not in h:
                raise ParseError(f"missing mandatory header {key}")
        for key in SINGLE_HEADERS:
            values = h.get(key)
            if values is not None and len(values) > 1:
                raise ParseError(f"more than one {key} header")
        if not h["call-id"][0] or any(c in h["call-id"][0] for c in " \t"):
            raise ParseError("bad Call-ID")
        message.vias  # noqa: B018 - parses and caches every Via
        branch = message.via.branch
        if branch is not None and not branch:
            raise ParseError("empty branch parameter")
        message.from_  # noqa: B018
        message.to  # noqa: B018
        cseq = message.cseq
        if isinstance(message, Request):
            if cseq.method != message.method:
                raise ParseError(f"CSeq method {cseq.method!r} differs from {message.method!r}")
            if "max-forwards" in h:
                message.max_forwards  # noqa: B018
            if _has_uri_headers(message.uri_text):
                raise ParseError("Request-URI must not contain headers (§19.1.5)")
    except ParseError as exc:
        if exc.message is None:
            exc.message = message
        raise


def _has_uri_headers(uri: str) -> bool:
    # '?' may appear in a SIP user part (RFC 4475 §3.1.1.2), so look after the '@'
    if not uri[:4].lower().startswith("sip"):
        return False
    return "?" in uri[uri.rfind("@") + 1 :]


class StreamFramer:
    """Cut a byte stream into SIP messages (§18.3) and spot keep-alives (RFC 5626 §3.5.1).

    ``feed`` returns complete message byte strings. A CRLF CRLF ping between messages
    sets ``pings`` so the connection can answer CRLF. Framing errors (missing or bad
    Content-Length, oversized message) cannot be resynced: the caller closes the
    connection. Messages complete before the error are still returned, with the error
    kept in ``error`` (the caller answers them, then closes); with none before it, or
    on any later feed, ``feed`` raises it.
    """

    __slots__ = ("_buffer", "error", "limits", "pings")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._buffer = b""
        self.pings = 0
        self.error: ParseError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        if self.error is not None:
            raise self.error
        out: list[bytes] = []
        try:
            self._cut(data, out)
        except ParseError as exc:
            self._buffer = b""
            self.error = exc
            if not out:
                raise
        return out

    def _cut(self, data: bytes, out: list[bytes]) -> None:
        buf = self._buffer + data if self._buffer else data
        while buf:
            # keep-alive pings and stray CRLFs between messages
            if buf[0] in (0x0D, 0x0A):
                stripped = buf.lstrip(b"\r\n")
                removed = buf[: len(buf) - len(stripped)]
                self.pings += removed.count(b"\r\n\r\n")
                if not stripped and removed.endswith(b"\r") and not removed.endswith(b"\n\r"):
                    buf = b"\r"
                    break
                buf = stripped
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.limits.max_message_size:
                    raise MessageTooLarge(len(buf), self.limits.max_message_size)
                break
            length = _content_length(buf[:end])
            total = end + 4 + length
            if total > self.limits.max_message_size:
                raise MessageTooLarge(total, self.limits.max_message_size)
            if len(buf) < total:
                break
            out.append(buf[:total])
            buf = buf[total:]
        self._buffer = buf

    @property
    def buffered(self) -> int:
        return len(self._buffer)


_CL_RE = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I)


def _content_length(head: bytes) -> int:
    found = _CL_RE.findall(head)
    if not found:
        raise ParseError("Content-Length is mandatory on streams (§18.3)")
    if len(found) > 1:
        raise ParseError("more than one Content-Length")
    value = found[0].strip()
    if not value.isdigit() or len(value) > 9:
        raise ParseError(f"bad Content-Length {value[:20]!r}")
    return int(value)
