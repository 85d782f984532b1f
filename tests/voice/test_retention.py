"""Recordings older than the tenant's retention period are deleted, files and rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cloudcc.bus import LocalBus
from cloudcc.contacts.retention import purge
from cloudcc.store.db import Database
from cloudcc.store.tables import AuditEntry, RecordingRecord, Tenant


async def test_expired_recordings_are_deleted_per_tenant_retention(node, tmp_path):
    db: Database = node.db
    root = tmp_path / "recordings"
    now = time.time()
    async with db.transaction() as s:
        tenants = (await s.scalars(select(Tenant))).all()
        demo = next(t for t in tenants if t.slug == "demo")
        other = next(t for t in tenants if t.slug != "demo")
        demo.recording_retention_days = 30
        other.recording_retention_days = 365
        for tenant, age_days, name in ((demo, 40, "old"), (demo, 10, "young"), (other, 40, "kept")):
            path = root / tenant.id / f"{name}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF....WAVE")
            s.add(
                RecordingRecord(
                    id=name.ljust(32, "0"),
                    tenant_id=tenant.id,
                    contact_id=name,
                    path=f"{tenant.id}/{name}.wav",
                    state="complete",
                    started_at=datetime.fromtimestamp(now, UTC) - timedelta(days=age_days),
                )
            )
    bus = LocalBus()
    deleted = await purge(db, bus, root, now)
    assert deleted == {demo.id: 1}
    assert not (root / demo.id / "old.wav").exists()
    assert (root / demo.id / "young.wav").exists() and (root / other.id / "kept.wav").exists()
    async with db.session() as s:
        left = sorted((await s.scalars(select(RecordingRecord.contact_id))).all())
        entry = await s.scalar(select(AuditEntry).where(AuditEntry.action == "purge"))
    assert left == ["kept", "young"]
    assert entry is not None and entry.tenant_id == demo.id and entry.changes["count"] == 1
    assert await purge(db, bus, root, now) == {}
