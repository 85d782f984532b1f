"""The caller ID a flow's transfer out presents, checked again when it dials (issue 18.5):
publishing refuses a flow whose ``caller_id`` is none of the tenant's (ivr/caller_id.py), but
a number can go away after publishing. Then the trunk's caller ID is presented instead, and a
log line says so."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cloudcc.contacts.model import Contact, Direction
from cloudcc.directory.caller_ids import tenant_caller_ids
from cloudcc.ivr.caller_id import KEEP_CALLER, own_caller_id

if TYPE_CHECKING:
    from cloudcc.contacts.voice import VoiceService

log = logging.getLogger("cloudcc.contacts.caller_ids")


async def forwarding_caller(voice: VoiceService, contact: Contact) -> str:
    """The number a forwarded call presents when nothing else is set: the caller's own on a
    call that came in, else the tenant's first number (never the party the tenant called)."""
    if contact.direction is Direction.INBOUND:
        return contact.customer
    return await voice.caller_id(contact.tenant_id)


async def flow_caller_id(
    voice: VoiceService, contact: Contact, requested: str | None
) -> str | None:
    """The caller ID to present for a flow's ``caller_id``: ``requested`` when it is one of
    the tenant's numbers or trunk caller IDs; the caller's number for ``caller`` on a call that
    came in; else None, so that the trunk's caller ID is presented."""
    if requested is None:
        return None
    if requested == KEEP_CALLER:
        if contact.direction is Direction.INBOUND:
            return contact.customer
        return None
    async with voice.db.session() as s:
        own = await tenant_caller_ids(s, contact.tenant_id)
    if own_caller_id(requested, own):
        return requested
    log.warning(
        "contact %s of tenant %s: flow caller ID %r is none of the tenant's numbers or trunk "
        "caller IDs; presenting the trunk's caller ID instead",
        contact.id,
        contact.tenant_id,
        requested,
    )
    return None
