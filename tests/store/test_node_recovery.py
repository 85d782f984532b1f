"""Recovery scoped by node on a shared database (SQLite and PostgreSQL): a replacement node
with a fresh data dir starts with the demo on, closes what the dead node left open as of its
last heartbeat, and touches nothing of a live node; a cut-off WAV is repaired."""

from __future__ import annotations

import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from cloudcc.app import Node
from cloudcc.contacts.records import ContactStore, RecordingStore, inspect_wav, repair_wav
from cloudcc.recovery.journal import DialogJournal
from cloudcc.recovery.service import NodeRecovery
from cloudcc.recovery.tables import NodeRecord
from cloudcc.store.tables import ContactRecord, RecordingRecord
from tests.conftest import make_settings


def _cut_wav(path: Path, seconds: float) -> None:
    """A WAV as a killed writer leaves it: header sizes of an earlier flush, more data after,
    and half a frame at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * 2 * 800)  # 0.1 s known to the header
    with open(path, "ab") as f:
        f.write(b"\x02\x00" * 2 * int(8000 * seconds) + b"\x03")


def test_a_cut_off_wav_is_repaired_to_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    _cut_wav(path, 2.0)
    assert repair_wav(path) is True
    with wave.open(str(path), "rb") as w:
        assert abs(w.getnframes() / w.getframerate() - 2.1) < 0.01
    assert repair_wav(path) is False  # already consistent
    duration, size, digest = inspect_wav(path)
    assert abs(duration - 2.1) < 0.01 and size == path.stat().st_size and digest


async def _seed(node: Node, name: str, alive_ago: float, root: Path) -> tuple[str, str]:
    """A node row, one connected contact of it with 7 s of checkpointed talk and its open
    recording (a cut-off WAV under ``root``); returns (contact id, recording id)."""
    now = time.time()
    tenant_id = node.demo["tenant_id"] if node.demo else None
    assert tenant_id
    contact_id, recording_id = f"{name}c".ljust(32, "0"), f"{name}r".ljust(32, "0")
    rel = f"{tenant_id}/2026/12/07/{contact_id}-{recording_id}.wav"
    _cut_wav(root / rel, 3.0)
    async with node.db.transaction() as s:
        s.add(
            NodeRecord(
                name=name,
                pid=1,
                started_at=datetime.fromtimestamp(now - 100, UTC),
                alive_at=datetime.fromtimestamp(now - alive_ago, UTC),
            )
        )
        s.add(
            ContactRecord(
                id=contact_id,
                tenant_id=tenant_id,
                node=name,
                channel="voice",
                direction="inbound",
                customer="+15550",
                dialed="4000",
                state="connected",
                queue="support",
                created_at=datetime.fromtimestamp(now - alive_ago - 20, UTC),
                answered_at=datetime.fromtimestamp(now - alive_ago - 12, UTC),
                talk_seconds=7.0,
                legs=[{"id": "l1", "state": "up", "ended_at": None}],
            )
        )
        s.add(
            RecordingRecord(
                id=recording_id,
                tenant_id=tenant_id,
                contact_id=contact_id,
                path=rel,
                state="recording",
                started_at=datetime.fromtimestamp(now - alive_ago - 12, UTC),
            )
        )
    return contact_id, recording_id


async def test_a_replacement_node_closes_the_dead_nodes_contacts_only(
    tmp_path: Path, database_url: str
) -> None:
    shared = tmp_path / "recordings"  # recordings on storage every node mounts
    first = Node(make_settings(tmp_path / "a", database_url))
    await first.prepare()
    try:
        dead = await _seed(first, "dead", alive_ago=60, root=shared)
        live = await _seed(first, "live", alive_ago=1, root=shared)
    finally:
        await first.close()
    dead_alive_at = time.time() - 60

    # A fresh data dir on the same database, demo on: it starts.
    replacement = Node(make_settings(tmp_path / "b", database_url))
    await replacement.prepare()
    try:
        assert replacement.demo is None  # the demo exists; its passwords are not here
        contacts = ContactStore(replacement.db, node="replacement")
        recordings = RecordingStore(replacement.db, shared, contacts)
        recovery = NodeRecovery(
            replacement.db,
            "replacement",
            contacts,
            recordings,
            DialogJournal(replacement.db, "replacement"),
            list,
            dead_after_seconds=30,
        )
        await recovery.recover_own()
        assert await recovery.adopt_dead() == ["dead"]
        assert await recovery.adopt_dead() == []  # claimed once

        async with replacement.db.session() as s:
            rows = {r.id: r for r in (await s.scalars(select(ContactRecord))).all()}
            recs = {r.id: r for r in (await s.scalars(select(RecordingRecord))).all()}
            nodes = {n.name: n for n in (await s.scalars(select(NodeRecord))).all()}
        closed = rows[dead[0]]
        assert closed.state == "ended" and closed.end_cause == "node_failure"
        assert closed.disposition == "node_failure"
        assert closed.talk_seconds == 7.0
        assert closed.ended_at is not None
        assert abs(closed.ended_at.timestamp() - dead_alive_at) < 5
        assert all(leg["state"] == "ended" for leg in closed.legs)
        assert closed.recordings == [dead[1]]
        rec = recs[dead[1]]
        assert rec.state == "recovered" and abs(rec.duration_seconds - 3.1) < 0.05
        assert nodes["dead"].stopped_at is not None

        assert rows[live[0]].state == "connected"  # a live node's call is not touched
        assert recs[live[1]].state == "recording"
        assert nodes["live"].stopped_at is None
        assert nodes["replacement"].alive_at > datetime.now(UTC) - timedelta(seconds=30)
    finally:
        await replacement.close()


async def test_no_node_is_judged_dead_just_after_the_store_was_away(
    tmp_path: Path, database_url: str
) -> None:
    """After a store outage every heartbeat is old, the live nodes' too: a node adopts others
    only once its own heartbeats have reached the store for ``dead_after`` seconds again, and
    never a node still heard from on another channel (NATS in a cluster)."""
    from cloudcc.store.db import Database

    node = Node(make_settings(tmp_path / "a", database_url))
    await node.prepare()
    away = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'no.db'}")  # cannot open
    try:
        other = await _seed(node, "other", alive_ago=20, root=tmp_path / "recordings")
        now = [time.time()]
        contacts = ContactStore(node.db, node="me")
        recovery = NodeRecovery(
            node.db,
            "me",
            contacts,
            RecordingStore(node.db, tmp_path / "recordings", contacts),
            DialogJournal(node.db, "me"),
            list,
            dead_after_seconds=10,
            clock=lambda: now[0],
        )
        await recovery.recover_own()
        recovery.db = away  # the store goes away: this node's heartbeat fails
        try:
            await recovery.checkpoint()
        except Exception:
            pass
        else:
            raise AssertionError("the heartbeat reached a store that is away")
        recovery.db = node.db  # back
        await recovery.checkpoint()
        now[0] += 5
        assert await recovery.adopt_dead() == []  # 5 s of heartbeats since the gap: too early
        recovery.still_heard = lambda name: name == "other"
        now[0] += 6
        assert await recovery.adopt_dead() == []  # still heard from: alive
        recovery.still_heard = None
        assert await recovery.adopt_dead() == ["other"]
        async with node.db.session() as s:
            row = await s.get(ContactRecord, other[0])
        assert row is not None and row.state == "ended" and row.end_cause == "node_failure"
    finally:
        await away.close()
        await node.close()
