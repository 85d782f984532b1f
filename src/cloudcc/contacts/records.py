"""Persistence of contacts (CDRs) and recordings, written by one task in small batches.

A contact row is inserted when the contact starts and rewritten as it moves; the last write
is the complete CDR. Writes for the same contact inside one batch are coalesced. ``flush()``
waits until everything queued so far is committed (shutdown and tests call it). After a crash,
``recover()`` closes the contacts and recordings the dead node left open, so no CDR or
recording is lost when a call ends badly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloudcc.contacts.cdr import contact_record, leg_records
from cloudcc.contacts.model import Contact, ContactState, Disposition, EndCause
from cloudcc.store.db import Database
from cloudcc.store.tables import ContactRecord, RecordingRecord, Tenant

log = logging.getLogger("cloudcc.contacts.records")

_TIMESTAMPS = ("created_at", "answered_at", "ended_at")


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def row_values(contact: Contact, node: str) -> dict[str, Any]:
    record = contact_record(contact)
    values = {k: v for k, v in record.items() if k not in ("customer_call_id",)}
    for key in _TIMESTAMPS:
        values[key] = _dt(values[key])
    values["legs"] = leg_records(contact)
    values["node"] = node
    return values


class ContactStore:
    def __init__(self, db: Database, node: str = "", batch_interval: float = 0.05) -> None:
        self.db = db
        self.node = node
        self.batch_interval = batch_interval
        self._pending: dict[str, dict[str, Any]] = {}
        self._recordings: dict[str, dict[str, Any]] = {}
        self._statements: dict[Any, Any] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="contact-store")

    async def stop(self) -> None:
        await self.flush()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def save(self, contact: Contact) -> None:
        """Queue the contact's current state for writing (cheap; called on every change)."""
        self._pending[contact.id] = row_values(contact, self.node)
        self._idle.clear()
        self._wake.set()

    def save_recording(self, values: dict[str, Any]) -> None:
        """Queue a recording's metadata (all columns; the newest wins within a batch)."""
        self._recordings[values["id"]] = values
        self._idle.clear()
        self._wake.set()

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed."""
        if self._task is None:
            await self._write(*self._take())
            return
        while self._pending or self._recordings or not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()

    def _take(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        contacts, recordings = list(self._pending.values()), list(self._recordings.values())
        self._pending.clear()
        self._recordings.clear()
        return contacts, recordings

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.batch_interval)
            contacts, recordings = self._take()
            try:
                await self._write(contacts, recordings)
            except Exception:
                log.exception(
                    "writing %d contact and %d recording records failed; retrying",
                    len(contacts),
                    len(recordings),
                )
                for values in contacts:  # keep the newest state of each
                    self._pending.setdefault(values["id"], values)
                for values in recordings:
                    self._recordings.setdefault(values["id"], values)
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            if not self._pending and not self._recordings:
                self._idle.set()

    async def _write(
        self, contacts: list[dict[str, Any]], recordings: list[dict[str, Any]]
    ) -> None:
        """One transaction for the batch: the node's only writer of calls, so its own writes
        never wait for each other's locks (SQLite has one writer at a time)."""
        if not contacts and not recordings:
            return
        async with self.db.transaction() as s:
            for model, rows in ((ContactRecord, contacts), (RecordingRecord, recordings)):
                if rows:
                    await s.execute(self._upsert(model, rows[0].keys()), rows)
        self.written += len(contacts)

    def _upsert(self, model: Any, columns: Any) -> Any:
        """INSERT ... ON CONFLICT (id) DO UPDATE of ``columns``, built once per shape."""
        key = (model, tuple(columns))
        stmt = self._statements.get(key)
        if stmt is None:
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            base = insert(model)
            stmt = base.on_conflict_do_update(
                index_elements=[model.id],
                set_={c: base.excluded[c] for c in key[1] if c != "id"},
            )
            self._statements[key] = stmt
        return stmt

    def checkpoint(self, contact: Contact, now: float) -> None:
        """Queue the contact's state with the phase under way counted up to ``now``: after a
        crash its record keeps the talk (queue, IVR...) time known at the last checkpoint."""
        values = row_values(contact.as_of(now), self.node)
        values["total_seconds"] = round(max(0.0, now - contact.created_at), 3)
        self._pending.setdefault(contact.id, values)
        self._idle.clear()
        self._wake.set()

    async def recover(self, now: float | None = None, node: str | None = None) -> int:
        """Close the contacts ``node`` (this one by default) left open when it died, as of
        ``now``: the last moment it was known alive; returns how many.

        Their disposition is ``node_failure`` (after-call work keeps the one it had: the call
        itself was over); the phase times are those of the last checkpoint."""
        now = time.time() if now is None else now
        node = self.node if node is None else node
        async with self.db.transaction() as s:
            rows = (
                await s.scalars(
                    select(ContactRecord).where(
                        ContactRecord.node == node, ContactRecord.state != "ended"
                    )
                )
            ).all()
            for row in rows:
                recorded = (
                    await s.scalars(
                        select(RecordingRecord.id).where(RecordingRecord.contact_id == row.id)
                    )
                ).all()
                row.recordings = sorted(set(row.recordings) | set(recorded))
                ended = max(now, row.created_at.timestamp())
                if row.state != ContactState.WRAPUP.value or row.disposition is None:
                    row.disposition = Disposition.NODE_FAILURE.value
                row.state = ContactState.ENDED.value
                row.end_cause = EndCause.NODE_FAILURE.value
                row.ended_at = _dt(ended)
                row.total_seconds = round(ended - row.created_at.timestamp(), 3)
                row.legs = [
                    {
                        **leg,
                        "state": "ended",
                        "ended_at": leg.get("ended_at") or ended,
                        "end_cause": leg.get("end_cause") or EndCause.NODE_FAILURE.value,
                    }
                    for leg in row.legs
                ]
        return len(rows)


class RecordingStore:
    """Recording metadata; files live under ``<recordings dir>/<tenant>/<yyyy>/<mm>/<dd>/``.

    Rows are written by the contact store's writer (no transaction on the call's path); a
    file whose row did not reach the database before a crash is found again by ``recover``.
    """

    def __init__(self, db: Database, root: Path, writer: ContactStore) -> None:
        self.db = db
        self.root = root
        self.writer = writer
        self._open: dict[str, dict[str, Any]] = {}

    def path_for(self, tenant_id: str, contact_id: str, recording_id: str, now: float) -> Path:
        day = datetime.fromtimestamp(now, UTC)
        return self.root / tenant_id / f"{day:%Y/%m/%d}" / f"{contact_id}-{recording_id}.wav"

    def started(
        self,
        recording_id: str,
        tenant_id: str,
        contact_id: str,
        agent_id: str | None,
        path: Path,
        channels: int,
        now: float,
        legs: list[str],
    ) -> None:
        values = {
            "id": recording_id,
            "tenant_id": tenant_id,
            "contact_id": contact_id,
            "agent_id": agent_id,
            "path": str(path.relative_to(self.root)),
            "channels": channels,
            "state": "recording",
            "started_at": _dt(now),
            "ended_at": None,
            "duration_seconds": 0.0,
            "bytes": 0,
            "sha256": None,
            "legs": legs,
            "failure_reason": None,
        }
        self._open[recording_id] = values
        self.writer.save_recording(values)

    def finished(
        self, recording_id: str, duration: float, size: int, sha256: str, now: float
    ) -> None:
        values = self._open.pop(recording_id, None)
        if values is None:
            return
        self.writer.save_recording(
            {
                **values,
                "state": "complete",
                "ended_at": _dt(now),
                "duration_seconds": duration,
                "bytes": size,
                "sha256": sha256,
            }
        )

    def failed(
        self,
        recording_id: str,
        reason: str,
        now: float,
        *,
        duration: float = 0.0,
        size: int = 0,
        sha256: str | None = None,
        ended: bool = False,
    ) -> None:
        """Mark a recording whose file could not be written; the call it belongs to goes on.

        Called when the failure happens (still open, ``ended`` False) and again when the
        recording stops, with what the file holds.
        """
        values = self._open.get(recording_id)
        if values is None:
            return
        values.update(
            state="failed",
            failure_reason=reason[:200],
            duration_seconds=duration,
            bytes=size,
            sha256=sha256,
            ended_at=_dt(now) if ended else None,
        )
        if ended:
            del self._open[recording_id]
        self.writer.save_recording(dict(values))

    async def recover(self, contact_ids: set[str]) -> int:
        """Finish the recordings of ``contact_ids`` (the contacts a dead node left open) from
        what reached the disk, the WAV header made to match it, and give a row to any of
        their files whose row was still queued when the node died. Recordings of other
        nodes' contacts are not touched, whatever this node's disk holds."""
        root = self.root
        if not contact_ids:
            return 0
        async with self.db.transaction() as s:
            rows = (
                await s.scalars(
                    select(RecordingRecord).where(
                        RecordingRecord.state == "recording",
                        RecordingRecord.contact_id.in_(contact_ids),
                    )
                )
            ).all()
            for row in rows:
                await asyncio.to_thread(repair_wav, root / row.path)
                duration, size, digest = await asyncio.to_thread(inspect_wav, root / row.path)
                row.state = "recovered" if size else "lost"
                row.duration_seconds = duration
                row.bytes = size
                row.sha256 = digest
                row.ended_at = _dt(row.started_at.timestamp() + duration)
            known = set((await s.scalars(select(RecordingRecord.path))).all())
            tenants = set((await s.scalars(select(Tenant.id))).all())
            orphans = [
                found
                for found in await asyncio.to_thread(_orphan_files, root, known, tenants)
                if found[2] in contact_ids
            ]
            for rel, tenant_id, contact_id, recording_id in orphans:
                await asyncio.to_thread(repair_wav, root / rel)
                duration, size, digest = await asyncio.to_thread(inspect_wav, root / rel)
                mtime = (root / rel).stat().st_mtime
                s.add(
                    RecordingRecord(
                        id=recording_id,
                        tenant_id=tenant_id,
                        contact_id=contact_id,
                        path=rel,
                        state="recovered" if size else "lost",
                        started_at=_dt(mtime - duration),
                        ended_at=_dt(mtime),
                        duration_seconds=duration,
                        bytes=size,
                        sha256=digest,
                        channels=2,
                        legs=[],
                    )
                )
        return len(rows) + len(orphans)


def _orphan_files(
    root: Path, known: set[str], tenants: set[str]
) -> list[tuple[str, str, str, str]]:
    """WAV files under ``root`` with no row: (relative path, tenant, contact, recording)."""
    found: list[tuple[str, str, str, str]] = []
    if not root.exists():
        return found
    for path in root.glob("*/*/*/*/*.wav"):
        rel = str(path.relative_to(root))
        tenant_id = rel.split("/", 1)[0]
        contact_id, _, recording_id = path.stem.partition("-")
        if rel in known or tenant_id not in tenants or len(recording_id) != 32:
            continue
        found.append((rel, tenant_id, contact_id, recording_id))
    return found


def repair_wav(path: Path) -> bool:
    """Make a WAV cut off by a crash consistent: the RIFF and data sizes say what the file
    holds, a trailing partial frame is dropped. Returns whether anything changed."""
    if not path.exists():
        return False
    with open(path, "r+b") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        size = os.fstat(f.fileno()).st_size
        align = 1
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return False
            kind, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if kind == b"fmt ":
                fmt = f.read(length)
                align = max(1, int.from_bytes(fmt[12:14], "little"))
                continue
            if kind == b"data":
                break
            f.seek(length + (length & 1), os.SEEK_CUR)
        start = f.tell()
        data = (size - start) // align * align
        changed = data != length or size != start + data
        if not changed:
            return False
        f.truncate(start + data)
        f.seek(start - 4)
        f.write(data.to_bytes(4, "little"))
        f.seek(4)
        f.write((start + data - 8).to_bytes(4, "little"))
    return True


def inspect_wav(path: Path) -> tuple[float, int, str | None]:
    """(duration seconds, bytes, sha256) of a WAV file as it is on disk."""
    if not path.exists():
        return 0.0, 0, None
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    try:
        with wave.open(str(path), "rb") as w:
            frames = w.getnframes()
            rate = w.getframerate()
            duration = frames / rate if rate else 0.0
            if frames == 0 and size > 44:  # header not patched yet: count the data bytes
                duration = (size - 44) / (rate * w.getnchannels() * w.getsampwidth())
    except (wave.Error, EOFError):
        duration = 0.0
    return duration, size, digest.hexdigest()
