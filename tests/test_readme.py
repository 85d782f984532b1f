"""The README's "Place a first call", run as written: its shell blocks and its baresip account
line against a real node, a baresip agent phone and a SIPp caller."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.conftest import LiveNode, free_port, require_peer
from tests.voice.peers import sipp_call

README = Path(__file__).resolve().parents[1] / "README.md"


def first_call_section() -> str:
    text = README.read_text()
    start = text.index("## Place a first call")
    return text[start : text.index("\n## ", start + 1)]


def shell_blocks(section: str) -> list[str]:
    """The ```sh blocks of the section, their list indentation removed."""
    blocks = re.findall(r"\n( *)```sh\n(.*?)\n *```", section, re.S)
    return ["\n".join(line[len(indent) :] for line in body.splitlines()) for indent, body in blocks]


def as_on_this_node(script: str, node: LiveNode) -> str:
    """The README speaks of the default ports; the test node has its own."""
    return script.replace("localhost:8080", f"127.0.0.1:{node.http_port}")


def test_the_readme_names_what_a_newcomer_needs() -> None:
    section = first_call_section()
    blocks = shell_blocks(section)
    assert len(blocks) == 2
    assert "content-type: application/json" in blocks[0]  # else 422
    assert '\\"tenant\\":\\"demo\\"' in blocks[0]  # the login needs the tenant
    assert "baresip-core" in section


@pytest.mark.peer
@pytest.mark.slow
def test_the_first_call_steps_work_as_written(tmp_path: Path) -> None:
    require_peer(shutil.which("baresip") is not None, "baresip (Debian package baresip-core)")
    require_peer(shutil.which("sipp") is not None, "SIPp (Debian package sip-tester)")
    section = first_call_section()
    sign_in, look = shell_blocks(section)
    account = re.search(r"`(<sip:1001@127\.0\.0\.1:5060>;[^`]*)`", section)
    assert account is not None, "the baresip account line"
    node = LiveNode(tmp_path / "data")
    try:
        node.wait_ready()
        work = tmp_path / "repo"
        work.mkdir()
        (work / "cloudcc-data").symlink_to(node.data_dir)  # the README runs beside it
        password = node.demo["agents"][0]["sip_password"]
        line = (
            account.group(1).replace("PASSWORD", password).replace(":5060>", f":{node.sip_port}>")
        )
        phone, phone_log = _start_baresip(tmp_path / "baresip", line)
        try:
            _wait_for(lambda: "200 OK" in _read(tmp_path / "baresip" / "out.log"), 15)
            # one shell session, as a reader's: step 2 leaves $AGENT_TOKEN for step 4
            script = as_on_this_node(sign_in, node) + '\necho; echo "$AGENT_TOKEN"'
            out = subprocess.run(["bash", "-e", "-c", script], cwd=work, capture_output=True,
                                 text=True, timeout=60)  # fmt: skip
            assert out.returncode == 0, out.stderr
            *_, answer, token = out.stdout.strip().splitlines()
            status = json.loads(answer)
            assert status["state"] == "ready", status
            result = sipp_call(
                tmp_path / "caller", node.sip_port, digit="2", dtmf_after_ms=4500, talk_ms=3000
            )
            assert result.returncode == 0, result.stdout[-3000:]
            contacts: list[dict[str, object]] = []

            def answered() -> bool:
                done = subprocess.run(["bash", "-e", "-c", as_on_this_node(look, node)], cwd=work,
                                      env={**os.environ, "AGENT_TOKEN": token},
                                      capture_output=True, text=True, timeout=60)  # fmt: skip
                contacts[:] = json.loads(done.stdout.strip().splitlines()[-1])["items"]
                return bool(contacts) and contacts[0]["disposition"] == "answered"

            _wait_for(answered, 20)
        finally:
            phone.terminate()
            phone.wait(10)
            phone_log.close()
    finally:
        node.stop()
    cdr = contacts[0]
    assert cdr["dialed"] == "4000" and cdr["queue"] == "support"
    assert len(cdr["recordings"]) == 1  # type: ignore[arg-type]


def _start_baresip(workdir: Path, account: str) -> tuple[subprocess.Popen[bytes], BinaryIO]:
    """baresip with the README's account line; audio from a file (no sound card here)."""
    from cloudcc.media.testing import sine
    from cloudcc.media.wav import write_wav

    workdir.mkdir(parents=True)
    write_wav(workdir / "mic.wav", sine(1000.0, 60.0, -12.0))
    rtp, sip = free_port("both"), free_port("both")
    (workdir / "config").write_text(
        f"sip_listen 127.0.0.1:{sip}\nnet_interface 127.0.0.1\n"
        f"audio_source aufile,{workdir / 'mic.wav'}\naudio_player aufile,/dev/null\n"
        "audio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule_app account.so\nmodule_app menu.so\n"
        f"rtp_ports {rtp}-{rtp + 40}\n"
    )
    (workdir / "accounts").write_text(account + "\n")
    log = (workdir / "out.log").open("wb")
    proc = subprocess.Popen(
        ["timeout", "180", "baresip", "-f", str(workdir)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, log


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.3)


def test_the_architecture_sketch_draws_only_packages_that_exist() -> None:
    text = README.read_text()
    section = text[text.index("## Architecture") : text.index("## Benchmarks")]
    built, _, planned = section.partition("### Planned")
    sketch = re.search(r"```\n(.*?)```", built, re.S)
    assert sketch is not None
    root = README.parent
    for name in set(re.findall(r"\b([a-z]+)/", sketch.group(1))):
        assert (root / "src" / "cloudcc" / name).is_dir() or (root / name).is_dir(), name
    for name in re.findall(r"`([a-z]+)/`", planned):
        if (root / "src" / "cloudcc" / name).is_dir():
            pytest.fail(f"{name}/ exists now: move it out of the README's Planned list")
    assert "Redis/NATS" not in text.split("## ", 1)[0]  # the intro claims no unbuilt engine
