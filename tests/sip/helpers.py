"""Test helpers for the SIP package: free ports, a bounded SIPp runner, a tiny UDP peer.

The UDP/TCP peers speak real SIP bytes at the network boundary (STYLE.md: doubles at
the boundary only); SIPp and baresip are started with ``timeout`` and always reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"
SCENARIOS = DATA / "sipp"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIPp binds both in TCP mode)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port")


@dataclass
class SippResult:
    returncode: int
    output: str
    error_log: str
    message_log: str

    def errors(self) -> str:
        return self.error_log[-3000:]

    def messages(self) -> str:
        return self.message_log

    def stat(self, name: str) -> int:
        """A cumulative counter of the final screen, e.g. "Successful call"."""
        found = re.findall(rf"{re.escape(name)}\s*\|\s*\d+\s*\|\s*(\d+)", self.output)
        return int(found[-1]) if found else -1


async def run_sipp(
    target_port: int,
    *,
    scenario: str | None = None,
    builtin: str | None = None,
    calls: int = 1,
    rate: float = 10,
    transport: str = "u1",
    extra: Sequence[str] = (),
    time_limit: float = 60,
    local_ip: str = "127.0.0.1",
) -> SippResult:
    """Run SIPp as a client against 127.0.0.1:target_port and wait for it."""
    tmp = tempfile.TemporaryDirectory(prefix="sipp-")
    work = Path(tmp.name)
    args = ["timeout", "-k", "5", str(int(time_limit)), "sipp", f"127.0.0.1:{target_port}"]
    args += ["-sn", builtin] if builtin else ["-sf", str(SCENARIOS / f"{scenario}.xml")]
    args += ["-i", local_ip, "-p", str(free_port()), "-t", transport]
    args += ["-m", str(calls), "-r", str(rate), "-nostdin", "-trace_err", "-trace_msg"]
    args += ["-timeout", str(int(time_limit - 5)), "-timeout_error", "-max_socket", "100"]
    args += list(extra)
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=work,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await proc.communicate()
        return SippResult(
            proc.returncode or 0,
            out.decode(errors="replace"),
            _read_logs(work, "*_errors.log"),
            _read_logs(work, "*_messages.log"),
        )
    except asyncio.CancelledError:
        await stop_process(proc)
        raise
    finally:
        tmp.cleanup()


def _read_logs(directory: Path, pattern: str) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(directory.glob(pattern)))


class SippServer:
    """SIPp as a UAS (built-in or our scenario) in the background, on a free port."""

    def __init__(
        self,
        scenario: str | None = None,
        builtin: str | None = None,
        calls: int = 1,
        time_limit: float = 60,
        extra: Sequence[str] = (),
    ) -> None:
        self.scenario = scenario
        self.builtin = builtin
        self.calls = calls
        self.time_limit = time_limit
        self.extra = list(extra)
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="sipp-uas-")
        self.workdir = Path(self._tmp.name)
        self._logs = ("", "")  # errors and messages, kept once the directory is gone
        self.proc: asyncio.subprocess.Process | None = None
        self.output = ""

    async def start(self) -> SippServer:
        args = ["timeout", "-k", "5", str(int(self.time_limit)), "sipp"]
        if self.builtin:
            args += ["-sn", self.builtin]
        else:
            args += ["-sf", str(SCENARIOS / f"{self.scenario}.xml")]
        args += ["-i", "127.0.0.1", "-p", str(self.port), "-m", str(self.calls)]
        args += ["-nostdin", "-trace_err", "-trace_msg", "-mi", "127.0.0.1"]
        args += ["-mp", str(free_port()), *self.extra]
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await asyncio.sleep(0.3)  # let it bind
        return self

    async def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        out, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.output = out.decode(errors="replace")
        return self.proc.returncode or 0

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            await stop_process(self.proc)
            if self.proc.stdout is not None:
                self.output = (await self.proc.stdout.read()).decode(errors="replace")
        if self.workdir.exists():
            self._logs = (self.errors(), self.messages())
            self._tmp.cleanup()

    def errors(self) -> str:
        if not self.workdir.exists():
            return self._logs[0]
        return _read_logs(self.workdir, "*_errors.log")[-3000:]

    def messages(self) -> str:
        if not self.workdir.exists():
            return self._logs[1]
        return _read_logs(self.workdir, "*_messages.log")


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    """Stop a child started under ``timeout``: SIGTERM, which timeout passes on to the tool
    (SIGKILL would kill only timeout and orphan the tool), then SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class UdpPeer(asyncio.DatagramProtocol):
    """A tiny SIP peer on UDP: sends raw bytes, collects what comes back."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> UdpPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=(host, 0))
        return peer

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    @property
    def host(self) -> str:
        assert self.transport is not None
        return str(self.transport.get_extra_info("sockname")[0])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, port: int, host: str = "127.0.0.1") -> None:
        assert self.transport is not None
        self.transport.sendto(data, (host, port))

    async def recv(self, timeout: float = 2.0) -> bytes:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def recv_status(self, timeout: float = 2.0, skip_provisional: bool = True) -> int:
        while True:
            data = await self.recv(timeout)
            status = int(data.split(b" ", 2)[1])
            if not (skip_provisional and status < 200):
                return status

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def sip_request(
    method: str,
    target: str,
    *,
    user: str,
    host: str,
    port: int,
    call_id: str,
    cseq: int = 1,
    branch: str | None = None,
    transport: str = "UDP",
    headers: Sequence[str] = (),
    body: str = "",
    to_tag: str | None = None,
    from_tag: str = "peer1",
) -> bytes:
    """A request written by hand, as a simple phone would send it."""
    branch = branch or f"z9hG4bK{os.urandom(6).hex()}"
    to = f"<{target}>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {target} SIP/2.0",
        f"Via: SIP/2.0/{transport} {host}:{port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{host}>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:{user}@{host}:{port};transport={transport.lower()}>",
        *headers,
        f"Content-Length: {len(body.encode())}",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


def digest_md5(
    user: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    cnonce: str = "0a4f113b",
    nc: str = "00000001",
) -> str:
    """An Authorization value computed independently of cloudcc.sip.auth (RFC 2617 §3.2.2)."""
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    resp = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"'
    )


def challenge_params(response: bytes, header: str = "WWW-Authenticate") -> dict[str, str]:
    """realm/nonce of the MD5 challenge in a 401/407."""
    for line in response.decode(errors="replace").split("\r\n"):
        if line.lower().startswith(header.lower() + ":") and "MD5" in line:
            return dict(re.findall(r'(\w+)="?([^",]+)"?', line.split(":", 1)[1]))
    raise AssertionError(f"no MD5 {header} in {response[:300]!r}")


SDP_OFFER = (
    "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)
