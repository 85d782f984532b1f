"""Helpers of the routing-lease tests and bench/cluster.py: who holds a tenant's routing lease
(PostgreSQL's pg_locks), and contact rows with their agent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cloudcc.cluster.lease import NAMESPACE


def _dsn(db_url: str) -> str:
    return db_url.replace("postgresql+asyncpg://", "postgresql://")


async def _owner(db_url: str, tenant_id: str) -> str | None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(db_url))
    try:
        name = await conn.fetchval(
            """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid
                 AND l.objid = ((hashtext($2)::bigint + 4294967296) % 4294967296)::oid""",
            NAMESPACE,
            tenant_id,
        )
    finally:
        await conn.close()
    return str(name).split(":", 1)[1] if name else None


def routing_owner(db_url: str, tenant_id: str) -> str | None:
    """The node holding the tenant's routing lease, or None."""
    return asyncio.run(_owner(db_url, tenant_id))


async def _rows(db_url: str) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(_dsn(db_url))
    try:
        rows = await conn.fetch(
            "SELECT id, node, state, agent_id, answered_at, created_at, disposition "
            "FROM contacts ORDER BY created_at"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


def contact_rows(db_url: str) -> list[dict[str, Any]]:
    return asyncio.run(_rows(db_url))


def call_queue(workdir: Path, node: Any, number: str, talk_ms: int) -> Any:
    """A SIPp caller straight to ``node`` dialing ``number`` (a queue), talking ``talk_ms``
    once answered."""
    from tests.cluster.edge import start_callers

    return start_callers(
        workdir, 0, number=number, talk_ms=talk_ms, timeout=talk_ms / 1000 + 60,
        target=f"{node.host}:{node.sip_port}",
    )  # fmt: skip


def new_row(db_url: str, seen: set[str]) -> dict[str, Any] | None:
    """The first contact row not in ``seen``, or None."""
    fresh = [r for r in contact_rows(db_url) if r["id"] not in seen]
    return fresh[0] if fresh else None


def row(db_url: str, contact_id: str) -> dict[str, Any]:
    return next(r for r in contact_rows(db_url) if r["id"] == contact_id)
