"""A tenant's SIP trunks at run time, as a carrier-facing SBC keeps them.

``Trunks`` holds each tenant's trunk rows (cached until a ``trunk.*`` event), the channels in
use on each trunk (inbound and outbound calls, counted on this node), and the registrations
this node keeps at the carriers that want them (RFC 3261 §10.2, refreshed by
``sip.registration``). A registered Contact carries a per-trunk user that only the carrier
learns (like Asterisk's ``line``), so the calls it sends to that contact are known to be that
trunk's. Outbound routes are the tenant's outbound trunks in priority order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from cloudcc.bus import LocalBus
from cloudcc.sip.auth import Credential
from cloudcc.sip.endpoint import SipEndpoint
from cloudcc.sip.exceptions import SipError
from cloudcc.sip.registration import Registration
from cloudcc.sip.uri import parse_sip_uri
from cloudcc.store.db import Database
from cloudcc.store.tables import Trunk
from cloudcc.tenancy.credentials import SecretBox

log = logging.getLogger("cloudcc.contacts.trunks")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

REGISTRATION_EXPIRES = 600  # seconds asked of a carrier's registrar


@dataclass(frozen=True)
class TrunkInfo:
    """What calls need of one trunk row."""

    id: str
    tenant_id: str
    name: str
    host: str
    port: int
    transport: str
    username: str | None
    password_enc: str | None
    networks: tuple[Network, ...]
    registration: bool
    max_channels: int
    caller_id: str | None
    priority: int
    outbound: bool
    inbound_auth: bool

    @classmethod
    def of(cls, row: Trunk) -> TrunkInfo:
        networks = []
        for text in row.allowed_ips or []:
            with contextlib.suppress(ValueError):
                networks.append(ipaddress.ip_network(text, strict=False))
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            name=row.name,
            host=row.host,
            port=row.port,
            transport=row.transport,
            username=row.username,
            password_enc=row.password_enc,
            networks=tuple(networks),
            registration=row.registration,
            max_channels=row.max_channels,
            caller_id=row.caller_id,
            priority=row.priority,
            outbound=row.outbound,
            inbound_auth=row.inbound_auth,
        )

    def admits(self, ip: str) -> bool:
        """Whether a request from ``ip`` comes from one of the trunk's allowed networks."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    @property
    def address(self) -> str:
        """``host:port`` with ``;transport=`` when not UDP: the trunk's SIP address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        suffix = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"{host}:{self.port}{suffix}"

    def uri_for(self, number: str) -> str:
        return f"sip:{number}@{self.address}"

    def registration_key(self) -> tuple[object, ...]:
        """What a registration depends on: a change of any of these registers anew."""
        return (self.host, self.port, self.transport, self.username, self.password_enc)


@dataclass(frozen=True)
class FromTrunk:
    """The owner of an INVITE admitted as a trunk's call: the number (row) it reaches."""

    tenant_id: str
    trunk_id: str
    number: Any = field(compare=False)


@dataclass(frozen=True)
class TrunkPeer:
    """The owner of a digest credential: a trunk's peer (a PBX) that authenticates to us."""

    tenant_id: str
    trunk_id: str


@dataclass(frozen=True)
class NumberEntry:
    """A tenant's number as inbound routing sees it (``row`` is its PhoneNumber)."""

    row: Any
    provisioned: bool  # the platform operator provisioned it to the row's tenant

    @property
    def valid(self) -> bool:
        """Provisioned, or brought by the tenant on one of its trunks (else it is inert)."""
        return self.provisioned or self.row.trunk_id is not None

    def answers(self, trunk: TrunkInfo) -> bool:
        """Whether a call that came through ``trunk`` may reach this number."""
        if self.row.trunk_id is not None:
            return bool(self.row.trunk_id == trunk.id)
        return self.provisioned and trunk.tenant_id == self.row.tenant_id


class Trunks:
    def __init__(self, db: Database, bus: LocalBus, sip: SipEndpoint, box: SecretBox) -> None:
        self.db = db
        self.sip = sip
        self.box = box
        self._rows: dict[str, list[TrunkInfo]] = {}
        self._channels: dict[str, set[Hashable]] = {}  # trunk id -> calls holding a channel
        self._held: dict[Hashable, str] = {}  # call -> trunk id
        self._registrations: dict[str, tuple[TrunkInfo, Registration]] = {}
        self._lines: dict[str, TrunkInfo] = {}  # registered Contact user -> trunk
        self._started = False
        self._tasks: set[asyncio.Task[None]] = set()
        bus.on(lambda e: e.type.startswith("trunk."), self._trunk_changed)

    # --- rows ----------------------------------------------------------------------------

    async def of(self, tenant_id: str) -> list[TrunkInfo]:
        """The tenant's trunks, in the order calls out try them (priority, then name)."""
        rows = self._rows.get(tenant_id)
        if rows is None:
            async with self.db.session() as s:
                found = (await s.scalars(select(Trunk).where(Trunk.tenant_id == tenant_id))).all()
            rows = sorted((TrunkInfo.of(r) for r in found), key=lambda t: (t.priority, t.name))
            self._rows[tenant_id] = rows
        return rows

    async def get(self, tenant_id: str, trunk_id: str) -> TrunkInfo | None:
        return next((t for t in await self.of(tenant_id) if t.id == trunk_id), None)

    def credentials(self, trunk: TrunkInfo) -> Credential | None:
        """The digest credentials for the trunk (RFC 3261 §22.2), when it has them."""
        if not (trunk.username and trunk.password_enc):
            return None
        return Credential(username=trunk.username, password=self.box.open(trunk.password_enc))

    def line_user(self, trunk_id: str) -> str:
        """The user part of the Contact registered for a trunk: known only to its carrier."""
        return "l" + self.box.tag(f"trunk-line|{trunk_id}")

    def by_line(self, user: str | None) -> TrunkInfo | None:
        """The trunk whose registered Contact a request was sent to."""
        return self._lines.get(user or "")

    def registrar_address(self, trunk_id: str) -> str | None:
        """The IP address of the registrar a trunk is registered at (once resolved)."""
        entry = self._registrations.get(trunk_id)
        if entry is None or entry[1].remote is None:
            return None
        return entry[1].remote[0]

    def _trunk_changed(self, event: Any) -> None:
        self._rows.pop(event.tenant_id, None)
        if self._started:
            self._spawn(self._reconcile(event.tenant_id))

    # --- channels -------------------------------------------------------------------------

    def in_use(self, trunk_id: str) -> int:
        return len(self._channels.get(trunk_id, ()))

    def seize(self, trunk: TrunkInfo, call: Hashable) -> bool:
        """Take one of the trunk's channels for ``call``; False when all are in use."""
        held = self._channels.setdefault(trunk.id, set())
        if len(held) >= trunk.max_channels:
            return False
        held.add(call)
        self._held[call] = trunk.id
        return True

    def release(self, call: Hashable) -> None:
        """Give back the channel ``call`` holds (nothing when it holds none)."""
        trunk_id = self._held.pop(call, None)
        if trunk_id is not None:
            self._channels.get(trunk_id, set()).discard(call)

    # --- outbound registrations --------------------------------------------------------------

    async def start(self) -> None:
        """Register every trunk that asks for it, on every tenant."""
        self._started = True
        async with self.db.session() as s:
            tenants = (
                await s.scalars(select(Trunk.tenant_id).where(Trunk.registration.is_(True)))
            ).all()
        for tenant_id in set(tenants):
            await self._reconcile(tenant_id)

    async def stop(self) -> None:
        """Unregister (Expires: 0) and stop refreshing."""
        self._started = False
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for trunk_id in list(self._registrations):
            await self._unregister(trunk_id)

    def status(self, trunk_id: str) -> dict[str, Any]:
        """What the trunk's output shows of it on this node: registration and channels."""
        entry = self._registrations.get(trunk_id)
        out: dict[str, Any] = {
            "registration_state": None,
            "registration_error": None,
            "registered_until": None,
            "channels_in_use": self.in_use(trunk_id),
        }
        if entry is not None:
            registration = entry[1]
            out["registration_state"] = registration.state.value
            out["registration_error"] = registration.last_error
            if registration.registered and registration.expires_at is not None:
                left = registration.expires_at - self.sip.now()
                out["registered_until"] = datetime.now(UTC) + timedelta(seconds=left)
        return out

    async def _reconcile(self, tenant_id: str) -> None:
        """Start, restart or stop the registrations of a tenant's trunks to match its rows."""
        trunks = await self.of(tenant_id)
        wanted = {t.id: t for t in trunks if t.registration and t.username}
        for trunk_id, (trunk, _) in list(self._registrations.items()):
            if trunk.tenant_id != tenant_id:
                continue
            now = wanted.get(trunk_id)
            if now is None or now.registration_key() != trunk.registration_key():
                await self._unregister(trunk_id)
        for trunk in wanted.values():
            entry = self._registrations.get(trunk.id)
            if entry is None:
                self._register(trunk)
            else:  # the same registration; the rest of the row may have changed
                self._registrations[trunk.id] = (trunk, entry[1])
                self._lines[self.line_user(trunk.id)] = trunk

    def _register(self, trunk: TrunkInfo) -> None:
        assert trunk.username is not None
        registrar = f"sip:{trunk.address}"
        aor = f"sip:{trunk.username}@{trunk.host}"
        try:
            registration = Registration(
                self.sip,
                parse_sip_uri(registrar),
                parse_sip_uri(aor),
                self.credentials(trunk),
                REGISTRATION_EXPIRES,
                contact_user=self.line_user(trunk.id),
            )
        except SipError as exc:
            log.warning(
                "trunk %s (tenant %s) cannot register: %s", trunk.name, trunk.tenant_id, exc
            )
            return
        registration.start()
        self._registrations[trunk.id] = (trunk, registration)
        self._lines[self.line_user(trunk.id)] = trunk
        log.info(
            "trunk %s (tenant %s) registering %s at %s", trunk.name, trunk.tenant_id, aor, registrar
        )

    async def _unregister(self, trunk_id: str) -> None:
        entry = self._registrations.pop(trunk_id, None)
        self._lines.pop(self.line_user(trunk_id), None)
        if entry is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(entry[1].stop(), 10.0)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
