"""Mailboxes and their messages: settings with defaults, depositing a message, and who may
see or change what.

Every queue and every agent has a mailbox. Its settings (maximum length, silence that ends a
message, the key that ends it, the greeting) have defaults until configured; the row is
written when configured or when the first message arrives. Access: ``voicemail:read`` sees
every mailbox of the tenant, ``voicemail:write`` configures them and marks or deletes any
message; an agent without them reaches its own mailbox only. Nobody reaches another tenant's:
every query is filtered by the caller's tenant.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.bus import LocalBus
from cloudcc.errors import NotFound, PermissionDenied
from cloudcc.store.db import Database
from cloudcc.store.tables import Agent, RecordingRecord, SkillQueue, User
from cloudcc.tenancy import audit
from cloudcc.tenancy.model import Actor, Page, Permission
from cloudcc.voicemail.tables import Mailbox, VoicemailMessage

log = logging.getLogger("cloudcc.voicemail")

OWNER_TYPES = ("queue", "agent")
DEFAULT_MAX_SECONDS = 120
DEFAULT_SILENCE_SECONDS = 5
DEFAULT_END_KEY = "#"


@dataclass(frozen=True)
class MailboxSettings:
    """How a mailbox takes a message (its stored row, or the defaults)."""

    owner_type: str
    owner_id: str
    max_seconds: int = DEFAULT_MAX_SECONDS
    silence_seconds: int = DEFAULT_SILENCE_SECONDS
    end_key: str = DEFAULT_END_KEY
    greeting: str | None = None
    id: str | None = None


def _settings(row: Mailbox) -> MailboxSettings:
    return MailboxSettings(
        row.owner_type,
        row.owner_id,
        row.max_seconds,
        row.silence_seconds,
        row.end_key,
        row.greeting,
        row.id,
    )


class VoicemailService:
    def __init__(self, db: Database, bus: LocalBus, recordings_root: Path) -> None:
        self.db = db
        self.bus = bus
        self.recordings_root = recordings_root

    # --- for calls ------------------------------------------------------------------------

    async def owner_named(self, tenant_id: str, name: str) -> tuple[str, str] | None:
        """The mailbox a flow names: a queue by name, else an agent by username or extension."""
        async with self.db.session() as s:
            queue_id = await s.scalar(
                select(SkillQueue.id).where(
                    SkillQueue.tenant_id == tenant_id, SkillQueue.name == name
                )
            )
            if queue_id is not None:
                return ("queue", queue_id)
            agent_id = await s.scalar(
                select(Agent.id)
                .join(User, User.id == Agent.user_id)
                .where(
                    Agent.tenant_id == tenant_id,
                    (User.username == name) | (Agent.extension == name),
                )
            )
        return ("agent", agent_id) if agent_id is not None else None

    async def settings(self, tenant_id: str, owner_type: str, owner_id: str) -> MailboxSettings:
        async with self.db.session() as s:
            row = await self._box(s, tenant_id, owner_type, owner_id)
        return _settings(row) if row is not None else MailboxSettings(owner_type, owner_id)

    async def deposit(
        self,
        tenant_id: str,
        owner_type: str,
        owner_id: str,
        *,
        contact_id: str,
        caller: str,
        recording_id: str,
        duration: float,
        ended_by: str,
    ) -> str:
        """Store a message left in a mailbox and announce it (``voicemail.new``)."""
        now = datetime.now(UTC)
        async with self.db.transaction() as s:
            box = await self._box(s, tenant_id, owner_type, owner_id)
            if box is None:
                box = Mailbox(tenant_id=tenant_id, owner_type=owner_type, owner_id=owner_id)
                s.add(box)
                await s.flush()
            message = VoicemailMessage(
                tenant_id=tenant_id,
                mailbox_id=box.id,
                contact_id=contact_id,
                caller=caller[:200],
                recording_id=recording_id,
                duration_seconds=round(duration, 3),
                ended_by=ended_by,
                created_at=now,
            )
            s.add(message)
            await s.flush()
            message_id = message.id
        data: dict[str, Any] = {
            "id": message_id,
            "mailbox_id": box.id,
            "owner_type": owner_type,
            "owner_id": owner_id,
            "contact_id": contact_id,
            "caller": caller,
            "duration_seconds": round(duration, 3),
            "ended_by": ended_by,
        }
        # The bus convention: ``agent_id`` brings an agent's own messages to its stream.
        data["agent_id" if owner_type == "agent" else "queue_id"] = owner_id
        self.bus.publish(tenant_id, "voicemail.new", data)
        log.info(
            "tenant %s: voicemail %s left in the %s mailbox %s by contact %s (%.1f s, %s)",
            tenant_id,
            message_id,
            owner_type,
            owner_id,
            contact_id,
            duration,
            ended_by,
        )
        return message_id

    # --- mailboxes (API) ------------------------------------------------------------------

    async def mailboxes(self, actor: Actor) -> list[dict[str, Any]]:
        """The configured or used mailboxes the caller may see, with message counts."""
        counts = (
            select(
                VoicemailMessage.mailbox_id,
                func.count().label("total"),
                func.count(VoicemailMessage.read_at).label("read"),
            )
            .where(VoicemailMessage.tenant_id == actor.tenant_id)
            .group_by(VoicemailMessage.mailbox_id)
            .subquery()
        )
        stmt = (
            select(Mailbox, counts.c.total, counts.c.read)
            .outerjoin(counts, counts.c.mailbox_id == Mailbox.id)
            .where(*self._box_scope(actor))
            .order_by(Mailbox.owner_type, Mailbox.owner_id)
        )
        async with self.db.session() as s:
            rows = (await s.execute(stmt)).all()
        return [
            {
                **self._box_out(_settings(box)),
                "messages": total or 0,
                "unread": (total or 0) - (read or 0),
            }
            for box, total, read in rows
        ]

    async def mailbox(self, actor: Actor, owner_type: str, owner_id: str) -> dict[str, Any]:
        self._may_see(actor, owner_type, owner_id)
        async with self.db.session() as s:
            await self._owner_exists(s, actor.tenant_id, owner_type, owner_id)
            row = await self._box(s, actor.tenant_id, owner_type, owner_id)
        return self._box_out(_settings(row) if row else MailboxSettings(owner_type, owner_id))

    async def configure(
        self, actor: Actor, owner_type: str, owner_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Create or change the settings of a queue's or an agent's mailbox."""
        self._need(actor, Permission.VOICEMAIL_WRITE)
        async with self.db.transaction() as s:
            await self._owner_exists(s, actor.tenant_id, owner_type, owner_id)
            row = await self._box(s, actor.tenant_id, owner_type, owner_id)
            if row is None:
                row = Mailbox(
                    tenant_id=actor.tenant_id,
                    owner_type=owner_type,
                    owner_id=owner_id,
                    max_seconds=DEFAULT_MAX_SECONDS,
                    silence_seconds=DEFAULT_SILENCE_SECONDS,
                    end_key=DEFAULT_END_KEY,
                )
                s.add(row)
            for key in ("max_seconds", "silence_seconds", "end_key", "greeting"):
                if key in data:
                    setattr(row, key, data[key])
            await s.flush()
            audit.record(s, actor, "configure", "mailbox", row.id, dict(data))
            out = self._box_out(_settings(row))
        self.bus.publish(actor.tenant_id, "voicemail.mailbox_changed", {"id": out["id"]})
        return out

    # --- messages (API) -------------------------------------------------------------------

    async def messages(
        self,
        actor: Actor,
        *,
        mailbox_id: str | None = None,
        unread: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """Messages the caller may see, newest first."""
        conds = self._message_scope(actor)
        if mailbox_id is not None:
            conds.append(VoicemailMessage.mailbox_id == mailbox_id)
        if unread is not None:
            conds.append(
                VoicemailMessage.read_at.is_(None)
                if unread
                else VoicemailMessage.read_at.is_not(None)
            )
        base = select(VoicemailMessage, Mailbox).join(Mailbox).where(*conds)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(base.subquery()))
            rows = (
                await s.execute(
                    base.order_by(VoicemailMessage.created_at.desc(), VoicemailMessage.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        items = [self._message_out(m, box) for m, box in rows]
        return Page(items=items, total=int(total or 0), limit=limit, offset=offset)

    async def message(self, actor: Actor, message_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            message, box = await self._message(s, actor, message_id)
        return self._message_out(message, box)

    async def mark(self, actor: Actor, message_id: str, read: bool) -> dict[str, Any]:
        async with self.db.transaction() as s:
            message, box = await self._message(s, actor, message_id, write=True)
            if read and message.read_at is None:
                message.read_at = datetime.now(UTC)
            elif not read:
                message.read_at = None
            await s.flush()
            out = self._message_out(message, box)
        self.bus.publish(
            actor.tenant_id,
            "voicemail.read" if read else "voicemail.unread",
            self._event_subject(message, box),
        )
        return out

    async def delete(self, actor: Actor, message_id: str) -> None:
        """Delete a message and its audio."""
        async with self.db.transaction() as s:
            message, box = await self._message(s, actor, message_id, write=True)
            recording = await s.scalar(
                select(RecordingRecord).where(
                    RecordingRecord.tenant_id == actor.tenant_id,
                    RecordingRecord.id == message.recording_id,
                )
            )
            path = self._file(recording.path) if recording is not None else None
            if recording is not None:
                await s.delete(recording)
            await s.delete(message)
            audit.record(s, actor, "delete", "voicemail", message_id)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.bus.publish(actor.tenant_id, "voicemail.deleted", self._event_subject(message, box))

    async def audio(self, actor: Actor, message_id: str) -> Path:
        async with self.db.session() as s:
            message, _ = await self._message(s, actor, message_id)
            rel = await s.scalar(
                select(RecordingRecord.path).where(
                    RecordingRecord.tenant_id == actor.tenant_id,
                    RecordingRecord.id == message.recording_id,
                )
            )
        path = self._file(rel) if rel is not None else None
        if path is None or not path.exists():
            raise NotFound(f"the audio of voicemail {message_id} is gone")
        return path

    # --- helpers --------------------------------------------------------------------------

    def _file(self, rel: str) -> Path | None:
        root = self.recordings_root.resolve()
        path = (root / rel).resolve()
        return path if path.is_relative_to(root) else None

    @staticmethod
    def _need(actor: Actor, permission: Permission) -> None:
        if not actor.principal.can(permission):
            raise PermissionDenied(f"this needs the permission {permission.value}")

    @staticmethod
    def _may_see(actor: Actor, owner_type: str, owner_id: str) -> None:
        p = actor.principal
        if p.can(Permission.VOICEMAIL_READ):
            return
        if owner_type == "agent" and p.agent_id and owner_id == p.agent_id:
            return
        raise PermissionDenied("this needs voicemail:read (an agent reaches its own mailbox)")

    @staticmethod
    def _box_scope(actor: Actor) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [Mailbox.tenant_id == actor.tenant_id]
        p = actor.principal
        if p.can(Permission.VOICEMAIL_READ):
            return conds
        if not p.agent_id:
            raise PermissionDenied("this needs voicemail:read (an agent reaches its own mailbox)")
        return [*conds, Mailbox.owner_type == "agent", Mailbox.owner_id == p.agent_id]

    def _message_scope(self, actor: Actor) -> list[ColumnElement[bool]]:
        return [VoicemailMessage.tenant_id == actor.tenant_id, *self._box_scope(actor)]

    async def _message(
        self, s: AsyncSession, actor: Actor, message_id: str, write: bool = False
    ) -> tuple[VoicemailMessage, Mailbox]:
        row = (
            await s.execute(
                select(VoicemailMessage, Mailbox)
                .join(Mailbox)
                .where(*self._message_scope(actor), VoicemailMessage.id == message_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"voicemail {message_id} not found")
        message, box = row
        own = box.owner_type == "agent" and box.owner_id == actor.principal.agent_id
        if write and not own and not actor.principal.can(Permission.VOICEMAIL_WRITE):
            raise PermissionDenied("this needs voicemail:write (an agent manages its own messages)")
        return message, box

    @staticmethod
    async def _box(
        s: AsyncSession, tenant_id: str, owner_type: str, owner_id: str
    ) -> Mailbox | None:
        return await s.scalar(
            select(Mailbox).where(
                Mailbox.tenant_id == tenant_id,
                Mailbox.owner_type == owner_type,
                Mailbox.owner_id == owner_id,
            )
        )

    @staticmethod
    async def _owner_exists(
        s: AsyncSession, tenant_id: str, owner_type: str, owner_id: str
    ) -> None:
        model = SkillQueue if owner_type == "queue" else Agent
        found = await s.scalar(
            select(model.id).where(model.tenant_id == tenant_id, model.id == owner_id)
        )
        if found is None:
            raise NotFound(f"{owner_type} {owner_id} not found")

    @staticmethod
    def _box_out(box: MailboxSettings) -> dict[str, Any]:
        return {
            "id": box.id,
            "owner_type": box.owner_type,
            "owner_id": box.owner_id,
            "max_seconds": box.max_seconds,
            "silence_seconds": box.silence_seconds,
            "end_key": box.end_key,
            "greeting": box.greeting,
        }

    @staticmethod
    def _message_out(m: VoicemailMessage, box: Mailbox) -> dict[str, Any]:
        return {
            "id": m.id,
            "mailbox_id": m.mailbox_id,
            "owner_type": box.owner_type,
            "owner_id": box.owner_id,
            "contact_id": m.contact_id,
            "caller": m.caller,
            "recording_id": m.recording_id,
            "duration_seconds": m.duration_seconds,
            "ended_by": m.ended_by,
            "created_at": m.created_at,
            "read": m.read_at is not None,
            "read_at": m.read_at,
        }

    @staticmethod
    def _event_subject(m: VoicemailMessage, box: Mailbox) -> dict[str, Any]:
        data: dict[str, Any] = {"id": m.id, "mailbox_id": m.mailbox_id}
        data["agent_id" if box.owner_type == "agent" else "queue_id"] = box.owner_id
        return data
