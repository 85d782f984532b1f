"""Who runs a tenant's routing engine in a cluster: a PostgreSQL advisory lock per tenant
(PostgreSQL 15 manual §13.3.5, "Advisory Locks"), held by one dedicated connection per node.

Why a session-level advisory lock rather than a lease row with a TTL renewed by its owner:
when the owner is killed (``kill -9``, a crash) its kernel closes the connection, PostgreSQL
ends that session and the locks it held are free at once; a standby that tries every
``retry_interval`` (0.5 s) holds the tenant within about half a second, whatever the load.
A lease row is free only when its TTL runs out, so failing over within 5 s needs a TTL of a
few seconds, renewed every second or so by every owner for every tenant: writes all the time,
and an owner stalled by a loaded machine (the garbage collector, two shared cores) longer
than the TTL loses its tenants for nothing. When the owner's machine disappears without
closing the connection (power, network), the server finds out by TCP keepalives, set short
on this connection (``tcp_keepalives_*``, ``tcp_user_timeout``): about 4 s.

The owner checks its connection every ``retry_interval``: once it fails, it gives every
tenant up at once (another node may take them as soon as the server drops the session) and
connects again. The connection's ``application_name`` is ``cloudcc-routing:<node>``, so
``pg_locks`` joined with ``pg_stat_activity`` shows which node holds which tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("cloudcc.cluster.lease")

#: The first key of ``pg_try_advisory_lock(int, int)``: cloudcc's routing leases; the second
#: is ``hashtext(tenant id)``. Two tenants whose ids hash alike share a lease (and an owner).
NAMESPACE = 0x0CC0

_TRY = "SELECT t, pg_try_advisory_lock($2::int, hashtext(t)) FROM unnest($1::text[]) AS t"


def asyncpg_dsn(database_url: str) -> str | None:
    """The plain ``postgresql://`` DSN of a SQLAlchemy URL; None when it is not PostgreSQL."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or not scheme.startswith(("postgresql", "postgres")):
        return None
    return "postgresql://" + rest


class RoutingLeases:
    """The tenants whose routing this node runs, and those it would take when free."""

    def __init__(
        self,
        dsn: str,
        node: str,
        *,
        retry_interval: float = 0.5,
        connect: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        self.dsn = dsn
        self.node = node
        self.retry_interval = retry_interval
        self._connect = connect
        self.owned: set[str] = set()
        self.wanted: set[str] = set()
        #: Awaited once a tenant's lease is held (load the engine, then serve it).
        self.on_gained: Callable[[str], Awaitable[None]] | None = None
        #: Called when a tenant's lease is lost (the connection broke) or given up.
        self.on_lost: Callable[[str], None] | None = None
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one query at a time on the connection
        self._task: asyncio.Task[None] | None = None

    @property
    def application_name(self) -> str:
        return f"cloudcc-routing:{self.node}"[:63]

    async def start(self) -> None:
        async with self._lock:
            await self._ensure_connection()
        self._task = asyncio.create_task(self._run(), name="routing-leases")

    async def stop(self) -> None:
        """Give every tenant up (a clean stop hands them over at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        given, self.owned = self.owned, set()
        for tenant_id in given:
            log.info("node %s gave up the routing of tenant %s (stopping)", self.node, tenant_id)
            if self.on_lost is not None:
                self.on_lost(tenant_id)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 5.0)
            self._conn = None

    def owns(self, tenant_id: str) -> bool:
        return tenant_id in self.owned

    def want(self, tenant_id: str) -> None:
        """Take the tenant whenever its lease is free (this node has work for it)."""
        self.wanted.add(tenant_id)

    async def try_acquire(self, tenant_id: str) -> bool:
        """Take the tenant's lease now if it is free; whether this node holds it."""
        self.wanted.add(tenant_id)
        if tenant_id in self.owned:
            return True
        gained = await self._try([tenant_id])
        await self._gained(gained)
        return tenant_id in self.owned

    async def release(self, tenant_id: str) -> None:
        if tenant_id not in self.owned:
            return
        self.owned.discard(tenant_id)
        self.wanted.discard(tenant_id)
        log.info("node %s gave up the routing of tenant %s", self.node, tenant_id)
        if self.on_lost is not None:
            self.on_lost(tenant_id)
        with contextlib.suppress(Exception):
            async with self._lock:
                await self._conn.execute(
                    "SELECT pg_advisory_unlock($1::int, hashtext($2))", NAMESPACE, tenant_id
                )

    # --- inside -------------------------------------------------------------------------

    async def _ensure_connection(self) -> None:
        """Connect when the connection is gone. Called with ``_lock`` held: two tasks
        connecting at once would leave one connection unreferenced, holding the locks taken
        on it until it is collected (then free for another node while this one believes it
        still owns them: two owners)."""
        if self._conn is not None and not self._conn.is_closed():
            return
        if self._conn is not None:
            self._conn = None
            self._drop_all()  # the session is gone, and its locks with it
        connect = self._connect
        if connect is None:
            import asyncpg

            connect = asyncpg.connect
        self._conn = await connect(
            self.dsn,
            timeout=5.0,
            server_settings={
                "application_name": self.application_name,
                # The server notices a vanished owner within seconds, not hours.
                "tcp_keepalives_idle": "2",
                "tcp_keepalives_interval": "1",
                "tcp_keepalives_count": "2",
                "tcp_user_timeout": "4000",
            },
        )

    def _broken(self, what: str, exc: Exception) -> None:
        """The connection failed (``_lock`` held): end the session, so the server frees its
        locks, and give every tenant up."""
        if self._conn is not None or self.owned:
            log.warning("routing leases: %s (%s)", what, exc)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.terminate()
            self._conn = None
        self._drop_all()

    def _drop_all(self) -> None:
        lost, self.owned = self.owned, set()
        for tenant_id in lost:
            log.warning("routing lease of tenant %s lost (its connection closed)", tenant_id)
            if self.on_lost is not None:
                self.on_lost(tenant_id)

    async def _try(self, tenants: list[str]) -> list[str]:
        """Try the locks of ``tenants``; those newly held. A broken connection gives every
        held tenant up."""
        async with self._lock:
            try:
                await self._ensure_connection()
                rows = await asyncio.wait_for(self._conn.fetch(_TRY, tenants, NAMESPACE), 5.0)
            except Exception as exc:
                self._broken("the store is unreachable", exc)
                return []
            gained = []
            for tenant_id, held in rows:
                if held and tenant_id not in self.owned:
                    self.owned.add(tenant_id)
                    gained.append(tenant_id)
        return gained

    async def _gained(self, tenants: list[str]) -> None:
        for tenant_id in tenants:
            log.info("node %s runs the routing of tenant %s", self.node, tenant_id)
            if self.on_gained is not None:
                try:
                    await self.on_gained(tenant_id)
                except Exception:
                    log.exception("taking over the routing of tenant %s failed", tenant_id)
                    await self.release(tenant_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            free = sorted(self.wanted - self.owned)
            if free:
                await self._gained(await self._try(free))
            elif self.owned:
                await self._check()

    async def _check(self) -> None:
        async with self._lock:
            try:
                if self._conn is None:
                    raise ConnectionError("no connection")
                await asyncio.wait_for(self._conn.fetchval("SELECT 1"), 5.0)
            except Exception as exc:
                self._broken("connection check failed", exc)
