"""Event streams are capped per principal as well as per tenant."""

from __future__ import annotations

import contextlib

from websockets.asyncio.client import connect

from tests.api.helpers import demo_admin
from tests.events.conftest import EventsNode, eventually
from tests.events.test_stream_ws import closed_with, hello, token_of, url


async def test_one_principal_cannot_hold_all_its_tenants_streams(events_node: EventsNode) -> None:
    en = events_node
    en.service.max_streams_per_principal = 2
    admin = await demo_admin(en.client, en.node)
    token = token_of(admin)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            ws = await stack.enter_async_context(connect(url(en, access_token=token)))
            await hello(ws)
        third = await stack.enter_async_context(connect(url(en, access_token=token)))
        code, reason = await closed_with(third)
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
