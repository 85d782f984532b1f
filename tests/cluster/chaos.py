"""Helpers of the chaos tests (tests/cluster/test_chaos_*.py) and bench/cluster.py: agents on
one SIPp phone, call and recording records straight from PostgreSQL, and who ran a tenant's
routing when, read from the nodes' logs (to find two owners at once)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.voice.conftest import Api


def create_agents(api: Api, count: int, phone_port: int, queue: str = "support") -> list[str]:
    """``count`` new agents with skill ``queue``, signed in ready with a device on the SIPp
    phone listening on ``phone_port`` (one UAS answers them all); the queue's wrap-up is
    set to 0 so that an agent takes the next call at once. Returns their ids."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    qid = api.queue_id(queue)
    api.patch(f"/queues/{qid}", {"wrapup_seconds": 0})

    def create(i: int) -> str:
        ext = f"{7000 + i}"
        agent = api.post(
            "/agents",
            {"name": f"Chaos {ext}", "extension": ext, "sip_password": f"pw-{ext}-chaos",
             "skills": {queue: 5}},
        )  # fmt: skip
        return str(agent["id"])

    def login(i: int, agent_id: str) -> None:
        device = f"sip:agent{7000 + i}@127.0.0.1:{phone_port}"
        # The ACD learns of a new agent from the bus: a login just after the POST may be early.
        for attempt in range(50):
            r = httpx.post(
                f"{api.base}/agents/{agent_id}/login",
                json={"device": device, "ready": True},
                headers=api.headers,
                timeout=30,
            )
            if r.status_code == 200:
                return
            assert attempt < 49 and "unknown to routing" in r.text, r.text
            time.sleep(0.1)

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(create, range(count)))
        list(pool.map(login, range(count), ids))
    return ids


def _dsn(db_url: str) -> str:
    return db_url.replace("postgresql+asyncpg://", "postgresql://")


async def _fetch(db_url: str, sql: str) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(_dsn(db_url))
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def call_records(db_url: str) -> list[dict[str, Any]]:
    """Every contact's record (CDR columns) in creation order."""
    return asyncio.run(
        _fetch(
            db_url,
            "SELECT id, node, state, disposition, end_cause, agent_id, created_at, answered_at,"
            " ended_at, talk_seconds, recordings FROM contacts ORDER BY created_at",
        )
    )


def recording_rows(db_url: str) -> list[dict[str, Any]]:
    return asyncio.run(
        _fetch(
            db_url,
            "SELECT id, contact_id, path, state, duration_seconds, bytes, sha256 FROM recordings",
        )
    )


_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ cloudcc\.cluster\.lease: (.*)$")


def routing_events(logs: list[Path], tenant_id: str) -> list[tuple[float, str, str]]:
    """(time, node log, "gained"|"lost") of the tenant's routing lease, from the nodes' text
    logs (``<data dir>/logs/cloudcc.log``, kept across restarts), in time order."""
    events: list[tuple[float, str, str]] = []
    for path in logs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            m = _LINE.match(line)
            if m is None or tenant_id not in m[2]:
                continue
            ts = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            message = m[2]
            if "runs the routing of tenant" in message:
                events.append((ts, str(path), "gained"))
            elif any(w in message for w in (" lost", "gave up", "failed")):
                events.append((ts, str(path), "lost"))
    return sorted(events)


def lease_overlaps(events: list[tuple[float, str, str]]) -> list[tuple[float, set[str]]]:
    """The moments at which more than one node believed it ran the tenant's routing."""
    owners: set[str] = set()
    overlaps = []
    for ts, node, what in events:
        if what == "gained":
            owners.add(node)
            if len(owners) > 1:
                overlaps.append((ts, set(owners)))
        else:
            owners.discard(node)
    return overlaps
