"""Fixtures of the SIP tests: endpoints on free ports and a small app behind them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from cloudcc.sip.auth import Credential
from cloudcc.sip.call import CallEvent, IncomingCall
from cloudcc.sip.endpoint import EndpointConfig, SipEndpoint
from cloudcc.sip.protection import ProtectionSettings
from cloudcc.sip.sdp import PCMA, PCMU, answer

TEST_CONFIG = EndpointConfig(
    port=0,
    protection=ProtectionSettings(messages_per_second=None),
    nat_keepalive_interval=None,
)


class App:
    """Plays the contact layer: credentials, trunks, and what to do with each call."""

    def __init__(self, behaviour: str = "answer") -> None:
        self.behaviour = behaviour
        self.users = {"alice": "secret", "bob": "secret", "agent1": "agentpw"}
        self.trunk_sources: set[str] = set()
        self.calls: list[IncomingCall] = []
        self.events: dict[str, list[CallEvent]] = {}
        self.new_call: asyncio.Queue[IncomingCall] = asyncio.Queue()
        self.custom: Callable[[IncomingCall], Awaitable[None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def credentials(self, realm: str, username: str) -> Credential | None:
        password = self.users.get(username)
        if password is None:
            return None
        return Credential(username, password, owner=("tenant-1", username))

    async def trunk(self, source: tuple[str, int], info: Any) -> object | None:
        return ("trunk", source[0]) if source[0] in self.trunk_sources else None

    async def on_call(self, call: IncomingCall) -> None:
        self.calls.append(call)
        self.events[call.call_id] = []
        self._tasks.append(asyncio.get_running_loop().create_task(self._collect(call)))
        self.new_call.put_nowait(call)
        if self.custom is not None:
            await self.custom(call)
            return
        if self.behaviour == "answer":
            await call.answer(self.answer_for(call))
        elif self.behaviour == "ring":
            await call.ring()
        elif self.behaviour == "ring_then_answer":
            await call.ring()
            await asyncio.sleep(0.2)
            await call.answer(self.answer_for(call))
        elif self.behaviour.startswith("reject"):
            await call.reject(int(self.behaviour.split("_")[1]))

    @staticmethod
    def answer_for(call: IncomingCall) -> Any:
        assert call.offer is not None
        return answer(call.offer, "127.0.0.1", {"audio": 41000}, {"audio": (PCMU, PCMA)})

    async def _collect(self, call: IncomingCall) -> None:
        async for event in call.events():
            self.events[call.call_id].append(event)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def app() -> AsyncIterator[App]:
    a = App()
    yield a
    await a.close()


@pytest.fixture
async def make_endpoint() -> AsyncIterator[Callable[..., Awaitable[SipEndpoint]]]:
    endpoints: list[SipEndpoint] = []

    async def factory(app: App | None = None, **overrides: Any) -> SipEndpoint:
        config = replace(TEST_CONFIG, **overrides)
        kwargs: dict[str, Any] = {}
        if app is not None:
            kwargs = {
                "credentials": app.credentials,
                "trunk_check": app.trunk,
                "on_call": app.on_call,
            }
        ep = SipEndpoint(config, **kwargs)
        await ep.start()
        endpoints.append(ep)
        return ep

    yield factory
    for ep in endpoints:
        await ep.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``predicate()`` holds (for state reached by another process)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
