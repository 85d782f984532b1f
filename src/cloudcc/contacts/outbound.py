"""Contacts that start on our side: a click-to-call (the agent first), a customer-first call
(return visits), a callback waiting its turn in a queue, and an agent's own call from its
phone. Each is a ``ContactSession`` whose customer leg is dialed rather than answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from cloudcc.contacts.exceptions import BadTarget
from cloudcc.contacts.model import (
    Contact,
    ContactState,
    Disposition,
    EndCause,
    Leg,
    LegRole,
    LegState,
)
from cloudcc.contacts.session import ContactSession, Party, Target
from cloudcc.routing.events import Offer, QueueAction
from cloudcc.routing.model import Channel as RoutingChannel
from cloudcc.routing.model import SkillRequirement

if TYPE_CHECKING:
    from cloudcc.contacts.voice import VoiceService

log = logging.getLogger("cloudcc.contacts.outbound")


async def _customer_party(session: ContactSession, number: str) -> tuple[Party, str]:
    """Dial the customer of an outbound contact; the party and the dial outcome."""
    svc = session.svc
    media = await svc.media.open_leg()
    leg = session.contact.add_leg(LegRole.CUSTOMER, number, svc.clock())
    party = Party(leg, media)
    session.parties.append(party)
    session.customer = party
    status = await session.dial_out(party, number, 45.0, caller=session.contact.dialed)
    return party, status


class CustomerFirstSession(ContactSession):
    """Dial the customer; when they answer, run the flow or queue (return-visit calls)."""

    def __init__(self, svc: VoiceService, contact: Contact, number: str, target: Target):
        media_placeholder: Any = None
        leg = Leg("pending", contact.id, LegRole.CUSTOMER, number, contact.created_at)
        super().__init__(svc, contact, Party(leg, media_placeholder), target)
        self.parties = []
        self.number = number

    async def _run(self) -> None:
        self.contact.go(ContactState.DIALING, self.now)
        self.svc.save(self)
        try:
            _party, status = await _customer_party(self, self.number)
        except Exception:
            log.exception("outbound contact %s could not dial", self.contact.id)
            status = "failed"
        if status != "answered":
            from cloudcc.contacts.model import Disposition

            self.contact.disposition = Disposition.NO_ANSWER
            self.contact.end_cause = EndCause.PEER_LOST if status == "failed" else None
            await asyncio.shield(self.finish())
            return
        await super()._run()


class AgentFirstSession(ContactSession):
    """Click-to-call: the agent's phone rings; when it answers, the customer is dialed."""

    def __init__(
        self, svc: VoiceService, contact: Contact, agent_id: str, device: str, number: str
    ) -> None:
        leg = Leg("pending", contact.id, LegRole.CUSTOMER, number, contact.created_at)
        placeholder: Any = None
        super().__init__(svc, contact, Party(leg, placeholder), Target("hangup"))
        self.parties = []
        self.agent_id = agent_id
        self.device = device
        self.number = number

    async def _run(self) -> None:

        tenant = self.tenant_id
        try:
            await self.svc.acd.call(tenant, "outbound_reserved", self.agent_id, self.contact.id)
            self._acd_work[self.agent_id] = self.contact.id
        except Exception:
            log.info("agent %s could not be reserved for an outbound call", self.agent_id)
        agent = await self.new_party(LegRole.AGENT, self.device, self.agent_id)
        self.contact.go(ContactState.DIALING, self.now)
        status = await self.dial(
            agent, self.device, 30.0, from_uri=self.svc.caller_uri(self.number)
        )
        if status != "answered":
            self.contact.disposition = Disposition.FAILED
            await asyncio.shield(self.finish())
            return
        self.watch(agent)
        self.agent = agent
        try:
            _customer, status = await _customer_party(self, self.number)
        except Exception:
            log.exception("dialing the customer of %s failed", self.contact.id)
            status = "failed"
        if status != "answered":
            await self.say(agent, "The customer did not answer.")
            self.contact.disposition = Disposition.NO_ANSWER
            await asyncio.shield(self.finish())
            return
        with contextlib.suppress(Exception):
            await self.svc.acd.call(tenant, "outbound_connected", self.contact.id)
        self.entry = Target("talk", party=agent)
        await super()._run()


class CallbackSession(ContactSession):
    """A callback waiting its turn in a queue; routed like a call, then both sides dialed."""

    def __init__(
        self,
        svc: VoiceService,
        contact: Contact,
        queue: str,
        skills: tuple[str, ...],
        priority: int,
        acd_id: str | None = None,
    ) -> None:
        leg = Leg("pending", contact.id, LegRole.CUSTOMER, contact.customer, contact.created_at)
        placeholder: Any = None
        super().__init__(svc, contact, Party(leg, placeholder), Target("queue", queue))
        self.parties = []
        # A queued caller turned into a callback keeps its place: the ACD knows it by the
        # original contact's id. A callback asked for in the IVR is queued anew.
        self.acd_id = acd_id or contact.id
        self.already_queued = acd_id is not None
        self.queue = queue
        self.skills = skills
        self.priority = priority

    def start_music(self) -> None:  # nobody is on the line while a callback waits
        return None

    async def say(self, party: Party, text: str, language: str = "en-US") -> None:
        if party.media is not None:
            await super().say(party, text, language)

    async def _run(self) -> None:

        queue_id = await self.svc.acd.queue_id(self.tenant_id, self.queue)
        if queue_id is None:
            self.contact.disposition = Disposition.FAILED
            await asyncio.shield(self.finish())
            return
        self.contact.queue = self.queue
        self.contact.go(ContactState.QUEUED, self.now)
        self.contact.note_path("queue", self.queue, self.now, callback=True)
        self._queued_id = queue_id
        if not self.already_queued:
            await self.svc.acd.call(
                self.tenant_id,
                "contact_queued",
                self.acd_id,
                queue_id,
                RoutingChannel.VOICE,
                priority=self.priority,
                required_skills=tuple(SkillRequirement(s) for s in self.skills),
            )
            await self.svc.acd.call(self.tenant_id, "callback_requested", self.acd_id)
        try:
            while True:
                msg = await self.mailbox.get()
                if isinstance(msg, Offer):
                    agent_id = msg.agent_ids[0]
                    device = await self.svc.agent_device(self.tenant_id, agent_id)
                    if device is None:
                        await self.svc.acd.call(
                            self.tenant_id, "offer_rejected", self.acd_id, agent_id
                        )
                        continue
                    self.contact.go(ContactState.OFFERED, self.now)
                    agent = await self.new_party(LegRole.AGENT, device, agent_id)
                    status = await self.dial(agent, device, msg.ring_timeout + 5)
                    if status != "answered":
                        method = "offer_timed_out" if status == "timeout" else "offer_rejected"
                        await self.svc.acd.call(self.tenant_id, method, self.acd_id, agent_id)
                        self.contact.go(ContactState.QUEUED, self.now)
                        continue
                    await self.svc.acd.call(self.tenant_id, "offer_accepted", self.acd_id, agent_id)
                    self._queued_id = None
                    self._acd_work[agent_id] = self.acd_id
                    self.watch(agent)
                    await self.say(agent, "Callback. Calling the customer now.")
                    _customer, status = await _customer_party(self, self.contact.customer)
                    if status != "answered":
                        await self.say(agent, "The customer did not answer the callback.")
                        self.contact.disposition = Disposition.NO_ANSWER
                        break
                    self.entry = Target("talk", party=agent)
                    self.watch(self.customer)
                    await ContactSession._run(self)
                    return
                if isinstance(msg, QueueAction):
                    self.contact.disposition = Disposition.OVERFLOWED
                    self._queued_id = None
                    break
        except asyncio.CancelledError:
            self.contact.end_cause = self.contact.end_cause or EndCause.NODE_SHUTDOWN
        finally:
            if not self._finished and self.contact.state is not ContactState.CONNECTED:
                await asyncio.shield(self.finish())


class OutboundSession(ContactSession):
    """An agent's own call from its phone to a colleague or an outside number."""

    pending_answer: Any = None

    async def _run(self) -> None:

        agent = self.customer  # the first leg here is the agent's phone
        self.agent = agent
        self.watch(agent)
        tenant = self.tenant_id
        if agent.agent_id:
            with contextlib.suppress(Exception):
                await self.svc.acd.call(
                    tenant,
                    "direct_contact_started",
                    agent.agent_id,
                    self.contact.id,
                    RoutingChannel.VOICE,
                )
                self._acd_work[agent.agent_id] = self.contact.id
        self.contact.go(ContactState.DIALING, self.now)
        target = self.entry
        try:
            if target.kind == "agent":
                callee_id = await self.svc.agent_id_for(tenant, target.name)
                device = await self.svc.agent_device(tenant, callee_id) if callee_id else None
                if device is None:
                    await self._refuse(404)
                    return
                other = await self.new_party(LegRole.AGENT, device, callee_id)
                status = await self.dial(
                    other, device, 30.0, from_uri=self.svc.caller_uri(agent.leg.peer)
                )
            else:
                other = await self.new_party(LegRole.CUSTOMER, target.name)
                status = await self.dial_out(other, target.name, 45.0, caller=self.contact.dialed)
        except BadTarget:
            await self._refuse(404)
            return
        if status != "answered":
            await self._refuse({"rejected": 486, "refused": 403}.get(status, 480))
            self.contact.disposition = Disposition.NO_ANSWER
            await asyncio.shield(self.finish())
            return
        call, answer = self.pending_answer
        try:
            await call.answer(answer)
        except Exception:
            await asyncio.shield(self.finish())
            return
        agent.leg.go(LegState.UP, self.now)
        # From here the dialed party is "the customer" of the contact.
        self.customer = other
        self.watch(other)
        self.entry = Target("talk", party=agent)
        await super()._run()

    async def _refuse(self, status: int) -> None:
        call, _ = self.pending_answer
        with contextlib.suppress(Exception):
            await call.reject(status)
        self.agent = None
        await asyncio.shield(self.finish())
