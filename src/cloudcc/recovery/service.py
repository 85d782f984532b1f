"""A node's life in the store: its heartbeat, periodic checkpoints of live contacts, and the
recovery of what a dead node left behind (its contacts, recordings and SIP dialogs).

At start a node closes what its own previous process left open, as of the last moment that
process was known alive (its heartbeat), and sends a BYE in each of its dialogs. While it
runs it also adopts a node whose heartbeat stopped ``dead_after`` seconds ago without a clean
stop (a replacement node with a fresh data dir, a survivor in a cluster): the first node to
claim it in the store does the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloudcc.contacts.model import Contact
from cloudcc.contacts.records import ContactStore, RecordingStore
from cloudcc.recovery.journal import DialogJournal, left_dialogs, release_dialogs
from cloudcc.recovery.tables import NodeRecord, SipDialogRecord
from cloudcc.sip.endpoint import SipEndpoint
from cloudcc.store.db import Database
from cloudcc.store.tables import ContactRecord

log = logging.getLogger("cloudcc.recovery")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class NodeRecovery:
    """Heartbeat, checkpoints and crash recovery of one node."""

    def __init__(
        self,
        db: Database,
        node: str,
        contacts: ContactStore,
        recordings: RecordingStore,
        journal: DialogJournal,
        live: Callable[[], Iterable[Contact]],
        *,
        checkpoint_seconds: float = 2.0,
        dead_after_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.node = node
        self.contacts = contacts
        self.recordings = recordings
        self.journal = journal
        self.live = live
        self.checkpoint_seconds = checkpoint_seconds
        self.dead_after_seconds = dead_after_seconds
        self.clock = clock
        self.sip: SipEndpoint | None = None
        self._task: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[tuple[int, int]]] = set()
        self._left: list[SipDialogRecord] = []
        #: Since when this node's heartbeats have reached the store without a gap (None: the
        #: last one failed; 0: no gap since the start). After a gap, others are judged dead
        #: only once this node has beaten for ``dead_after`` seconds again: a store outage
        #: makes every heartbeat old, the live nodes' too.
        self._beating_since: float | None = 0.0
        #: In a cluster: whether a node was heard from lately on another channel (NATS). A
        #: node whose heartbeat is old but that is still heard from is not dead (stalled on
        #: the store, or its writes slow): its calls are not closed.
        self.still_heard: Callable[[str], bool] | None = None
        self.recovered: dict[str, int] = {"contacts": 0, "recordings": 0, "dialogs": 0}

    # --- start and stop -------------------------------------------------------------

    async def recover_own(self) -> None:
        """Before SIP listens: close what this node's previous process left open and take
        the node's row; the dialogs it left are released once SIP runs (``start``)."""
        now = self.clock()
        async with self.db.session() as s:
            previous = await s.get(NodeRecord, self.node)
        alive_at = now
        if previous is not None and previous.stopped_at is None:
            alive_at = min(now, previous.alive_at.timestamp())
        self._left = await left_dialogs(self.db, self.node)
        await self._close(self.node, alive_at)
        async with self.db.transaction() as s:
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            values = {
                "name": self.node,
                "pid": os.getpid(),
                "started_at": _dt(now),
                "alive_at": _dt(now),
                "stopped_at": None,
            }
            stmt = insert(NodeRecord).values(values)
            await s.execute(
                stmt.on_conflict_do_update(
                    index_elements=[NodeRecord.name],
                    set_={k: v for k, v in values.items() if k != "name"},
                )
            )

    def start(self, sip: SipEndpoint) -> None:
        """SIP listens: send the BYEs of the crash, then beat and checkpoint."""
        self.sip = sip
        if self._left:
            self._release(self._left)
            self._left = []
        self._task = asyncio.create_task(self._run(), name="node-heartbeat")

    async def stop(self) -> None:
        """A clean stop: nothing left to recover (live calls were ended before)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._releases):
            task.cancel()
        await asyncio.gather(*self._releases, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with self.db.transaction() as s:
                await s.execute(
                    update(NodeRecord)
                    .where(NodeRecord.name == self.node)
                    .values(stopped_at=_dt(self.clock()), alive_at=_dt(self.clock()))
                )

    # --- while running --------------------------------------------------------------

    async def _run(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(self.checkpoint_seconds)
            try:
                await self.checkpoint()
                beats += 1
                if beats * self.checkpoint_seconds >= self.dead_after_seconds / 3:
                    beats = 0
                    await self.adopt_dead()
            except Exception as exc:
                log.warning("node heartbeat failed (the store is unreachable?): %r", exc)

    async def checkpoint(self) -> None:
        """Record that this node is alive now, with every live contact's times so far."""
        now = self.clock()
        for contact in self.live():
            if not contact.ended:
                self.contacts.checkpoint(contact, now)
        self.journal.refresh()
        try:
            async with self.db.transaction() as s:
                await s.execute(
                    update(NodeRecord).where(NodeRecord.name == self.node).values(alive_at=_dt(now))
                )
        except Exception:
            self._beating_since = None  # a gap: others' heartbeats are not to be judged
            raise
        if self._beating_since is None:
            self._beating_since = now

    async def adopt_dead(self) -> list[str]:
        """Close what nodes that died without a clean stop left open; returns their names.

        Not within ``dead_after`` seconds of a gap in this node's own heartbeats: when the
        store was away (a PostgreSQL restart) every node's heartbeat is old, and a live
        node's calls must not be closed and sent BYEs."""
        now = self.clock()
        if self._beating_since is None or now - self._beating_since < self.dead_after_seconds:
            return []
        threshold = _dt(now) - timedelta(seconds=self.dead_after_seconds)
        async with self.db.session() as s:
            names = (
                await s.scalars(
                    select(NodeRecord.name).where(
                        NodeRecord.name != self.node,
                        NodeRecord.stopped_at.is_(None),
                        NodeRecord.alive_at < threshold,
                    )
                )
            ).all()
        adopted = []
        for name in names:
            if self.still_heard is not None and self.still_heard(name):
                log.warning("node %s beats no more in the store but is still heard from", name)
                continue
            async with self.db.transaction() as s:
                dead = await s.get(NodeRecord, name)
                if dead is None:
                    continue
                alive_at = dead.alive_at.timestamp()
                claimed = await s.execute(  # the first node to claim it recovers it
                    update(NodeRecord)
                    .where(
                        NodeRecord.name == name,
                        NodeRecord.stopped_at.is_(None),
                        NodeRecord.alive_at < threshold,
                    )
                    .values(stopped_at=_dt(now))
                )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            log.warning("node %s stopped beating at %s: closing what it left", name, alive_at)
            left = await left_dialogs(self.db, name)
            await self._close(name, alive_at)
            if left and self.sip is not None:
                self._release(left)
            adopted.append(name)
        return adopted

    # --- recovery -------------------------------------------------------------------

    async def _close(self, node: str, alive_at: float) -> None:
        async with self.db.session() as s:
            open_ids = set(
                (
                    await s.scalars(
                        select(ContactRecord.id).where(
                            ContactRecord.node == node, ContactRecord.state != "ended"
                        )
                    )
                ).all()
            )
        recordings = await self.recordings.recover(open_ids)
        contacts = await self.contacts.recover(now=alive_at, node=node)
        self.recovered["contacts"] += contacts
        self.recovered["recordings"] += recordings
        if contacts or recordings:
            log.warning(
                "closed %d contacts and %d recordings left open by node %s (last alive %s)",
                contacts,
                recordings,
                node,
                _dt(alive_at).isoformat(),
            )

    def _release(self, rows: list[SipDialogRecord]) -> None:
        assert self.sip is not None
        self.recovered["dialogs"] += len(rows)
        task = asyncio.create_task(release_dialogs(self.db, self.sip, rows))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
