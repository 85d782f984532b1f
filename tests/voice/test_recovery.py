"""A node killed with SIGKILL mid-call, then restarted on the same data: every phone it left in
a call gets a BYE, the records are closed as the node failed, no child process survives."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import LiveNode
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group, start_sipp_call

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _wait_connected(api: Api, count: int = 1, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(c["state"] == "connected" for c in api.live()) >= count:
            return
        time.sleep(0.2)
    raise AssertionError("the calls never connected")


def _kill(node: LiveNode) -> None:
    os.kill(node.proc.pid, signal.SIGKILL)
    node.proc.wait()
    node.stop()


def _exited_within(proc, seconds: float) -> float | None:  # type: ignore[no-untyped-def]
    """Seconds until ``proc`` exits (None if it is still running after ``seconds``)."""
    started = time.monotonic()
    try:
        proc.wait(seconds)
    except Exception:
        return None
    return time.monotonic() - started


def test_both_parties_get_a_bye_within_5_s_of_the_restart(tmp_path: Path) -> None:
    node = LiveNode(tmp_path / "data")
    node.wait_ready()
    api = Api(node)
    phone = SippAgentPhone(tmp_path / "agent").start()
    caller = start_sipp_call(tmp_path / "caller", node.sip_port, talk_ms=90000, timeout=120)
    restarted: LiveNode | None = None
    try:
        api.login("1001", phone.uri)
        _wait_connected(api)
        time.sleep(1.0)  # the journal is written in batches of 50 ms
        _kill(node)
        time.sleep(0.5)
        assert caller.poll() is None and phone.proc is not None and phone.proc.poll() is None
        restart = time.monotonic()
        restarted = LiveNode(tmp_path / "data", sip_port=node.sip_port)
        # Each SIPp exits (0) once it has answered the BYE of its call.
        assert caller.wait(15) == 0
        assert phone.proc.wait(15) == 0, phone.errors()
        released = time.monotonic() - restart
        assert released <= 5.0, f"BYEs came {released:.1f} s after the restart"
        restarted.wait_ready()
        (cdr,) = Api(restarted).contacts()
        assert cdr["state"] == "ended" and cdr["end_cause"] == "node_failure"
    finally:
        kill_group(caller)
        phone.stop()
        if restarted is not None:
            restarted.stop()
