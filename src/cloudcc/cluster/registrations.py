"""Agents' phones registered with one node, reachable from every node of a cluster.

A phone registers through the SIP edge (Kamailio, deploy/kamailio/kamailio.cfg), which adds
a Path header with the phone's real source address (RFC 3327 §4, ``add_path_received``); the
node that takes the REGISTER keeps the binding, and another node that has to ring the agent
(it took the call the agent is offered) does not know the phone. So each node writes the
bindings of its agents' phones to the store (``sip_bindings``: AOR, contact, received address,
Path, expiry, and the node that took it), when a REGISTER is taken or refreshed and when a
binding goes (expiry, de-registration, a closed flow); a node that rings an agent with no
phone of its own reads them and adds them to its registrar as remote bindings
(``Registrar.adopt``), which it reaches through their Path (the edge relays to the phone:
RFC 3327 §5.3, Route from the Path).

Only bindings with a Path are shared: a phone registered straight with a node (no edge
between) is reached over that node's flow or NAT binding, which another node cannot use.
A node starting drops the rows it wrote before (it holds none of their flows any more; the
phones register again); the rows of a node that died stay until they expire, and their
phones stay reachable through the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select

from cloudcc.cluster.tables import SipBindingRecord
from cloudcc.sip.registrar import Binding
from cloudcc.store.db import Database

log = logging.getLogger("cloudcc.cluster.registrations")


def _row_id(node: str, aor: str, contact: str) -> str:
    return hashlib.sha256(f"{node}\n{aor}\n{contact}".encode()).hexdigest()[:64]


class SharedRegistrations:
    """Writes this node's agents' bindings to the store; reads the others' on demand."""

    def __init__(self, db: Database, node: str, endpoint: Any) -> None:
        self.db = db
        self.node = node
        self.sip = endpoint  # cloudcc.sip.endpoint.SipEndpoint
        self._pending: set[str] = set()  # AORs to write again
        self._written: set[str] = set()  # AORs with rows of this node
        self._adopted: dict[tuple[str, str], str] = {}  # (tenant, agent) -> AOR adopted
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.db.transaction() as s:
            await s.execute(delete(SipBindingRecord).where(SipBindingRecord.node == self.node))
        registrar = self.sip.registrar
        registrar.subscribe(self._changed)
        registrar.on_register = self._changed
        self._task = asyncio.create_task(self._run(), name="shared-registrations")

    async def stop(self) -> None:
        registrar = self.sip.registrar
        with contextlib.suppress(ValueError):
            registrar.unsubscribe(self._changed)
        if registrar.on_register == self._changed:
            registrar.on_register = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._write()

    # --- this node's phones --------------------------------------------------------------

    def _changed(self, aor: str, bindings: list[Binding]) -> None:
        if aor in self._written or any(_shared(b) for b in bindings):
            self._pending.add(aor)
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._write()
            except Exception:
                log.exception("writing SIP registrations to the store failed; retrying")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _write(self) -> None:
        aors, self._pending = self._pending, set()
        if not aors:
            return
        now, wall = self.sip.now(), time.time()
        rows = []
        for aor in aors:
            for b in self.sip.registrar.lookup(aor, now):
                if not _shared(b):
                    continue
                tenant_id, agent_id = b.owner
                rows.append(
                    {
                        "id": _row_id(self.node, aor, b.contact),
                        "node": self.node,
                        "aor": aor,
                        "tenant_id": tenant_id,
                        "agent_id": agent_id,
                        "contact": b.contact,
                        "received": f"{b.source[0]}:{b.source[1]}" if b.source else None,
                        "transport": b.transport,
                        "path": list(b.path),
                        "q": b.q,
                        "expires_at": datetime.fromtimestamp(wall + b.expires_at - now, UTC),
                        "registered_at": datetime.fromtimestamp(wall + b.registered_at - now, UTC),
                    }
                )
        try:
            async with self.db.transaction() as s:
                await s.execute(
                    delete(SipBindingRecord).where(
                        SipBindingRecord.node == self.node, SipBindingRecord.aor.in_(aors)
                    )
                )
                if rows:
                    await s.execute(insert(SipBindingRecord), rows)
        except Exception:
            self._pending |= aors
            raise
        self._written -= aors
        self._written |= {row["aor"] for row in rows}

    # --- the other nodes' phones ---------------------------------------------------------

    async def device(self, tenant_id: str, agent_id: str) -> str | None:
        """The AOR of the agent's phone registered with another node (through the edge),
        its bindings now in this node's registrar; None when there is none."""
        async with self.db.session() as s:
            rows = (
                await s.scalars(
                    select(SipBindingRecord).where(
                        SipBindingRecord.tenant_id == tenant_id,
                        SipBindingRecord.agent_id == agent_id,
                        SipBindingRecord.node != self.node,
                        SipBindingRecord.expires_at > datetime.now(UTC),
                    )
                )
            ).all()
        now, wall = self.sip.now(), time.time()
        by_aor: dict[str, list[Binding]] = {}
        for row in rows:
            if not row.path:  # reached over the other node's flow only
                continue
            source = None
            if row.received:
                host, _, port = row.received.rpartition(":")
                source = (host, int(port))
            by_aor.setdefault(row.aor, []).append(
                Binding(
                    aor=row.aor,
                    contact=row.contact,
                    expires_at=now + (row.expires_at.timestamp() - wall),
                    call_id="",
                    cseq=0,
                    registered_at=now + (row.registered_at.timestamp() - wall),
                    q=row.q,
                    source=source,
                    transport=row.transport,
                    path=tuple(str(p) for p in row.path),
                    node=row.node,
                )
            )
        key = (tenant_id, agent_id)
        before = self._adopted.pop(key, None)
        if before is not None and before not in by_aor:
            self.sip.registrar.adopt(before, [], now)  # gone since
        if not by_aor:
            return None
        # The most recently registered phone of the agent.
        aor = max(by_aor, key=lambda a: max(b.registered_at for b in by_aor[a]))
        self.sip.registrar.adopt(aor, by_aor[aor], now)
        self._adopted[key] = aor
        return aor


def _shared(b: Binding) -> bool:
    """A binding of an agent's phone taken here through the edge (it has a Path)."""
    return b.node is None and bool(b.path) and isinstance(b.owner, tuple) and len(b.owner) == 2
