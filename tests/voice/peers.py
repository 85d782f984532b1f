"""Real peers for voice tests: SIPp callers and agent phones, baresip softphones.

baresip is driven through ctrl_tcp (netstring JSON, TOOLS.md §2); its microphone is a WAV
(a tone, or speech) padded to a minute so a call is not ended by end-of-file, and its
``sndfile`` module writes what it hears to ``dump-*-dec.wav`` for audio analysis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from cloudcc.media.testing import sine, tone_level_dbfs
from tests.conftest import free_port

VOICE_DATA = Path(__file__).parents[1] / "data" / "voice"
SIPP = "sipp"


def write_wav(path: Path, pcm: np.ndarray, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    """(samples as int16 [frames, channels], rate, channels)."""
    with wave.open(str(path), "rb") as w:
        frames = w.readframes(w.getnframes())
        channels = w.getnchannels()
        rate = w.getframerate()
    pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
    return pcm, rate, channels


def level(pcm: np.ndarray, freq: float, rate: int = 8000) -> float:
    return tone_level_dbfs(np.asarray(pcm, dtype=np.int16), freq, rate)


class SippAgentPhone:
    """A SIPp UAS on a free port that answers ``calls`` calls (an agent's phone)."""

    def __init__(self, workdir: Path, calls: int = 1, scenario: str = "agent_uas.xml") -> None:
        self.dir = workdir
        self.port = free_port("both")
        self.calls = calls
        self.scenario = VOICE_DATA / scenario
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"sip:agent@127.0.0.1:{self.port}"

    def start(self) -> SippAgentPhone:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "timeout",
                "-k",
                "2",
                "240",
                SIPP,
                "-sf",
                str(self.scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-mi",
                "127.0.0.1",
                "-mp",
                str(free_port("both")),
                "-m",
                str(self.calls),
                "-nostdin",
                "-trace_err",
                "-timeout_error",
            ],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() kills `timeout` and SIPp together
        )
        time.sleep(0.3)
        return self

    def errors(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.dir.glob("*_errors.log"))

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)


def sipp_caller_args(
    workdir: Path,
    sip_port: int,
    number: str = "4000",
    digit: str = "2",
    dtmf_after_ms: int = 4500,
    talk_ms: int = 4000,
    calls: int = 1,
    rate: float = 1.0,
    timeout: float = 90,
    caller: str = "+15550",
) -> list[str]:
    """The SIPp command line of customer(s): call, press ``digit`` after ``dtmf_after_ms``,
    talk ``talk_ms`` (taking our BYE if it comes first), then BYE."""
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = workdir / f"caller-{digit}-{talk_ms}.xml"
    scenario.write_text(
        (VOICE_DATA / "caller.xml.in")
        .read_text()
        .replace("{digit}", digit)
        .replace("{dtmf_after_ms}", str(dtmf_after_ms))
        .replace("{talk_ms}", str(talk_ms))
        .replace("{caller}", caller)
    )
    return [
        "timeout", str(timeout), SIPP, "-sf", str(scenario), "-s", number,
        f"127.0.0.1:{sip_port}", "-i", "127.0.0.1", "-p", str(free_port("both")),
        "-mi", "127.0.0.1", "-mp", str(free_port("both")), "-m", str(calls),
        "-r", str(rate), "-nostdin", "-trace_err",
    ]  # fmt: skip


def sipp_call(
    workdir: Path, sip_port: int, *args: Any, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run SIPp customer(s) to the end (see ``sipp_caller_args``). A SIPp that could not
    bind its ports (another test's process took one between ``free_port`` and SIPp's bind:
    tests run in parallel) is started again on new ports."""
    for _ in range(3):
        done = subprocess.run(
            sipp_caller_args(workdir, sip_port, *args, **kw),
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0 or not _bind_failed(done.stdout + done.stderr):
            return done
    return done


def _bind_failed(output: str) -> bool:
    return any(s in output for s in ("Unable to bind", "Address already in use", "bind"))


def start_sipp_call(workdir: Path, sip_port: int, **kw: Any) -> subprocess.Popen[bytes]:
    """Start a SIPp customer in the background (a call the test interrupts with
    ``kill_group``)."""
    return subprocess.Popen(
        sipp_caller_args(workdir, sip_port, **kw),
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a process started in its own session and its children (``timeout`` and the
    SIPp under it: killing ``timeout`` alone leaves SIPp running with no time limit)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class Baresip:
    """A baresip softphone: registers (or not), dials, answers, sends DTMF, records."""

    def __init__(
        self,
        workdir: Path,
        *,
        user: str,
        password: str | None = None,
        registrar_port: int | None = None,
        tone_hz: float | None = 1000.0,
        audio: Path | None = None,
        auto_answer: bool = True,
        modules: tuple[str, ...] = (),
        account_params: str = "",
        aor_params: str = "",
    ) -> None:
        self.modules = modules  # more modules, e.g. srtp.so
        self.account_params = account_params  # e.g. ";mediaenc=srtp-mand"
        self.aor_params = aor_params  # e.g. ";transport=tls"
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.password = password
        self.registrar_port = registrar_port
        self.tone_hz = tone_hz
        self.audio = audio
        self.auto_answer = auto_answer
        self.sip_port = _free_pair()  # baresip also binds port + 1 for SIP over TLS
        self.ctrl_port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.log = workdir / "baresip.log"
        self._log_file: Any = None
        self.events: list[dict[str, Any]] = []

    async def start(self) -> Baresip:
        mic = self.dir / "mic.wav"
        if self.audio is not None:
            pcm, _, _ = read_wav(self.audio)
            body = pcm[:, 0]
        else:
            body = sine(self.tone_hz or 1000.0, 5.0, -12.0)
        write_wav(mic, np.tile(body, max(1, int(90 * 8000 / max(1, len(body))) + 1)))
        rtp = free_port("both")
        (self.dir / "config").write_text(
            f"sip_listen 127.0.0.1:{self.sip_port}\nnet_interface 127.0.0.1\n"
            f"audio_source aufile,{mic}\naudio_player aufile,/dev/null\n"
            "audio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n"
            "module g711.so\nmodule aufile.so\nmodule sndfile.so\nmodule_app account.so\n"
            "module_app menu.so\nmodule_app ctrl_tcp.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\nsnd_path {self.dir}\n"
            f"rtp_ports {rtp}-{rtp + 40}\n" + "".join(f"module {m}\n" for m in self.modules)
        )
        answer = "auto" if self.auto_answer else "manual"
        if self.registrar_port is not None:
            account = (
                f"<sip:{self.user}@127.0.0.1:{self.registrar_port}>;"
                f"auth_pass={self.password};answermode={answer};regint=600;"
                "audio_codecs=PCMU,PCMA"
            )
        else:
            account = (
                f"<sip:{self.user}@127.0.0.1:{self.sip_port}{self.aor_params}>;"
                f"answermode={answer};regint=0;audio_codecs=PCMU,PCMA"
            )
        (self.dir / "accounts").write_text(account + self.account_params + "\n")
        self._log_file = self.log.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            "timeout",
            "-k",
            "3",
            "240",
            "baresip",
            "-f",
            str(self.dir),
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # kill() takes baresip down with its timeout wrapper
        )
        try:
            await self._wait_ctrl()
        except Exception:
            await self.stop()
            raise
        return self

    async def _wait_ctrl(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                w.close()
                await w.wait_closed()
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("baresip did not start: " + self.output()[-2000:])

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        try:
            body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
            writer.write(f"{len(body)}:".encode() + body + b",")
            await writer.drain()
            while True:
                length = int((await asyncio.wait_for(reader.readuntil(b":"), 10))[:-1])
                payload = json.loads(await reader.readexactly(length))
                await reader.readexactly(1)
                if payload.get("response"):
                    return payload  # type: ignore[no-any-return]
                self.events.append(payload)
        finally:
            writer.close()
            await writer.wait_closed()

    async def dial(self, uri: str) -> None:
        reply = await self.command("dial", uri)
        assert reply.get("ok"), reply

    async def hangup(self) -> None:
        await self.command("hangup")

    async def send_dtmf(self, digits: str) -> None:
        reply = await self.command("sndcode", digits)
        assert reply.get("ok"), reply

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def heard(self) -> np.ndarray:
        """What the phone received in its latest call (int16 mono at 8 kHz).

        The file is still being written during a call (its header not final), so the
        samples are read from the data chunk to the end of the file."""
        dumps = sorted(self.dir.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
        assert dumps, f"baresip recorded nothing:\n{self.output()[-2000:]}"
        raw = dumps[-1].read_bytes()
        at = raw.find(b"data")
        start = at + 8 if 0 <= at < 200 else 44
        body = raw[start:]
        return np.frombuffer(body[: len(body) - len(body) % 2], dtype="<i2")

    def heard_since(self, seconds_ago: float) -> np.ndarray:
        """The last ``seconds_ago`` seconds of what the phone heard."""
        pcm = self.heard()
        return pcm[-int(seconds_ago * 8000) :]

    def kill(self) -> None:
        """Gone at once: no BYE, no more RTP (a phone that lost power)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc is not None:
            self.kill()
            await self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _free_pair() -> int:
    import socket

    for _ in range(100):
        port = free_port("both")
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports")


async def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met in {timeout}s")
        await asyncio.sleep(interval)
