"""A recordings folder that is read-only or full never costs the call (real node, SIPp).

The recordings folder is a real tmpfs mount: read-only (the file cannot be created when
the agent answers) or tiny (the disk fills in the middle of the call). The call is
answered and talks to its end, the recording row says ``failed`` with the reason, an
event and a log line say so, ``/readyz`` reports the storage, and the node keeps no
descriptor on the file.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveNode
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, sipp_call
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _mount(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture(params=["read_only", "full"])
def node_on_bad_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveNode]:
    recordings = tmp_path / "data" / "recordings"
    # read-only: nothing can be created; full: 40 kB, about 1.2 s of a stereo recording
    _mount(recordings, "size=64k,ro" if request.param == "read_only" else "size=40k")
    node = LiveNode(tmp_path / "data")
    try:
        _wait_started(node)  # /readyz says 503 (storage), the node is up all the same
        yield node
    finally:
        node.stop()
        subprocess.run(["umount", "-l", str(recordings)], check=False)


def test_a_recording_that_cannot_be_written_never_costs_the_call(
    node_on_bad_storage: LiveNode, tmp_path: Path
) -> None:
    node = node_on_bad_storage
    api = Api(node)
    ready = httpx.get(node.base + "/readyz")
    # readiness reports the storage (cloudcc.health); the node still answers the calls it gets
    assert ready.status_code == 503 and ready.json()["checks"]["storage"], ready.text
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        api.login("1001", phone.uri)
        result = sipp_call(
            tmp_path / "caller", node.sip_port, digit="2", dtmf_after_ms=4500, talk_ms=4000
        )
        assert result.returncode == 0, result.stdout[-3000:] + phone.errors()
    finally:
        phone.stop()
    cdr = wait_until_cdr(api, lambda c: c["state"] in ("wrapup", "ended"))
    assert cdr["disposition"] == "answered" and cdr["end_cause"] == "customer_hangup", cdr
    assert 3 < cdr["talk_seconds"] < 7, cdr
    (rid,) = cdr["recordings"]
    rec = api.get(f"/recordings/{rid}")
    assert rec["state"] == "failed", rec
    events = api.get("/events", params={"since": 0, "limit": 500})["events"]
    failed = [e for e in events if e["type"] == "recording.failed"]
    assert [e["data"]["recording_id"] for e in failed] == [rid]
    assert f"recording {rid} failed" in node.log()
    if "Read-only" in rec["failure_reason"]:
        assert rec["bytes"] == 0 and rec["duration_seconds"] == 0
    else:
        assert "No space left on device" in rec["failure_reason"], rec
        # the file holds what was written before the disk filled, its header says so
        (wav,) = (node.data_dir / "recordings").rglob(f"*{rid}.wav")
        data = wav.read_bytes()
        assert len(data) == rec["bytes"] and rec["bytes"] > 44
        assert int.from_bytes(data[40:44], "little") == len(data) - 44
        assert int.from_bytes(data[4:8], "little") == len(data) - 8
        assert 0.3 < rec["duration_seconds"] < 1.5, rec
        assert not _held_open(node.proc.pid, wav), "the node still holds the file"


def _wait_started(node: LiveNode, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise RuntimeError(f"node exited: {node.log()}")
        try:
            checks = httpx.get(node.base + "/readyz", timeout=1).json().get("checks", {})
            if checks.get("started") is None and "storage" in checks:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"node not started in {timeout}s: {node.log()}")


def _held_open(pid: int, path: Path) -> bool:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            pass
    return False
