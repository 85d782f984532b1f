"""A real call for supervision tests: baresip phones registered as agents 1001 and 1003, a
customer's baresip dialing the demo number, sent to the support queue and answered by 1001."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.agents.conftest import Desk
from tests.voice.peers import Baresip, wait_until


async def live(desk: Desk, state: str) -> list[dict[str, Any]]:
    items = (await desk.call("GET", "/contacts/live")).json()
    return [c for c in items if c["state"] == state]


@asynccontextmanager
async def connected_call(
    desk: Desk, tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, Baresip]]]:
    """The contact id of a call agent 1001 talks on, and the phones ("1001", "1003", "caller")."""
    phones: dict[str, Baresip] = {}
    try:
        for index, ext in ((0, "1001"), (2, "1003")):
            phones[ext] = await Baresip(
                tmp_path / ext,
                user=ext,
                password=desk.agent(index)["sip_password"],
                registrar_port=desk.sip_port,
            ).start()
        phones["caller"] = await Baresip(tmp_path / "caller", user="customer").start()
        for ext in ("1001", "1003"):
            await wait_until(lambda e=ext: "200 OK" in phones[e].output(), 10)
        agent, _ = await desk.agent_headers(0)
        r = await desk.call("POST", "/agents/me/login", agent, json={})
        assert r.status_code == 200, r.text
        await phones["caller"].dial(f"sip:4000@127.0.0.1:{desk.sip_port}")
        await wait_until(lambda: live(desk, "ivr"), 10)
        await asyncio.sleep(3.5)
        await phones["caller"].send_dtmf("2")
        cid = (await wait_until(lambda: live(desk, "connected"), 15))[0]["contact_id"]
        yield cid, phones
    finally:
        for phone in phones.values():
            await phone.stop()
