"""Fuzz the SIP parsers with hypothesis for a fixed time (``--quick``: 20 s, else 180 s).

Run from the repo root: ``python bench/sip_fuzz.py``. Inputs are the RFC 4475 torture
messages and messages our serializer writes, mutated (bytes flipped, inserted, cut,
lines duplicated, swapped or folded) plus random bytes. Properties checked:

* ``parse_message`` returns a message or raises ParseError, nothing else;
* every structured view of a parsed message (Vias, From/To/Contact URIs, CSeq,
  Max-Forwards, Expires, Require, the Request-URI, the SDP body) raises only
  ParseError/SdpError, and what ``encode`` writes parses again;
* the stream framer and the digest/SDP parsers raise only their own errors.

A failing input is printed and saved under bench/out/ (its fix then gets a regression
test in tests/sip/). The harness was checked against a planted bug, which it finds in
seconds; on the real parsers it has found nothing so far.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _bench import ROOT, Report, parse_args
from cloudcc.sip.auth import parse_authorization, parse_challenge
from cloudcc.sip.exceptions import AuthError, ParseError, SdpError
from cloudcc.sip.message import Request
from cloudcc.sip.parser import Limits, StreamFramer, parse_message
from cloudcc.sip.sdp import parse_sdp

TORTURE = Path(ROOT) / "tests" / "data" / "sip" / "rfc4475"
OUT = Path(ROOT) / "bench" / "out"

_SDP = (
    "v=0\r\no=u 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
)


def _typical(method: str, extra: str = "", body: str = "") -> bytes:
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} sip:1000@10.0.0.2:5060;transport=udp SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-1-2;rport\r\n"
        '"Agent, Alice" <sip:alice@pbx.example>;tag=a1\r\n'.replace('"Agent', 'From: "Agent', 1)
        + "To: <sip:1000@10.0.0.2>\r\nCall-ID: 1-2@10.0.0.1\r\n"
        f"CSeq: 7 {method}\r\nContact: <sip:alice@10.0.0.1:5061;transport=udp>;expires=60\r\n"
        f"Max-Forwards: 70\r\n{extra}{ctype}Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


# valid starting points: the RFC 4475 messages and what phones and SIPp send
CORPUS = [p.read_bytes() for p in sorted(TORTURE.glob("*.dat"))] + [
    _typical("INVITE", "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n", _SDP),
    _typical(
        "REGISTER",
        'Authorization: Digest username="alice", realm="pbx", '
        'nonce="1.2", uri="sip:pbx", response="00", qop=auth, nc=00000001, cnonce="x"\r\n',
    ),
    _typical("REFER", "Refer-To: <sip:2000@pbx?Replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n"),
    _typical("INFO", "", "Signal=5\r\nDuration=160\r\n"),
    _typical("BYE", "Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"),
]
# values a field is replaced by
INTERESTING = [
    b"", b" ", b"0", b"-1", b"4294967296", b"99999999999999999999", b"9" * 300, b"a" * 2000,
    b"<sip:a@b>", b"<sip:a@b", b'"unterminated', b";;;", b",,,", b"sip:%00@h", b"sip:@",
    b"\xff\xfe", b"SIP/2.0/UDP h", b"SIP/2.0/UDP [::1]:0", b"<>", b"1 INVITE 2", b"*",
    b'Digest a="b', b"Digest realm=", b"tel:+1", b"sips:[fe80::1%25eth0]:5061", b"\t;\t",
]  # fmt: skip


SPECIAL = [b";", b",", b"<", b">", b'"', b"\\", b":", b"%", b"@", b"=", b"\x00", b"\xff", b"9" * 30]


class Found(Exception):
    """A property failed for one input."""


def exercise(data: bytes) -> None:
    """Parse and poke every view; only the package's own errors may come out."""
    try:
        message = parse_message(data)
    except ParseError:
        return
    except Exception as exc:
        raise Found(f"parse_message raised {exc!r}") from exc
    views = [
        lambda: message.vias,
        lambda: message.from_.uri,
        lambda: message.to.uri,
        lambda: [c.uri for c in message.contacts],
        lambda: [r.uri for r in message.routes],
        lambda: message.cseq,
        lambda: message.max_forwards,
        lambda: message.expires,
        lambda: message.option_tags("Require"),
        lambda: message.content_type,
    ]
    if isinstance(message, Request):
        views.append(lambda: message.uri)
    for view in views:
        try:
            view()
        except ParseError:
            pass
        except Exception as exc:
            raise Found(f"a message view raised {exc!r}") from exc
    if message.body and message.content_type == "application/sdp":
        try:
            parse_sdp(message.body)
        except SdpError:
            pass
        except Exception as exc:
            raise Found(f"parse_sdp raised {exc!r}") from exc
    try:
        again = message.encode()
    except Exception as exc:
        raise Found(f"encode raised {exc!r}") from exc
    try:
        parse_message(again)
    except ParseError as exc:
        raise Found(f"our own encoding does not parse: {exc.detail}") from exc


def frame(data: bytes, cuts: list[int]) -> None:
    framer = StreamFramer(Limits(max_message_size=4096))
    pos = 0
    try:
        for cut in [*sorted(cuts), len(data)]:
            for message in framer.feed(data[pos:cut]):
                exercise(message)
            pos = cut
    except ParseError:
        return
    except Found:
        raise
    except Exception as exc:
        raise Found(f"StreamFramer raised {exc!r}") from exc


def small_parsers(text: str) -> None:
    for parse in (parse_authorization, parse_challenge):
        try:
            parse(text)
        except AuthError:
            pass
        except Exception as exc:
            raise Found(f"{parse.__name__} raised {exc!r}") from exc
    try:
        parse_sdp(text)
    except SdpError:
        pass
    except Exception as exc:
        raise Found(f"parse_sdp raised {exc!r}") from exc


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from("vvvvttfidsxc"))
        lines = bytes(data).split(b"\r\n")
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if kind == "v" and b":" in line:  # replace a header value with an odd one
            name = line.split(b":", 1)[0]
            lines[i] = name + b": " + draw(st.sampled_from(INTERESTING))
        elif kind == "t":  # insert a special token somewhere in a line
            pos = draw(st.integers(0, len(line)))
            lines[i] = line[:pos] + draw(st.sampled_from(SPECIAL)) + line[pos:]
        elif kind == "f":  # fold the line at a space
            lines[i] = line.replace(b" ", b"\r\n ", 1)
        elif kind == "i":  # duplicate a line
            lines.insert(i, line)
        elif kind == "d" and len(lines) > 2:  # drop a line
            del lines[i]
        elif kind == "s" and len(lines) > 2:  # swap two lines
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "x" and line:  # flip a byte
            pos = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:pos] + bytes([draw(st.integers(0, 255))]) + line[pos + 1 :]
        elif kind == "c":  # cut the message short
            data = bytearray(bytes(data)[: draw(st.integers(0, len(data)))])
            continue
        data = bytearray(b"\r\n".join(lines))
    return bytes(data)


def run_for(seconds: float) -> tuple[int, list[str]]:
    examples = 0
    failures: list[str] = []

    def record(kind: str, value: object, exc: Found) -> None:
        failures.append(f"{kind}: {exc}\ninput: {value!r}\n{traceback.format_exc()}")

    common = settings(
        max_examples=500,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )

    @common
    @given(mutated())
    def mutations(data: bytes) -> None:
        nonlocal examples
        examples += 1
        try:
            exercise(data)
        except Found as exc:
            record("mutation", data, exc)

    @common
    @given(st.binary(max_size=800))
    def random_bytes(data: bytes) -> None:
        nonlocal examples
        examples += 1
        try:
            exercise(data)
        except Found as exc:
            record("random", data, exc)

    @common
    @given(mutated(), st.lists(st.integers(0, 3000), max_size=6))
    def streams(data: bytes, cuts: list[int]) -> None:
        nonlocal examples
        examples += 1
        try:
            frame(b"\r\n\r\n" + data + CORPUS[0], [c % (len(data) + 1) for c in cuts])
        except Found as exc:
            record("stream", data, exc)

    @common
    @given(st.text(max_size=200))
    def fragments(text: str) -> None:
        nonlocal examples
        examples += 1
        try:
            small_parsers("Digest " + text)
            small_parsers(text)
        except Found as exc:
            record("fragment", text, exc)

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not failures:
        for test in (mutations, random_bytes, streams, fragments):
            test()
            if time.monotonic() >= deadline:
                break
    return examples, failures


def main() -> None:
    args = parse_args("Fuzz the SIP message, stream, digest and SDP parsers with hypothesis")
    seconds = 20.0 if args.quick else 180.0
    started = time.monotonic()
    examples, failures = run_for(seconds)
    elapsed = time.monotonic() - started
    print(f"{examples} inputs in {elapsed:.0f} s, {len(failures)} failing")
    if failures:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "sip_fuzz_failures.txt"
        path.write_text("\n\n".join(failures))
        print(failures[0][:3000])
        print(f"all failures written to {path}")
    report = Report()
    report.add("sip_fuzz_inputs", examples, "inputs")
    report.add("sip_fuzz_failures", len(failures), "failures", "<=", 0)
    report.print()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
