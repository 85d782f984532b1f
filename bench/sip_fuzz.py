"""Fuzz the SIP parsers with hypothesis for a fixed time (``--quick``: 20 s, else 180 s).

Run from the repo root: ``python bench/sip_fuzz.py``. Inputs are the RFC 4475 torture
messages and messages our serializer writes, mutated (bytes flipped, inserted, cut,
lines duplicated, swapped or folded) plus random bytes. Properties checked:

* ``parse_message`` returns a message or raises ParseError, nothing else;
* every structured view of a parsed message (Vias, From/To/Contact URIs, CSeq,
  Max-Forwards, Expires, Require, the Request-URI, the SDP body) raises only
  ParseError/SdpError, and what ``encode`` writes parses again;
* the stream framer and the digest/SDP parsers raise only their own errors.

A failing input is printed and saved under bench/out/; the fix gets a regression
test in tests/sip/test_fuzz_regressions.py.
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
CORPUS = [p.read_bytes() for p in sorted(TORTURE.glob("*.dat"))]
OUT = Path(ROOT) / "bench" / "out"


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
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 6))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == 0 and data:  # flip a byte
            data[at] = draw(st.integers(0, 255))
        elif kind == 1:  # insert junk
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == 2:  # cut a slice
            del data[at : at + draw(st.integers(1, 40))]
        else:  # line surgery: duplicate, swap, fold, or insert a special token
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            if kind == 3:
                lines.insert(i, lines[i])
            elif kind == 4 and len(lines) > 2:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            elif kind == 5:
                lines[i] = lines[i].replace(b" ", b"\r\n ", 1)
            else:
                token = draw(st.sampled_from(SPECIAL))
                pos = draw(st.integers(0, len(lines[i])))
                lines[i] = lines[i][:pos] + token + lines[i][pos:]
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
