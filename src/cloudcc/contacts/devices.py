"""Which phone the node may ring for a person of the tenant: an agent signing in, a supervisor
monitoring a call (issue 18.5: no INVITEs to an address of a user's choosing).

A device is allowed when it is the person's own phone (registered with its agent extension's
credentials, or the one it signed in with), the device an admin assigned its agent, an address
an admin listed in the tenant's ``sip_destinations``, or, for whoever holds ``agents:device``,
any SIP URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from cloudcc.contacts.destinations import is_listed, sip_target
from cloudcc.contacts.exceptions import BadTarget, NoDevice
from cloudcc.errors import NotFound, PermissionDenied
from cloudcc.store.tables import Agent
from cloudcc.tenancy.model import Actor, Permission

if TYPE_CHECKING:
    from cloudcc.contacts.voice import VoiceService


@dataclass(frozen=True, slots=True)
class Seat:
    """The agent seat whose phones a person may use (none for a user who is no agent)."""

    tenant_id: str
    agent_id: str | None = None
    extension: str | None = None
    assigned: str | None = None  # the device an admin assigned the agent


async def seat_of(voice: VoiceService, tenant_id: str, agent_id: str | None) -> Seat:
    """The seat of ``agent_id`` in the tenant (NotFound), or an empty seat for no agent."""
    if agent_id is None:
        return Seat(tenant_id)
    async with voice.db.session() as s:
        found = (
            await s.execute(
                select(Agent.extension, Agent.device).where(
                    Agent.tenant_id == tenant_id, Agent.id == agent_id
                )
            )
        ).first()
    if found is None:
        raise NotFound(f"agent {agent_id} not found")
    return Seat(tenant_id, agent_id, found[0], found[1])


async def check_device(voice: VoiceService, actor: Actor, seat: Seat, device: str) -> None:
    """Refuse a device the node may not ring for ``seat`` on ``actor``'s request: 403 saying
    what is allowed instead, 422 for what is no SIP URI."""
    if device == seat.assigned:
        return
    if not device.startswith(("sip:", "sips:")):
        raise BadTarget("a phone is a SIP URI (sip:user@host:port)")
    uri = sip_target(device)
    if seat.agent_id is not None and (
        device == voice.logged_in_device(seat.tenant_id, seat.agent_id)
        or voice.is_own_phone(seat.tenant_id, uri, agent_id=seat.agent_id)
    ):
        return
    tenant = await voice.tenant(seat.tenant_id)
    if is_listed(uri, tenant.sip_destinations or ()):
        return
    if actor.principal.can(Permission.AGENTS_DEVICE):
        return
    own = (
        f"the softphone or a phone registered as extension {seat.extension}"
        if seat.extension
        else "an address among the tenant's sip_destinations"
    )
    raise PermissionDenied(
        f"a phone URI of your choice needs agents:device: use {own}, or ask an admin to "
        "assign the device to the agent or add its address to sip_destinations (PATCH /tenant)"
    )


def no_device(seat: Seat) -> NoDevice:
    """Nothing the node can ring for the seat: what to do about it."""
    if seat.extension is None:
        return NoDevice(
            "no reachable phone: you are no agent, so give device, an address among the "
            "tenant's sip_destinations (an admin adds it with PATCH /tenant)"
        )
    return NoDevice(
        f"no reachable phone for agent {seat.extension}: register the browser softphone or a "
        f"SIP phone as extension {seat.extension} first, or ask an admin to assign the agent a "
        "device"
    )


async def monitoring_device(voice: VoiceService, actor: Actor, device: str | None) -> str:
    """The phone a supervisor monitors a call with: ``device`` when allowed for its own seat
    (see ``check_device``); else the phone of its agent seat (signed in with, registered, or
    assigned); nothing reachable: NoDevice."""
    seat = await seat_of(voice, actor.tenant_id, actor.principal.agent_id)
    if device is not None:
        await check_device(voice, actor, seat, device)
        return device
    if seat.agent_id is not None:
        found = await voice.agent_device(seat.tenant_id, seat.agent_id) or seat.assigned
        if found:
            return found
    raise no_device(seat)
