"""The systemd notification protocol (sd_notify(3)), without a library: READY=1 once the node
serves, WATCHDOG=1 while its loop runs (``WatchdogSec=`` in the unit), STOPPING=1 when it
drains. Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

log = logging.getLogger("cloudcc.systemd")


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` (``KEY=value`` lines) to the service manager; whether it was sent."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("could not notify the service manager at %s: %s", address, exc)
        return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """How often to send WATCHDOG=1 (half of ``WatchdogSec``), or None when not asked."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2 / 1_000_000
    except ValueError:
        return None


async def keep_watchdog(interval: float) -> None:
    """WATCHDOG=1 every ``interval`` seconds for as long as the event loop runs tasks: a
    blocked loop stops the pings and systemd restarts the node (``Restart=on-failure``)."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def start_watchdog() -> asyncio.Task[None] | None:
    interval = watchdog_interval()
    if interval is None:
        return None
    return asyncio.create_task(keep_watchdog(interval), name="systemd-watchdog")


async def stop_watchdog(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
