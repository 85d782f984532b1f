"""Agents' sign-ins kept in the store, so that a restarted node brings its agents back as they
were (signed in, ready or not ready with their reason, on the phone they logged in with)
instead of signed out.

Follows ``agent.state_changed`` events: a sign-out removes the row; any other change writes
the agent's presence (what it chose, not the activity of the moment).

On a cluster (``cluster()``) the rows are what a node taking a tenant's routing over builds
its engine from (``load_tenant``), with the contacts agents are talking on; only the node
running the tenant's engine writes presence, and the node an agent signed in through writes
its phone, which every node then rings (``device``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloudcc.bus import LocalBus
from cloudcc.contacts.acd import RoutingEngine
from cloudcc.contacts.voice import VoiceService
from cloudcc.recovery.tables import AgentSignIn
from cloudcc.routing.exceptions import RoutingError
from cloudcc.routing.model import Channel, Presence
from cloudcc.store.db import Database
from cloudcc.store.tables import ContactRecord

log = logging.getLogger("cloudcc.recovery.agents")


class AgentSignIns:
    def __init__(self, db: Database, bus: LocalBus, voice: VoiceService) -> None:
        self.db = db
        self.voice = voice
        self._pending: dict[str, dict[str, Any] | None] = {}  # agent -> row, None: signed out
        self._known: dict[str, tuple[Any, ...]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.clustered = False
        bus.on(lambda e: e.type == "agent.state_changed", self._changed)

    # --- on a cluster -------------------------------------------------------------------

    def cluster(self) -> None:
        """Tenants' engines move between nodes: each is built from these rows when taken."""
        self.clustered = True
        self.voice.acd.loaders.append(self.load_tenant)
        self.voice.shared_device = self.device
        self.voice.device_chosen = self.note_device

    async def load_tenant(self, tenant_id: str, engine: RoutingEngine) -> None:
        """Sign the tenant's agents into a rebuilt engine as they were, and mark busy those
        talking on a live contact (claimed by their node, or ended: cloudcc.contacts.acd)."""
        acd = self.voice.acd
        async with self.db.session() as s:
            rows = (
                await s.scalars(select(AgentSignIn).where(AgentSignIn.tenant_id == tenant_id))
            ).all()
            talking = (
                await s.execute(
                    select(ContactRecord.id, ContactRecord.agent_id).where(
                        ContactRecord.tenant_id == tenant_id,
                        ContactRecord.state == "connected",
                        ContactRecord.agent_id.is_not(None),
                    )
                )
            ).all()
        wrapping = 0
        for row in rows:
            presence = Presence.READY if row.ready else Presence.NOT_READY
            try:
                acd.run(tenant_id, engine, "agent_login", row.agent_id, presence=presence,
                        reason=None if row.ready else (row.reason or "busy"))  # fmt: skip
            except RoutingError as exc:
                log.warning("agent %s could not be signed in again: %s", row.agent_id, exc)
                continue
            # In wrap-up on the owner before: for the time it has left (past ones are over).
            for contact_id, channel, queue_id, until in row.wrap_up or ():
                try:
                    acd.run(tenant_id, engine, "wrapup_resumed", row.agent_id, contact_id,
                            Channel(channel), queue_id,
                            None if until is None else float(until))  # fmt: skip
                except (RoutingError, ValueError, TypeError) as exc:
                    log.warning("agent %s's wrap-up of %s not kept: %s",
                                row.agent_id, contact_id, exc)  # fmt: skip
                    continue
                wrapping += 1
        for contact_id, agent_id in talking:
            try:
                acd.run(tenant_id, engine, "direct_contact_started", agent_id, contact_id,
                        Channel.VOICE)  # fmt: skip
            except RoutingError:
                continue
            acd.claim_from_store(tenant_id, contact_id, str(agent_id))
        log.info("tenant %s: routing rebuilt with %d agents signed in, %d talking, "
                 "%d in wrap-up", tenant_id, len(rows), len(talking), wrapping)  # fmt: skip

    async def device(self, tenant_id: str, agent_id: str, wait: float = 1.0) -> str | None:
        """The phone the agent signed in with, on whichever node. The routing owner may
        offer the agent a call before the node it signed in through has written its phone
        (just after the sign-in): looked up again for up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            async with self.db.session() as s:
                row = await s.scalar(
                    select(AgentSignIn).where(
                        AgentSignIn.tenant_id == tenant_id, AgentSignIn.agent_id == agent_id
                    )
                )
            if row is not None and (
                row.device is not None
                or (datetime.now(UTC) - row.updated_at).total_seconds() > wait
            ):
                return row.device  # None: it rings a phone registered with one node
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)

    async def note_device(
        self, tenant_id: str, agent_id: str, device: str | None, ready: bool
    ) -> None:
        """The agent signed in through this node with ``device`` (None: its registration)."""
        row = {
            "agent_id": agent_id,
            "tenant_id": tenant_id,
            "device": device,
            "ready": ready,
            "reason": None if ready else "busy",
            "updated_at": datetime.now(UTC),
        }
        async with self.db.transaction() as s:
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            stmt = insert(AgentSignIn).values(row)
            await s.execute(
                stmt.on_conflict_do_update(
                    index_elements=[AgentSignIn.agent_id], set_={"device": stmt.excluded.device}
                )
            )

    def _changed(self, event: Any) -> None:
        tenant_id, agent_id = event.tenant_id, event.data["agent_id"]
        engine = self.voice.acd.loaded(tenant_id)
        if engine is None:
            return
        try:
            stats = engine.agent_stats(agent_id, time.time())
        except Exception:  # the agent was deleted meanwhile
            return
        if stats.presence is Presence.OFFLINE:
            if self._known.pop(agent_id, None) is not None:
                self._pending[agent_id] = None
                self._wake.set()
            return
        ready = stats.presence is not Presence.NOT_READY
        # On a cluster the phone is written by the node the agent signed in through.
        device = None if self.clustered else self.voice.logged_in_device(tenant_id, agent_id)
        reason = None if ready else stats.reason
        # Its wrap-ups, with when each ends: a new routing owner keeps them (``load_tenant``).
        wrap_up = [
            [contact_id, channel.value, queue_id, None if until is None else round(until, 3)]
            for contact_id, channel, queue_id, until in engine.wrap_ups(agent_id)
        ] or None
        key = (tenant_id, device, ready, reason, repr(wrap_up))
        if self._known.get(agent_id) == key:
            return
        self._known[agent_id] = key
        self._pending[agent_id] = {
            "agent_id": agent_id,
            "tenant_id": tenant_id,
            "device": device,
            "ready": ready,
            "reason": reason,
            "wrap_up": wrap_up,
            "updated_at": datetime.now(UTC),
        }
        self._wake.set()

    async def restore(self) -> int:
        """Sign in again every agent signed in when the node stopped; returns how many.
        On a cluster the node that takes a tenant's routing does it (``load_tenant``)."""
        if self.clustered:
            return 0
        async with self.db.session() as s:
            rows = (await s.scalars(select(AgentSignIn))).all()
        restored = 0
        for row in rows:
            try:
                await self.voice.agent_login(row.tenant_id, row.agent_id, row.device, row.ready)
                if not row.ready and row.reason:
                    await self.voice.agent_presence(row.tenant_id, row.agent_id, False, row.reason)
            except Exception as exc:  # disabled or deleted since: it stays signed out
                log.warning("agent %s could not be signed in again: %s", row.agent_id, exc)
                self._pending[row.agent_id] = None
                self._wake.set()
                continue
            restored += 1
        if restored:
            log.info("signed %d agents in again as they were", restored)
        return restored

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agent-sign-ins")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._write()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.05)
            try:
                await self._write()
            except Exception:
                log.exception("writing agents' sign-ins failed; retrying")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _write(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        gone = [agent for agent, row in pending.items() if row is None]
        rows = [row for row in pending.values() if row is not None]
        try:
            async with self.db.transaction() as s:
                if gone:
                    await s.execute(delete(AgentSignIn).where(AgentSignIn.agent_id.in_(gone)))
                if rows:
                    insert = sqlite_insert if self.db.is_sqlite else pg_insert
                    stmt = insert(AgentSignIn)
                    columns: tuple[str, ...] = (
                        "tenant_id", "ready", "reason", "wrap_up", "updated_at",
                    )  # fmt: skip
                    if not self.clustered:
                        columns += ("device",)
                    stmt = stmt.on_conflict_do_update(
                        index_elements=[AgentSignIn.agent_id],
                        set_={c: stmt.excluded[c] for c in columns},
                    )
                    await s.execute(stmt, rows)
        except Exception:
            for agent, row in pending.items():
                self._pending.setdefault(agent, row)
            raise
