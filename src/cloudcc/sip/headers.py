"""Header field names and the structured header values of RFC 3261 §20 and §25.

Names: canonical spellings, compact forms (§7.3.3 and the extensions that define
one) and which headers are comma-separated lists (§7.3.1). Values: Via, name-addr
(From, To, Contact, Route, Record-Route, Refer-To, ...), CSeq and generic params.
"""

from __future__ import annotations

import re

from .exceptions import ParseError
from .uri import SipUri, Uri, parse_uri

# Canonical spelling of every header this stack reads or writes; key = lower case.
_CANONICAL = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "In-Reply-To",
    "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization", "Path",
    "P-Asserted-Identity", "P-Preferred-Identity", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "Reason", "Record-Route", "Refer-To",
    "Referred-By", "Replaces", "Reply-To", "Require", "Retry-After", "Route", "RSeq",
    "Server", "Session-Expires", "Subject", "Subscription-State", "Supported", "Timestamp",
    "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate", "Diversion",
    "Identity", "Security-Client", "Service-Route",
]  # fmt: skip
DISPLAY_NAMES: dict[str, str] = {name.lower(): name for name in _CANONICAL}

# Compact forms: RFC 3261 §7.3.3, RFC 3515 (r), RFC 3892 (b), RFC 4028 (x),
# RFC 6665 (o, u), RFC 3841 (a, j, d), RFC 4474 (y, n).
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
    "v": "via", "r": "refer-to", "b": "referred-by", "x": "session-expires", "o": "event",
    "u": "allow-events", "a": "accept-contact", "j": "reject-contact",
    "d": "request-disposition", "y": "identity", "n": "identity-info",
}  # fmt: skip

# Headers whose value is a comma-separated list (§7.3.1); others may contain commas.
LIST_HEADERS = frozenset(
    {
        "via", "contact", "route", "record-route", "allow", "supported", "require",
        "proxy-require", "unsupported", "accept", "accept-encoding", "accept-language",
        "allow-events", "content-encoding", "content-language", "path", "service-route",
        "p-asserted-identity", "alert-info", "call-info", "error-info", "in-reply-to",
        "warning", "reason", "diversion", "security-client",
    }
)  # fmt: skip

# Headers that may appear once only; more than one makes a request invalid (§20).
SINGLE_HEADERS = frozenset(
    {"from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type"}
)

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_PARAM_VALUE_CHARS = _TOKEN_CHARS | frozenset("[]:")
_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_LIMIT = 4096


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact form expanded.

    Raises :class:`ParseError` when the name is not a token (§25.1 ``header-name``).
    """
    key = _KEY_CACHE.get(name)
    if key is not None:
        return key
    if not name or not _TOKEN_CHARS.issuperset(name):
        raise ParseError(f"bad header name {name[:60]!r}")
    low = name.lower()
    key = COMPACT_FORMS.get(low, low)
    if key in DISPLAY_NAMES and len(_KEY_CACHE) < _KEY_CACHE_LIMIT:
        _KEY_CACHE[name] = key  # only known names, so the cache stays bounded
    return key


def is_token(text: str) -> bool:
    return bool(text) and _TOKEN_CHARS.issuperset(text)


# ---------------------------------------------------------------- splitting, quoting


def split_list(value: str) -> list[str]:
    """Split a list header value on commas outside quotes and ``<...>`` (§7.3.1)."""
    if "," not in value:
        return [value.strip()]
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",")]
    parts: list[str] = []
    start = 0
    quoted = angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    if quoted:
        raise ParseError(f"unterminated quoted string in {value[:80]!r}")
    parts.append(value[start:].strip())
    return parts


_NEEDS_QUOTING = re.compile(r'["\\\x00-\x08\x0a-\x1f\x7f]')


def quote(text: str) -> str:
    """A quoted-string (§25.1) for ``text``; escapes quote, backslash and controls."""
    if _NEEDS_QUOTING.search(text) is None:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        if ch in '"\\' or (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            out.append("\\")
        out.append(ch)
    out.append('"')
    return "".join(out)


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted-string starting at ``text[start] == '"'``; return (value, end)."""
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ParseError(f"unterminated quoted string in {text[:80]!r}")


def unquote(value: str) -> str:
    """The content of a quoted-string, or the value itself when it is a token."""
    if len(value) >= 2 and value[0] == '"':
        return _read_quoted(value, 0)[0]
    return value


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` (generic-param, §25.1); names lower case, values raw."""
    params: dict[str, str | None] = {}
    if '"' not in text and " " not in text and "\t" not in text:
        # fast path: no quoting, no linear white space
        if not text:
            return params
        if text[0] != ";":
            raise ParseError(f"expected ';' before parameters in {text[:80]!r}")
        for item in text[1:].split(";"):
            name, eq, raw = item.partition("=")
            if not name or not _TOKEN_CHARS.issuperset(name):
                raise ParseError(f"bad parameter {item[:40]!r}")
            if eq:
                if not raw or not _PARAM_VALUE_CHARS.issuperset(raw):
                    raise ParseError(f"bad value of parameter {name[:40]!r}")
                params[name.lower()] = raw
            else:
                params[name.lower()] = None
        return params
    text = text.strip()
    if not text:
        return params
    if not text.startswith(";"):
        raise ParseError(f"expected ';' before parameters in {text[:80]!r}")
    i = 1
    n = len(text)
    while True:
        # name
        while i < n and text[i] in " \t":
            i += 1
        j = i
        while j < n and text[j] in _TOKEN_CHARS:
            j += 1
        name = text[i:j]
        if not name:
            raise ParseError(f"empty parameter in {text[:80]!r}")
        i = j
        while i < n and text[i] in " \t":
            i += 1
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                _, end = _read_quoted(text, i)
                value = text[i:end]
                i = end
            else:
                j = i
                while j < n and (text[j] in _TOKEN_CHARS or text[j] in "[]:"):
                    j += 1
                value = text[i:j]
                if not value:
                    raise ParseError(f"empty value for parameter {name!r}")
                i = j
            while i < n and text[i] in " \t":
                i += 1
        params[name.lower()] = value
        if i >= n:
            return params
        if text[i] != ";":
            raise ParseError(f"unexpected {text[i]!r} in parameters {text[:80]!r}")
        i += 1


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


# ---------------------------------------------------------------------------- Via

_VIA_RE = re.compile(
    r"\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)\s+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_\-.]+)"
    r"(?:\s*:\s*([0-9]{1,5}))?\s*(;.*)?\Z",
    re.S,
)


class Via:
    """One Via header value (§20.42): ``SIP/2.0/transport host[:port];params``."""

    __slots__ = ("host", "params", "port", "transport")

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
    ) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self.params: dict[str, str | None] = params if params is not None else {}

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host.lower(), self.port

    @property
    def rport(self) -> str | None:
        return self.params.get("rport")


def parse_via(value: str) -> Via:
    m = _VIA_RE.match(value)
    if m is None:
        raise ParseError(f"bad Via {value[:80]!r}")
    protocol, version, transport, host, port, ptext = m.groups()
    if protocol.upper() != "SIP":
        raise ParseError(f"bad Via protocol {protocol!r}")
    if version != "2.0":
        raise ParseError(f"Via version {version!r} not supported", 505)
    portnum = int(port) if port else None
    if portnum is not None and not 0 < portnum < 65536:
        raise ParseError(f"bad Via port {port}")
    params = parse_params(ptext) if ptext else {}
    return Via(transport.upper(), host, portnum, params)


def parse_vias(values: list[str]) -> list[Via]:
    return [parse_via(item) for value in values for item in split_list(value)]


# ---------------------------------------------------------------------- name-addr


class NameAddress:
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route...).

    The URI is parsed on first use; ``display`` is the unquoted display name.
    """

    __slots__ = ("_uri", "_uri_text", "display", "params")

    def __init__(
        self,
        uri: Uri | str,
        display: str | None = None,
        params: dict[str, str | None] | None = None,
    ) -> None:
        if isinstance(uri, str):
            self._uri: Uri | None = None
            self._uri_text = uri
        else:
            self._uri = uri
            self._uri_text = ""
        self.display = display
        self.params: dict[str, str | None] = params if params is not None else {}

    @property
    def uri(self) -> Uri:
        if self._uri is None:
            self._uri = parse_uri(self._uri_text)
        return self._uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self._uri_text = ""

    @property
    def uri_text(self) -> str:
        """The URI as text (as received when it was not changed since)."""
        return self._uri_text if self._uri is None or self._uri_text else str(self._uri)

    @property
    def sip_uri(self) -> SipUri:
        """The URI when it is ``sip:``/``sips:``; ParseError(416) otherwise."""
        uri = self.uri
        if not isinstance(uri, SipUri):
            raise ParseError(f"{uri.scheme!r} URI where a SIP URI is required", 416)
        return uri

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        uri = self._uri_text if self._uri is None else str(self._uri)
        if self.display:
            head = self.display if is_token_words(self.display) else quote(self.display)
            return f"{head} <{uri}>{format_params(self.params)}"
        return f"<{uri}>{format_params(self.params)}"

    def __repr__(self) -> str:
        return f"NameAddress({str(self)!r})"

    @staticmethod
    def parse_first(value: str) -> str:
        """The URI (as text) of the first name-addr of a list header value (Route, Path)."""
        return parse_name_address(split_list(value)[0]).uri_text

    def copy(self) -> NameAddress:
        addr = NameAddress(self._uri_text, self.display, dict(self.params))
        addr._uri = self._uri.copy() if isinstance(self._uri, SipUri) else self._uri
        return addr


def is_token_words(text: str) -> bool:
    words = text.split(" ")
    return all(is_token(w) for w in words)


def parse_name_address(value: str) -> NameAddress:
    """Parse one name-addr / addr-spec with params (§20.10 rules on ``;`` apply)."""
    s = value.strip()
    if not s:
        raise ParseError("empty address")
    display: str | None = None
    if s[0] == '"':
        display, end = _read_quoted(s, 0)
        rest = s[end:].lstrip()
        if not rest.startswith("<"):
            raise ParseError(f"expected '<' after display name in {value[:80]!r}")
        return _angle_form(rest, display, value)
    lt = s.find("<")
    if lt >= 0:
        words = s[:lt].strip()
        if words:
            # §25.1 display-name = *(token LWS); RFC 4475 §3.1.1.6 allows no LWS before '<'
            parts = words.split()
            if not all(is_token(w) for w in parts):
                raise ParseError(f"unquoted display name with non-token characters: {words!r}")
            display = " ".join(parts)
        return _angle_form(s[lt:], display, value)
    # addr-spec: parameters after the first ';' belong to the header (§20.10)
    semi = s.find(";")
    uri_text, ptext = (s, "") if semi < 0 else (s[:semi], s[semi:])
    uri_text = uri_text.strip()
    if any(c in uri_text for c in " \t?,"):
        raise ParseError(f"addr-spec with a character that requires <...>: {value[:80]!r}")
    return NameAddress(uri_text, None, parse_params(ptext))


def _angle_form(s: str, display: str | None, value: str) -> NameAddress:
    gt = s.find(">")
    if gt < 0:
        raise ParseError(f"missing '>' in {value[:80]!r}")
    uri_text = s[1:gt]
    if not uri_text or uri_text != uri_text.strip():
        raise ParseError(f"whitespace inside <...> in {value[:80]!r}")
    return NameAddress(uri_text, display, parse_params(s[gt + 1 :]))


def parse_name_addresses(values: list[str]) -> list[NameAddress]:
    return [parse_name_address(item) for value in values for item in split_list(value)]


# --------------------------------------------------------------------------- CSeq

_CSEQ_RE = re.compile(r"\s*([0-9]+)\s+([A-Za-z0-9\-.!%*_+`'~]+)\s*\Z")
MAX_CSEQ = 2**32 - 1


class CSeq:
    __slots__ = ("method", "seq")

    def __init__(self, seq: int, method: str) -> None:
        self.seq = seq
        self.method = method

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"

    def __repr__(self) -> str:
        return f"CSeq({self.seq}, {self.method!r})"


def parse_cseq(value: str) -> CSeq:
    m = _CSEQ_RE.match(value)
    if m is None:
        raise ParseError(f"bad CSeq {value[:80]!r}")
    seq = int(m.group(1)) if len(m.group(1)) < 12 else MAX_CSEQ + 1
    if seq > MAX_CSEQ:  # §8.1.1.5: a 32-bit unsigned integer
        raise ParseError(f"CSeq number out of range in {value[:80]!r}")
    return CSeq(seq, m.group(2))


def parse_int(value: str, name: str, limit: int = MAX_CSEQ) -> int:
    """A non-negative decimal header value (Max-Forwards, Expires, Content-Length...)."""
    v = value.strip()
    if not v.isdigit() or not v.isascii() or len(v) > 10 or int(v) > limit:
        raise ParseError(f"bad {name} value {value[:40]!r}")
    return int(v)


def parse_option_tags(values: list[str]) -> list[str]:
    """Option tags of Supported / Require / Proxy-Require / Unsupported (§20)."""
    return [t for value in values for t in (p.strip() for p in value.split(",")) if t]
