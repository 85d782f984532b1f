"""An ended call's objects are freed when it ends, by reference counting alone.

A reference cycle through a contact's session would keep the whole call (its legs, RTP
sessions and sockets, SIP dialog and SDP) until the cyclic collector runs, which a node
spaces out (``runtime.tune_gc``: every 50,000 net allocations, about a minute at 3 calls/s):
RSS then grows by a minute of calls between collections (tests/memory/test_soak.py).
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from tests.agents.conftest import Desk
from tests.voice.peers import kill_group, start_sipp_call

pytestmark = [pytest.mark.peer]


async def test_an_abandoned_call_is_freed_without_the_cyclic_collector(
    desk: Desk, tmp_path: Path
) -> None:
    voice = desk.voice
    seen: dict[str, weakref.ref[Any]] = {}
    gc.collect()
    gc.disable()
    caller = None
    try:
        # Through the IVR (key 2) into a queue nobody answers; the caller hangs up after 1.5 s.
        caller = start_sipp_call(
            tmp_path / "caller", desk.sip_port, dtmf_after_ms=400, talk_ms=1500, timeout=30
        )
        deadline = time.monotonic() + 25
        while caller.poll() is None or voice.sessions:
            assert time.monotonic() < deadline, "the call did not end"
            for contact_id in list(voice.sessions):
                seen.setdefault(contact_id, weakref.ref(voice.sessions[contact_id]))
            await asyncio.sleep(0.01)
        assert caller.returncode == 0
        assert len(seen) == 1
        contact_id, ref = next(iter(seen.items()))
        session = ref()
        assert session is None or session.contact.state.value != "ended", (
            "the ended call's session is still alive; what holds it: "
            + ", ".join(type(r).__name__ for r in gc.get_referrers(session))
        )
        await voice.contacts_store.flush()
        r = await desk.call("GET", f"/contacts/{contact_id}")
        assert r.json()["state"] == "ended"
        assert r.json()["queue"] is not None  # it did reach the queue
    finally:
        gc.enable()
        if caller is not None:
            kill_group(caller)
