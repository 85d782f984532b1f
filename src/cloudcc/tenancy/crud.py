"""Tenant-scoped create/read/update/delete with permission checks, audit and events.

Every administrable object (agents, queues, numbers, users, roles, ...) is a ``Resource``
subclass that names its table, its permissions and its rules. The base class guarantees what
must hold for all of them: the tenant filter on every query, the permission check, an audit
entry in the same transaction as the change, and an event on the bus after it commits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.bus import LocalBus
from cloudcc.store.db import Database
from cloudcc.store.tables import Base
from cloudcc.tenancy import audit
from cloudcc.tenancy.exceptions import Conflict, NotFound, PermissionDenied
from cloudcc.tenancy.model import Actor, Page, Permission

Rows = list[dict[str, Any]]


# Session-scoped changes a resource made to related rows in prepare_update: {field: [old, new]}.
RELATED_CHANGES = "cloudcc.related_changes"


class ListCache:
    """One resource's rows per tenant, in id order: the read model behind the list endpoints.

    Configuration is read far more often than written; a tenant's rows are loaded once and
    dropped on any change event of the resource (published after the change commits, on this
    node at once and from other nodes through the bus). A generation number per tenant stops
    a load that raced with a change from caching the old rows.
    """

    def __init__(self, max_tenants: int = 2000, max_rows: int = 20_000) -> None:
        self.max_tenants = max_tenants
        self.max_rows = max_rows
        self._rows: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._generation: dict[str, int] = {}

    def get(self, tenant_id: str) -> list[dict[str, Any]] | None:
        rows = self._rows.get(tenant_id)
        if rows is not None:
            self._rows.move_to_end(tenant_id)
        return rows

    def generation(self, tenant_id: str) -> int:
        return self._generation.get(tenant_id, 0)

    def put(self, tenant_id: str, rows: list[dict[str, Any]], generation: int) -> None:
        if generation != self.generation(tenant_id) or len(rows) > self.max_rows:
            return
        self._rows[tenant_id] = rows
        self._rows.move_to_end(tenant_id)
        while len(self._rows) > self.max_tenants:
            self._rows.popitem(last=False)

    def drop(self, tenant_id: str) -> None:
        self._generation[tenant_id] = self.generation(tenant_id) + 1
        self._rows.pop(tenant_id, None)


class Resource:
    kind: ClassVar[str]
    model: ClassVar[type[Base]]
    read_permission: ClassVar[Permission]
    write_permission: ClassVar[Permission]
    search_columns: ClassVar[tuple[str, ...]] = ("name",)
    filter_columns: ClassVar[tuple[str, ...]] = ()
    private_columns: ClassVar[frozenset[str]] = frozenset({"tenant_id"})
    secret_inputs: ClassVar[frozenset[str]] = frozenset({"password"})
    # Event type prefixes that change what this resource lists (joined names included).
    invalidated_by: ClassVar[tuple[str, ...]] = ()

    def __init__(self, db: Database, bus: LocalBus) -> None:
        self.db = db
        self.bus = bus
        self.table = self.model.__table__
        self.cache = ListCache()
        prefixes = (f"{self.kind}.", *self.invalidated_by)
        bus.on(lambda e: e.type.startswith(prefixes), lambda e: self.cache.drop(e.tenant_id))

    # --- hooks for subclasses -------------------------------------------------------------

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Column values for a new row; raise Invalid/Conflict/QuotaExceeded to refuse."""
        return dict(data)

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        return dict(data)

    async def before_delete(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        return None

    async def after_delete(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        return None

    def listing(self, tenant_id: str) -> Select[Any]:
        """The select that lists this resource's rows (override to join related names)."""
        return select(self.table).where(self.table.c.tenant_id == tenant_id)

    def output(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k not in self.private_columns}

    # --- operations -------------------------------------------------------------------------

    async def list(
        self,
        actor: Actor,
        *,
        filters: Mapping[str, Any] | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        self.authorize(actor, self.read_permission)
        filters = {k: v for k, v in (filters or {}).items() if v is not None}
        for key in filters:
            if key not in self.filter_columns:
                raise ValueError(f"{key} is not a filter of {self.kind}")
        rows = await self._tenant_rows(actor.tenant_id)
        if rows is None:
            return await self._list_in_db(actor.tenant_id, filters, q, limit, offset)
        if filters:
            rows = [r for r in rows if all(r[k] == v for k, v in filters.items())]
        if q:
            needle = q.casefold()
            rows = [
                r
                for r in rows
                if any(needle in str(r[c] or "").casefold() for c in self.search_columns)
            ]
        return Page(
            items=rows[offset : offset + limit], total=len(rows), limit=limit, offset=offset
        )

    async def _tenant_rows(self, tenant_id: str) -> Rows | None:
        """All the tenant's rows from the cache (loaded on a miss); None when too many."""
        rows = self.cache.get(tenant_id)
        if rows is not None:
            return rows
        generation = self.cache.generation(tenant_id)
        stmt = self.listing(tenant_id).order_by(self.table.c.id).limit(self.cache.max_rows + 1)
        async with self.db.session() as s:
            rows = [self.output(m) for m in (await s.execute(stmt)).mappings()]
        if len(rows) > self.cache.max_rows:
            return None
        self.cache.put(tenant_id, rows, generation)
        return rows

    async def _list_in_db(
        self, tenant_id: str, filters: Mapping[str, Any], q: str | None, limit: int, offset: int
    ) -> Page:
        """The same listing done by the database, for tenants too large to keep in memory."""
        conds = [self.table.c[key] == value for key, value in filters.items()]
        if q:
            pattern = f"%{_escape_like(q)}%"
            conds.append(
                or_(*(self.table.c[c].ilike(pattern, escape="\\") for c in self.search_columns))
            )
        stmt = self.listing(tenant_id).where(*conds)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
            result = await s.execute(stmt.order_by(self.table.c.id).limit(limit).offset(offset))
            items = [self.output(m) for m in result.mappings()]
        return Page(items=items, total=int(total or 0), limit=limit, offset=offset)

    async def get(self, actor: Actor, id: str) -> dict[str, Any]:
        self.authorize(actor, self.read_permission)
        async with self.db.session() as s:
            result = await s.execute(self.listing(actor.tenant_id).where(self.table.c.id == id))
            row = result.mappings().first()
        if row is None:
            raise NotFound(f"{self.kind} {id} not found")
        return self.output(row)

    async def create(self, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
        self.authorize(actor, self.write_permission)
        async with self.db.sessions() as s:
            async with s.begin():
                values = await self.prepare_create(s, actor, data)
                row: Any = self.model(tenant_id=actor.tenant_id, **values)
                s.add(row)
                await self._flush(s)
                audit.record(s, actor, "create", self.kind, row.id, self._redact(data))
            created = await self.get_in(s, actor.tenant_id, row.id)
        self.bus.publish(actor.tenant_id, f"{self.kind}.created", {"id": row.id})
        return created

    async def update(self, actor: Actor, id: str, data: dict[str, Any]) -> dict[str, Any]:
        self.authorize(actor, self.write_permission)
        async with self.db.sessions() as s:
            async with s.begin():
                row = await self.load(s, actor.tenant_id, id)
                values = await self.prepare_update(s, actor, row, data)
                changes: dict[str, Any] = {}
                for key, value in values.items():
                    old = getattr(row, key)
                    if old != value:
                        changes[key] = [old, value]
                        setattr(row, key, value)
                for key in self.secret_inputs & data.keys():
                    changes[key] = audit.REDACTED
                # What prepare_update changed beside the row (an agent's user): audited and
                # announced like the row's own fields, so caches of the principal are dropped.
                changes.update(s.info.pop(RELATED_CHANGES, {}))
                if changes:
                    await self._flush(s)
                    audit.record(s, actor, "update", self.kind, id, self._redact(changes))
            updated = await self.get_in(s, actor.tenant_id, id)
        if changes:
            self.bus.publish(
                actor.tenant_id, f"{self.kind}.updated", {"id": id, "fields": sorted(changes)}
            )
        return updated

    async def delete(self, actor: Actor, id: str) -> None:
        self.authorize(actor, self.write_permission)
        async with self.db.transaction() as s:
            row = await self.load(s, actor.tenant_id, id)
            await self.before_delete(s, actor, row)
            snapshot = self.output(_row_dict(row))
            await s.delete(row)
            await self.after_delete(s, actor, row)
            await self._flush(s)
            audit.record(s, actor, "delete", self.kind, id, self._redact(snapshot))
        self.bus.publish(actor.tenant_id, f"{self.kind}.deleted", {"id": id})

    # --- helpers ----------------------------------------------------------------------------

    def authorize(self, actor: Actor, permission: Permission) -> None:
        if not actor.principal.can(permission):
            raise PermissionDenied(f"this needs the permission {permission.value}")

    async def load(self, s: AsyncSession, tenant_id: str, id: str) -> Any:
        model: Any = self.model
        row = await s.scalar(select(model).where(model.tenant_id == tenant_id, model.id == id))
        if row is None:
            raise NotFound(f"{self.kind} {id} not found")
        return row

    async def get_in(self, s: AsyncSession, tenant_id: str, id: str) -> dict[str, Any]:
        result = await s.execute(self.listing(tenant_id).where(self.table.c.id == id))
        return self.output(result.mappings().one())

    async def exists(
        self, s: AsyncSession, tenant_id: str, column: str, value: Any, exclude_id: str | None
    ) -> bool:
        conds = [self.table.c.tenant_id == tenant_id, self.table.c[column] == value]
        if exclude_id:
            conds.append(self.table.c.id != exclude_id)
        return bool(await s.scalar(select(func.count()).select_from(self.table).where(*conds)))

    async def ensure_unique(
        self,
        s: AsyncSession,
        tenant_id: str,
        columns: Sequence[str],
        data: Mapping[str, Any],
        exclude_id: str | None = None,
    ) -> None:
        for column in columns:
            if column in data and await self.exists(s, tenant_id, column, data[column], exclude_id):
                raise Conflict(f"a {self.kind} with {column} {data[column]!r} already exists")

    async def _flush(self, s: AsyncSession) -> None:
        try:
            await s.flush()
        except IntegrityError as exc:
            raise Conflict(f"the {self.kind} conflicts with an existing one") from exc

    def _redact(self, data: Mapping[str, Any]) -> dict[str, Any]:
        hidden = self.secret_inputs | {c for c in self.private_columns if c != "tenant_id"}
        return {k: (audit.REDACTED if k in hidden else v) for k, v in data.items()}


def _row_dict(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
