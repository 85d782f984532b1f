"""IVR flows of a tenant: drafts, published versions and rollback, stored for ``cloudcc.ivr``.

The version rules are ``cloudcc.ivr.versions`` (pure functions over a ``FlowHistory``); this
service loads a history from the store, applies one of them and writes the result back, with
an audit entry and a ``flow.*`` event in the same step.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.bus import LocalBus
from cloudcc.directory.caller_ids import tenant_caller_ids
from cloudcc.errors import Conflict, Invalid, NotFound, PermissionDenied
from cloudcc.ivr import Flow, parse_flow, validate_flow
from cloudcc.ivr import versions as v
from cloudcc.ivr.exceptions import (
    FlowDocumentError,
    FlowValidationError,
    IvrError,
    VersionConflictError,
)
from cloudcc.store.db import Database
from cloudcc.store.tables import BusinessHours, FlowRecord, FlowVersionRecord, PhoneNumber
from cloudcc.tenancy import audit
from cloudcc.tenancy.model import Actor, Page, Permission


def _ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt else None


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


class Known(NamedTuple):
    """What a flow may name of its tenant: flows, schedules and caller IDs."""

    flows: frozenset[str]
    schedules: frozenset[str]
    caller_ids: frozenset[str]


def _problems(exc: FlowValidationError) -> list[dict[str, object]]:
    return [
        {"rule": p.rule, "node": p.node_id, "field": p.field, "message": p.message}
        for p in exc.problems
    ]


def _document_error(exc: FlowDocumentError) -> Invalid:
    return Invalid(str(exc), errors=[{"node": exc.node_id, "location": exc.location}])


class FlowService:
    def __init__(self, db: Database, bus: LocalBus) -> None:
        self.db = db
        self.bus = bus
        self._published: dict[tuple[str, str], Flow] = {}
        bus.on(lambda e: e.type.startswith("flow."), lambda e: self._forget(e.tenant_id))

    # --- reads --------------------------------------------------------------------------

    async def page(self, actor: Actor, limit: int = 50, offset: int = 0) -> Page:
        self._need(actor, Permission.FLOWS_READ)
        async with self.db.session() as s:
            total = await s.scalar(
                select(func.count())
                .select_from(FlowRecord)
                .where(FlowRecord.tenant_id == actor.tenant_id)
            )
            rows = (
                await s.scalars(
                    select(FlowRecord)
                    .where(FlowRecord.tenant_id == actor.tenant_id)
                    .order_by(FlowRecord.name)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return Page([self._summary(r) for r in rows], int(total or 0), limit, offset)

    async def get(self, actor: Actor, id: str) -> dict[str, Any]:
        self._need(actor, Permission.FLOWS_READ)
        async with self.db.session() as s:
            row = await self._row(s, actor.tenant_id, id)
            published = await self._version_row(s, row, row.published_version)
        out = self._summary(row)
        out["draft"] = row.draft
        out["published"] = published.document if published else None
        return out

    async def versions(self, actor: Actor, id: str) -> list[dict[str, Any]]:
        self._need(actor, Permission.FLOWS_READ)
        async with self.db.session() as s:
            row = await self._row(s, actor.tenant_id, id)
            history = await self._history(s, row)
        return [self._version_view(ver) for ver in history.versions]

    async def version(self, actor: Actor, id: str, number: int) -> dict[str, Any]:
        self._need(actor, Permission.FLOWS_READ)
        async with self.db.session() as s:
            row = await self._row(s, actor.tenant_id, id)
            ver = await self._version_row(s, row, number)
        if ver is None:
            raise NotFound(f"flow {id} has no version {number}")
        return {**self._version_view(self._to_version(ver)), "document": ver.document}

    async def validate(self, actor: Actor, document: dict[str, Any]) -> list[dict[str, object]]:
        """Every problem of a document, without storing it."""
        self._need(actor, Permission.FLOWS_READ)
        try:
            flow = parse_flow(document)
        except FlowDocumentError as exc:
            return [
                {
                    "rule": "document",
                    "node": exc.node_id,
                    "field": exc.location,
                    "message": str(exc),
                }
            ]
        async with self.db.session() as s:
            known = await self._known(s, actor.tenant_id)
        return [
            {"rule": p.rule, "node": p.node_id, "field": p.field, "message": p.message}
            for p in validate_flow(
                flow,
                known_flows=known.flows | {flow.id},
                known_schedules=known.schedules,
                known_caller_ids=known.caller_ids,
            )
        ]

    async def published_flow(self, tenant_id: str, name: str) -> Flow:
        """The document an entry point runs now (cached until the flow changes)."""
        key = (tenant_id, name)
        flow = self._published.get(key)
        if flow is not None:
            return flow
        async with self.db.session() as s:
            row = await s.scalar(
                select(FlowRecord).where(FlowRecord.tenant_id == tenant_id, FlowRecord.name == name)
            )
            ver = await self._version_row(s, row, row.published_version) if row else None
        if ver is None:
            raise NotFound(f"flow {name!r} has no published version")
        flow = parse_flow(ver.document)
        self._published[key] = flow
        return flow

    # --- changes ------------------------------------------------------------------------

    async def create(self, actor: Actor, document: dict[str, Any]) -> dict[str, Any]:
        """A new flow whose first draft is ``document``."""
        self._need(actor, Permission.FLOWS_WRITE)
        flow = self._parse(document)
        async with self.db.transaction() as s:
            if await s.scalar(
                select(FlowRecord.id).where(
                    FlowRecord.tenant_id == actor.tenant_id, FlowRecord.name == flow.id
                )
            ):
                raise Conflict(f"a flow with id {flow.id!r} already exists")
            row = FlowRecord(tenant_id=actor.tenant_id, name=flow.id)
            s.add(row)
            await s.flush()
            history = v.save_draft(
                v.new_history(flow.id), flow, time.time(), user=actor.principal.name
            )
            await self._store(s, row, history)
            audit.record(s, actor, "create", "flow", row.id, {"name": flow.id})
            out = self._summary(row)
        self.bus.publish(actor.tenant_id, "flow.created", {"id": out["id"], "name": flow.id})
        return out

    async def save_draft(
        self, actor: Actor, id: str, document: dict[str, Any], expected_revision: int | None
    ) -> dict[str, Any]:
        flow = self._parse(document)
        return await self._change(
            actor,
            id,
            "save_draft",
            lambda h: v.save_draft(
                h, flow, time.time(), expected_revision=expected_revision, user=actor.principal.name
            ),
        )

    async def edit_version(self, actor: Actor, id: str, number: int) -> dict[str, Any]:
        return await self._change(
            actor,
            id,
            "edit_version",
            lambda h: v.edit_version(h, number, time.time(), actor.principal.name),
        )

    async def discard_draft(self, actor: Actor, id: str) -> dict[str, Any]:
        return await self._change(actor, id, "discard_draft", v.discard_draft)

    async def publish(self, actor: Actor, id: str, expected_revision: int | None) -> dict[str, Any]:
        return await self._change(
            actor,
            id,
            "publish",
            lambda h, known: v.publish(
                h,
                time.time(),
                user=actor.principal.name,
                expected_revision=expected_revision,
                known_flows=known.flows,
                known_schedules=known.schedules,
                known_caller_ids=known.caller_ids,
            ),
            needs_known=True,
        )

    async def rollback(self, actor: Actor, id: str, to_version: int | None) -> dict[str, Any]:
        return await self._change(
            actor,
            id,
            "rollback",
            lambda h, known: v.rollback(
                h,
                time.time(),
                to_version=to_version,
                user=actor.principal.name,
                known_flows=known.flows,
                known_schedules=known.schedules,
                known_caller_ids=known.caller_ids,
            ),
            needs_known=True,
        )

    async def delete(self, actor: Actor, id: str) -> None:
        self._need(actor, Permission.FLOWS_WRITE)
        async with self.db.transaction() as s:
            row = await self._row(s, actor.tenant_id, id)
            bound = await s.scalar(
                select(PhoneNumber.number).where(
                    PhoneNumber.tenant_id == actor.tenant_id,
                    PhoneNumber.target_type == "flow",
                    PhoneNumber.target == row.name,
                )
            )
            if bound:
                raise Conflict(f"flow {row.name!r} answers number {bound}; rebind it first")
            await s.delete(row)
            audit.record(s, actor, "delete", "flow", id, {"name": row.name})
        self.bus.publish(actor.tenant_id, "flow.deleted", {"id": id, "name": row.name})

    async def _change(
        self, actor: Actor, id: str, action: str, step: Any, needs_known: bool = False
    ) -> dict[str, Any]:
        self._need(actor, Permission.FLOWS_WRITE)
        async with self.db.transaction() as s:
            row = await self._row(s, actor.tenant_id, id)
            history = await self._history(s, row)
            try:
                if needs_known:
                    new = step(history, await self._known(s, actor.tenant_id))
                else:
                    new = step(history)
            except FlowValidationError as exc:
                raise Invalid(
                    f"the flow cannot be published: {len(exc.problems)} problem(s)",
                    errors=_problems(exc),
                ) from exc
            except VersionConflictError as exc:
                raise Conflict(str(exc)) from exc
            except IvrError as exc:
                raise Invalid(str(exc)) from exc
            await self._store(s, row, new)
            published = new.published.number if new.published else None
            audit.record(
                s,
                actor,
                action,
                "flow",
                row.id,
                {
                    "name": row.name,
                    "published_version": published,
                    "draft_revision": row.draft_revision,
                },
            )
            out = self._summary(row)
        self.bus.publish(
            actor.tenant_id,
            f"flow.{action}",
            {"id": id, "name": row.name, "published_version": published},
        )
        return out

    # --- mapping between rows and the pure history -------------------------------------

    async def _history(self, s: AsyncSession, row: FlowRecord) -> v.FlowHistory:
        records = (
            await s.scalars(
                select(FlowVersionRecord)
                .where(FlowVersionRecord.flow_id == row.id)
                .order_by(FlowVersionRecord.number)
            )
        ).all()
        draft = None
        if row.draft is not None:
            draft = v.Draft(
                parse_flow(row.draft),
                row.draft_revision,
                _ts(row.draft_saved_at) or 0.0,
                row.draft_saved_by,
                row.draft_based_on,
            )
        return v.FlowHistory(row.name, tuple(self._to_version(r) for r in records), draft)

    def _to_version(self, r: FlowVersionRecord) -> v.FlowVersion:
        return v.FlowVersion(
            number=r.number,
            state=v.VersionState(r.state),
            document=parse_flow(r.document),
            content_hash=r.content_hash,
            created_at=_ts(r.created_at) or 0.0,
            published_at=_ts(r.published_at),
            retired_at=_ts(r.retired_at),
            published_by=r.published_by,
            restored_from=r.restored_from,
        )

    async def _store(self, s: AsyncSession, row: FlowRecord, history: v.FlowHistory) -> None:
        existing = {
            r.number: r
            for r in (
                await s.scalars(
                    select(FlowVersionRecord).where(FlowVersionRecord.flow_id == row.id)
                )
            ).all()
        }
        for ver in history.versions:
            rec = existing.get(ver.number)
            if rec is None:
                s.add(
                    FlowVersionRecord(
                        tenant_id=row.tenant_id,
                        flow_id=row.id,
                        number=ver.number,
                        state=ver.state.value,
                        document=ver.document.model_dump(mode="json"),
                        content_hash=ver.content_hash,
                        created_at=_dt(ver.created_at),
                        published_at=_dt(ver.published_at),
                        retired_at=_dt(ver.retired_at),
                        published_by=ver.published_by,
                        restored_from=ver.restored_from,
                    )
                )
            else:  # versions are immutable but for their state
                rec.state = ver.state.value
                rec.retired_at = _dt(ver.retired_at)
        d = history.draft
        row.draft = d.document.model_dump(mode="json") if d else None
        row.draft_revision = d.revision if d else row.draft_revision
        row.draft_saved_at = _dt(d.saved_at) if d else None
        row.draft_saved_by = d.saved_by if d else None
        row.draft_based_on = d.based_on if d else None
        row.published_version = history.published.number if history.published else None
        row.updated_at = datetime.now(UTC)
        await s.flush()

    async def _known(self, s: AsyncSession, tenant_id: str) -> Known:
        flows = (
            await s.scalars(select(FlowRecord.name).where(FlowRecord.tenant_id == tenant_id))
        ).all()
        hours = (
            await s.scalars(select(BusinessHours.name).where(BusinessHours.tenant_id == tenant_id))
        ).all()
        return Known(frozenset(flows), frozenset(hours), await tenant_caller_ids(s, tenant_id))

    async def _row(self, s: AsyncSession, tenant_id: str, id: str) -> FlowRecord:
        row = await s.scalar(
            select(FlowRecord).where(FlowRecord.tenant_id == tenant_id, FlowRecord.id == id)
        )
        if row is None:
            raise NotFound(f"flow {id} not found")
        return row

    async def _version_row(
        self, s: AsyncSession, row: FlowRecord | None, number: int | None
    ) -> FlowVersionRecord | None:
        if row is None or number is None:
            return None
        return await s.scalar(
            select(FlowVersionRecord).where(
                FlowVersionRecord.flow_id == row.id, FlowVersionRecord.number == number
            )
        )

    def _summary(self, row: FlowRecord) -> dict[str, Any]:
        return {
            "id": row.id,
            "name": row.name,
            "published_version": row.published_version,
            "has_draft": row.draft is not None,
            "draft_revision": row.draft_revision,
            "draft_saved_at": row.draft_saved_at,
            "draft_saved_by": row.draft_saved_by,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }

    def _version_view(self, ver: v.FlowVersion) -> dict[str, Any]:
        return {
            "number": ver.number,
            "state": ver.state.value,
            "content_hash": ver.content_hash,
            "created_at": _dt(ver.created_at),
            "published_at": _dt(ver.published_at),
            "retired_at": _dt(ver.retired_at),
            "published_by": ver.published_by,
            "restored_from": ver.restored_from,
        }

    def _parse(self, document: dict[str, Any]) -> Flow:
        try:
            return parse_flow(document)
        except FlowDocumentError as exc:
            raise _document_error(exc) from exc

    def _need(self, actor: Actor, permission: Permission) -> None:
        if not actor.principal.can(permission):
            raise PermissionDenied(f"this needs the permission {permission.value}")

    def _forget(self, tenant_id: str) -> None:
        for key in [k for k in self._published if k[0] == tenant_id]:
            del self._published[key]
