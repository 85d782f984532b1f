"""Recording retention: each tenant's recordings older than its retention period are deleted.

``purge`` is one pass (files first, then rows, with an audit entry per tenant); ``Retention``
runs it periodically on a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select

from cloudcc.bus import LocalBus
from cloudcc.store.db import Database
from cloudcc.store.tables import RecordingRecord, Tenant
from cloudcc.tenancy import audit
from cloudcc.tenancy.model import system_actor

log = logging.getLogger("cloudcc.retention")


async def purge(db: Database, bus: LocalBus, root: Path, now: float) -> dict[str, int]:
    """Delete expired recordings of every tenant; how many per tenant."""
    deleted: dict[str, int] = {}
    async with db.session() as s:
        tenants = (await s.execute(select(Tenant.id, Tenant.recording_retention_days))).all()
    for tenant_id, days in tenants:
        cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=days)
        async with db.session() as s:
            rows = (
                await s.execute(
                    select(RecordingRecord.id, RecordingRecord.path).where(
                        RecordingRecord.tenant_id == tenant_id,
                        RecordingRecord.started_at < cutoff,
                        RecordingRecord.state != "recording",
                    )
                )
            ).all()
        if not rows:
            continue
        await asyncio.to_thread(_unlink_all, root, [rel for _id, rel in rows])
        ids = [r[0] for r in rows]
        async with db.transaction() as s:
            await s.execute(delete(RecordingRecord).where(RecordingRecord.id.in_(ids)))
            audit.record(
                s,
                system_actor(tenant_id),
                "purge",
                "recording",
                None,
                {"count": len(ids), "older_than_days": days},
            )
        bus.publish(tenant_id, "recording.purged", {"count": len(ids), "ids": ids[:100]})
        deleted[tenant_id] = len(ids)
    return deleted


def _unlink_all(root: Path, relative: list[str]) -> None:
    base = root.resolve()
    for rel in relative:
        path = (base / rel).resolve()
        if path.is_relative_to(base):
            path.unlink(missing_ok=True)


class Retention:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        root: Path,
        interval: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.bus = bus
        self.root = root
        self.interval = interval
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                deleted = await purge(self.db, self.bus, self.root, self.clock())
                if deleted:
                    log.info("recording retention deleted %s", deleted)
            except Exception:
                log.exception("recording retention failed; trying again later")
            await asyncio.sleep(self.interval)
