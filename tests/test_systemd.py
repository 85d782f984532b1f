"""A node under systemd's notification protocol (sd_notify): READY=1 once it serves,
WATCHDOG=1 while its loop runs, STOPPING=1 when SIGTERM starts the drain."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from cloudcc.recovery import systemd
from tests.conftest import LiveNode

pytestmark = pytest.mark.slow


def test_watchdog_interval_is_half_of_watchdog_sec_for_this_process() -> None:
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "1", "WATCHDOG_PID": "1"}) is None
    assert systemd.watchdog_interval({}) is None
    assert systemd.notify("READY=1", {}) is False  # not under systemd: nothing sent


def test_a_node_tells_systemd_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(60)
        node = LiveNode(
            tmp_path / "data",
            env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"},  # WatchdogSec=1
        )
        try:
            seen: list[str] = []
            deadline = time.monotonic() + 60
            while not (any("READY=1" in m for m in seen) and seen.count("WATCHDOG=1") >= 2):
                assert time.monotonic() < deadline, seen
                seen.append(sock.recv(4096).decode())
            node.proc.send_signal(signal.SIGTERM)
            while "STOPPING=1" not in seen[-1]:
                seen.append(sock.recv(4096).decode())
            assert node.proc.wait(30) == 0
        finally:
            node.stop()
