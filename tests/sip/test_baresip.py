"""baresip as an agent's softphone: digest REGISTER, calls both ways, answer, BYE.

baresip is driven through its ctrl_tcp module (netstring JSON, TOOLS.md §2); its
microphone is a WAV padded to 30 s so the call is not ended by end-of-file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloudcc.sip.call import AuthKind, EndCause, Ended, IncomingCall
from cloudcc.sip.sdp import make_offer

from .conftest import App, wait_for
from .helpers import free_port, stop_process

pytestmark = pytest.mark.peer


class Baresip:
    def __init__(self, workdir: Path, registrar_port: int) -> None:
        self.dir = workdir
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        self.registrar_port = registrar_port
        self.proc: asyncio.subprocess.Process | None = None
        self.log = workdir / "baresip.log"
        self._log_file: object = None

    async def start(self) -> None:
        tone = self.dir / "tone.wav"
        await (await asyncio.create_subprocess_exec(
            "timeout", "20", "sox", "-n", "-r", "8000", "-c", "1", "-b", "16",
            "-e", "signed-integer", str(tone), "synth", "30", "sine", "440",
        )).wait()  # fmt: skip
        (self.dir / "config").write_text(
            f"sip_listen 127.0.0.1:{self.sip_port}\nnet_interface 127.0.0.1\n"
            f"audio_source aufile,{tone}\naudio_player aufile,/dev/null\n"
            "audio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n"
            "module g711.so\nmodule aufile.so\nmodule_app account.so\nmodule_app menu.so\n"
            f"module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\n"
            "rtp_ports 20000-20100\n"
        )
        (self.dir / "accounts").write_text(
            f"<sip:agent1@127.0.0.1:{self.registrar_port}>;auth_pass=agentpw;"
            "answermode=auto;regint=60;audio_codecs=PCMU,PCMA\n"
        )
        log = self.log.open("wb")
        self._log_file = log
        self.proc = await asyncio.create_subprocess_exec(
            "timeout", "-k", "3", "90", "baresip", "-f", str(self.dir),
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async def command(self, command: str, params: str = "") -> dict[str, object]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        try:
            body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
            writer.write(f"{len(body)}:".encode() + body + b",")
            await writer.drain()
            while True:  # events may come first; wait for our response
                length = int((await asyncio.wait_for(reader.readuntil(b":"), 10))[:-1])
                payload = json.loads(await reader.readexactly(length))
                await reader.readexactly(1)
                if payload.get("response"):
                    return payload  # type: ignore[no-any-return]
        finally:
            writer.close()
            await writer.wait_closed()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            await stop_process(self.proc)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None


@pytest.fixture
async def phone_and_endpoint(make_endpoint, app: App, tmp_path: Path) -> AsyncIterator[tuple]:
    ep = await make_endpoint(app)
    phone = Baresip(tmp_path, ep.ports["UDP"])
    await phone.start()
    try:
        await wait_for(lambda: bool(ep.registrar.lookup("sip:agent1@127.0.0.1", ep.now())), 10)
        yield phone, ep
    finally:
        await phone.stop()


async def test_baresip_registers_with_its_extension_password(phone_and_endpoint):
    phone, ep = phone_and_endpoint
    (binding,) = ep.registrar.lookup("sip:agent1@127.0.0.1", ep.now())
    assert binding.owner == ("tenant-1", "agent1")
    assert binding.user_agent is not None and binding.user_agent.startswith("baresip")
    # The binding is ours once we answered; baresip prints the 200 a moment later.
    await wait_for(lambda: "200 OK" in phone.output())


async def test_endpoint_rings_the_registered_baresip_which_answers_then_bye(phone_and_endpoint):
    phone, ep = phone_and_endpoint
    call = await ep.call("sip:agent1@127.0.0.1", make_offer("127.0.0.1", 44000))
    remote = await asyncio.wait_for(call.answered(), 10)
    assert remote is not None and remote.audio is not None
    assert remote.audio.codecs[0].name == "PCMU"
    await asyncio.sleep(0.5)
    await call.hangup()
    assert call.end == Ended(EndCause.LOCAL_HANGUP)
    # baresip reports the BYE it received ("session closed", then "terminated")
    await wait_for(lambda: "session closed" in phone.output(), 5)


async def test_baresip_calls_in_through_the_digest_challenge_and_hangs_up(
    phone_and_endpoint, app: App
):
    phone, ep = phone_and_endpoint
    answered = asyncio.Event()

    async def handle(call: IncomingCall) -> None:
        await call.answer(App.answer_for(call))
        answered.set()

    app.custom = handle
    reply = await phone.command("dial", f"sip:2000@127.0.0.1:{ep.ports['UDP']}")
    assert reply["ok"] is True
    await asyncio.wait_for(answered.wait(), 10)
    (call,) = app.calls
    assert call.auth is AuthKind.DIGEST and call.owner == ("tenant-1", "agent1")
    assert call.request_user == "2000"
    await asyncio.sleep(0.5)
    assert (await phone.command("hangup"))["ok"] is True
    await wait_for(lambda: call.ended, 5)
    assert call.end == Ended(EndCause.REMOTE_HANGUP)
