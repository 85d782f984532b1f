"""Event streams are capped per principal as well as per tenant."""

from __future__ import annotations

import contextlib

from websockets.asyncio.client import connect

from tests.api.helpers import demo_admin
from tests.events.conftest import EventsNode, eventually
from tests.events.test_stream_ws import closed_with, hello, token_of, url


async def refused_after(
    stack: contextlib.AsyncExitStack, en: EventsNode, token: str, opened: int
) -> tuple[int, str]:
    """Open ``opened`` streams with ``token`` (kept open in ``stack``), then one more: the
    close code and reason of that one."""
    for _ in range(opened):
        ws = await stack.enter_async_context(connect(url(en, access_token=token)))
        await hello(ws)
    last = await stack.enter_async_context(connect(url(en, access_token=token)))
    return await closed_with(last)


async def test_one_principal_cannot_hold_all_its_tenants_streams(events_node: EventsNode) -> None:
    en = events_node
    en.service.max_streams_per_principal = 2
    admin = await demo_admin(en.client, en.node)
    token = token_of(admin)
    async with contextlib.AsyncExitStack() as stack:
        code, reason = await refused_after(stack, en, token, 2)
        assert code == 4429 and "streams open" in reason
        # Another user of the same tenant still opens one.
        agent = en.node.demo["agents"][0]
        r = await en.client.post(
            "/api/v1/auth/login",
            json={
                "tenant": "demo",
                "username": agent["web_username"],
                "password": agent["web_password"],
            },
        )
        other = await stack.enter_async_context(
            connect(url(en, access_token=r.json()["access_token"]))
        )
        await hello(other)

    async def all_released() -> bool:
        return en.service._principal_streams == {}

    await eventually(all_released)
