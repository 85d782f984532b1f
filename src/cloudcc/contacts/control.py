"""Call control on a connected contact: hold, mute, DTMF, transfers, consultation,
conference, recording, supervision. Each operation runs inside the contact's own task (its
mailbox serialises them), acts on the session's parties and returns what the API answers,
sometimes with the contact's next target (a blind transfer sends the customer on).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import TYPE_CHECKING, Any

from cloudcc.contacts.exceptions import BadTarget, OperationRefused
from cloudcc.contacts.model import EndCause, LegRole, LegState, MonitorMode
from cloudcc.media.engine import Recording
from cloudcc.media.recorder import RecordingState
from cloudcc.routing.events import Decision, Offer, QueueAction
from cloudcc.routing.model import Channel as RoutingChannel
from cloudcc.sip.call import ReferReceived

if TYPE_CHECKING:
    from cloudcc.contacts.session import ContactSession, Party, Target

# What an operation returns: the API's answer, and possibly where the contact goes next
# (False: it stays where it is; None: it ends).
Outcome = tuple[dict[str, Any], "Target | bool | None"]

#: How long a consultation waits in a queue for the ACD to offer it to an agent.
CONSULT_QUEUE_WAIT = 30.0


class CallControl:
    """The operations of one contact, named ``op_<operation>`` after the API's verbs."""

    def __init__(self, session: ContactSession) -> None:
        self.s = session

    def _require_agent(self) -> Party:
        if self.s.agent is None or not self.s.agent.leg.active:
            raise OperationRefused("no agent is connected")
        return self.s.agent

    async def op_hold(self, from_phone: bool = False) -> dict[str, Any]:
        self._require_agent()
        if self.s.customer.leg.state is LegState.HELD:
            return {"held": True}
        self.s.svc.media.hold(self.s.customer.media, self.s.hold_music())
        self.s.customer.leg.go(LegState.HELD, self.s.now)
        self.s.svc.publish_leg(self.s, self.s.customer.leg, "leg.held")
        return {"held": True}

    async def op_unhold(self, from_phone: bool = False) -> dict[str, Any]:
        self._require_agent()
        if self.s.customer.leg.state is not LegState.HELD:
            return {"held": False}
        self.s.svc.media.unhold(self.s.customer.media)
        self.s.customer.leg.go(LegState.UP, self.s.now)
        self.s.svc.publish_leg(self.s, self.s.customer.leg, "leg.unheld")
        return {"held": False}

    async def op_mute(self) -> dict[str, Any]:
        agent = self._require_agent()
        self.s.svc.media.mute(agent.media)
        agent.leg.muted = True
        self.s.svc.publish_leg(self.s, agent.leg, "leg.muted")
        return {"muted": True}

    async def op_unmute(self) -> dict[str, Any]:
        agent = self._require_agent()
        self.s.svc.media.unmute(agent.media)
        agent.leg.muted = False
        self.s.svc.publish_leg(self.s, agent.leg, "leg.unmuted")
        return {"muted": False}

    async def op_dtmf(self, digits: str) -> dict[str, Any]:
        self._require_agent()
        self.s.customer.media.send_dtmf(digits)
        return {"sent": digits}

    async def op_hangup(self) -> tuple[dict[str, Any], Target | bool | None]:
        agent = self._require_agent()
        self.s.agent = None
        await self.s._release_agent(agent)
        if self.s.consult is not None and self.s.consult.leg.active:
            self.s._promote_consult()
            self.s.rejoin()
            await self.s.hand_on(agent)
            return {"ok": True}, False
        self.s.contact.end_cause = EndCause.AGENT_HANGUP
        await self.s.hangup_party(self.s.customer, "agent_hangup")
        return {"ok": True}, None

    async def op_force_release(self) -> tuple[dict[str, Any], Target | None]:
        self.s.contact.end_cause = EndCause.SUPERVISOR_RELEASE
        for party in list(self.s.parties):
            if party is not self.s.customer and party.leg.active:
                if party is self.s.agent:
                    self.s.agent = None
                    await self.s._release_agent(party)
                else:
                    await self.s.hangup_party(party, "released")
        await self.s.hangup_party(self.s.customer, "released")
        return {"ok": True}, None

    async def op_transfer(
        self, target_type: str, target: str, mode: str = "blind"
    ) -> tuple[dict[str, Any], Target | bool | None]:
        """Blind transfer: the agent leaves; the customer goes to the target."""
        agent = self._require_agent()
        nxt = await self.s.svc.resolve_target(self.s.tenant_id, target_type, target)
        self.s.contact.transfers.append(
            {
                "at": self.s.now,
                "kind": "blind",
                "from_agent": agent.agent_id,
                "to_type": target_type,
                "to": target,
            }
        )
        self.s.agent = None
        await self.s._release_agent(agent)
        await self.s.hand_on(agent)
        self.s.svc.publish_contact(self.s, "contact.transferred", to_type=target_type, to=target)
        return {"transferred": True}, nxt

    async def op_consult(self, target_type: str, target: str) -> dict[str, Any]:
        """Put the customer on hold and call the target from the agent's side: an agent, an
        outside number, or whichever agent the ACD offers a consultation queued in a queue."""
        agent = self._require_agent()
        if self.s.consult is not None and self.s.consult.leg.active:
            raise OperationRefused("a consultation is already in progress")
        queued: str | None = None  # the consultation's ACD contact id, when queued
        agent_id: str | None
        ring = 30.0
        if target_type == "queue":
            await self.op_hold()
            try:
                device, agent_id, queued, ring = await self._consult_in_queue(target)
            except BaseException:
                await self.op_unhold()
                raise
        else:
            device, agent_id = await self.s.svc.consult_device(
                self.s.tenant_id, target_type, target
            )
            await self.op_hold()
        role = LegRole.CONSULT
        party = await self.s.new_party(role, device, agent_id)
        self.s.consult = party
        self.s.svc.publish_leg(self.s, party.leg, "leg.created")
        if target_type == "external":
            status = await self.s.dial_out(party, target, ring, caller=self.s.contact.dialed)
        else:
            status = await self.s.dial(
                party, device, ring, from_uri=self.s.svc.caller_uri(self.s.contact.dialed)
            )
        if queued is not None and agent_id:
            status = await self._queued_consult_answered(queued, agent_id, status)
        if status != "answered":
            self.s.consult = None
            if party.leg.active:
                await self.s.hangup_party(party, "offer_withdrawn")
            await self.op_unhold()
            raise OperationRefused(f"the consulted party did not answer ({status})")
        if queued is not None and agent_id:
            self.s._acd_work[agent_id] = queued
        elif agent_id:
            self.s._consults += 1
            work = f"{self.s.contact.id}:c{self.s._consults}"
            with contextlib.suppress(Exception):
                await self.s.svc.acd.call(
                    self.s.tenant_id, "direct_contact_started", agent_id, work, RoutingChannel.VOICE
                )
                self.s._acd_work[agent_id] = work
        # The agent talks to the consulted party; the customer hears music.
        if self.s.bridge is not None:
            self.s.svc.media.unbridge(self.s.bridge)
            self.s.bridge = None
        self.s.bridge = self.s.svc.media.bridge(agent.media, party.media)
        return {"consult_leg": party.leg.id}

    async def _consult_in_queue(self, name: str) -> tuple[str, str, str, float]:
        """Queue a consultation in queue ``name`` and wait for the ACD to offer it: the
        offered agent's device and id, the consultation's ACD contact id, the ring time."""
        svc, tenant = self.s.svc, self.s.tenant_id
        queue_id = await svc.acd.queue_id(tenant, name)
        if queue_id is None:
            raise BadTarget(f"queue {name!r} does not exist")
        self.s._consults += 1
        queued = f"{self.s.contact.id}:c{self.s._consults}"
        inbox: asyncio.Queue[Decision] = asyncio.Queue()
        svc.consult_inboxes[queued] = inbox
        offer: Offer | None = None
        try:
            await svc.acd.call(tenant, "contact_queued", queued, queue_id, RoutingChannel.VOICE)
            try:
                async with asyncio.timeout(CONSULT_QUEUE_WAIT):
                    while True:
                        decision = await inbox.get()
                        if isinstance(decision, QueueAction):  # the queue's max-wait treatment
                            raise TimeoutError
                        if isinstance(decision, Offer):
                            offer = decision
                            break
            except TimeoutError:
                with contextlib.suppress(Exception):
                    await svc.acd.call(tenant, "contact_abandoned", queued)
                raise OperationRefused(f"nobody in queue {name!r} took the consultation") from None
        finally:
            svc.consult_inboxes.pop(queued, None)
        agent_id = offer.agent_ids[0]
        device = await svc.agent_device(tenant, agent_id)
        if device is None:
            with contextlib.suppress(Exception):
                await svc.acd.call(tenant, "offer_rejected", queued, agent_id)
                await svc.acd.call(tenant, "contact_abandoned", queued)
            raise OperationRefused(f"agent {agent_id} of queue {name!r} has no reachable phone")
        return device, agent_id, queued, offer.ring_timeout

    async def _queued_consult_answered(self, queued: str, agent_id: str, status: str) -> str:
        """Tell the ACD how the offered agent's phone answered the queued consultation."""
        acd, tenant = self.s.svc.acd, self.s.tenant_id
        if status == "answered":
            try:
                await acd.call(tenant, "offer_accepted", queued, agent_id)
                return status
            except Exception:
                status = "withdrawn"  # the ACD's ring timer ran out first
        method = "offer_timed_out" if status == "timeout" else "offer_rejected"
        with contextlib.suppress(Exception):
            await acd.call(tenant, method, queued, agent_id)
        with contextlib.suppress(Exception):
            await acd.call(tenant, "contact_abandoned", queued)
        return status

    async def op_complete_transfer(self) -> tuple[dict[str, Any], Target | bool | None]:
        """The consulted party takes over the customer; the agent leaves."""
        agent = self._require_agent()
        if self.s.consult is None or not self.s.consult.leg.active:
            raise OperationRefused("there is no consultation to complete")
        if self.s.bridge is not None:
            self.s.svc.media.unbridge(self.s.bridge)
            self.s.bridge = None
        self.s.agent = None
        await self.s._release_agent(agent)
        self.s._promote_consult()
        await self.op_unhold()
        self.s.rejoin()
        await self.s.hand_on(agent)
        self.s.svc.publish_contact(
            self.s,
            "contact.transferred",
            to=self.s.agent.leg.peer if self.s.agent else None,
            path=copy.deepcopy(self.s.contact.path),
        )
        if self.s.recording is not None:
            await self.s.stop_recording()
            if await self.s.svc.records_calls(self.s.tenant_id):
                await self.s.start_recording()
        return {"transferred": True}, False

    async def op_cancel_consult(self) -> dict[str, Any]:
        if self.s.consult is None:
            raise OperationRefused("there is no consultation")
        consult = self.s.consult
        self.s.consult = None
        if self.s.bridge is not None:
            self.s.svc.media.unbridge(self.s.bridge)
            self.s.bridge = None
        await self.s.hangup_party(consult, "consult_cancelled")
        await self.op_unhold()
        self.s.rejoin()
        return {"ok": True}

    async def op_conference(self) -> dict[str, Any]:
        """Customer, agent and consulted party talk together."""
        self._require_agent()
        if self.s.consult is None or not self.s.consult.leg.active:
            raise OperationRefused("there is nobody to conference with")
        if self.s.bridge is not None:
            self.s.svc.media.unbridge(self.s.bridge)
            self.s.bridge = None
        if self.s.customer.leg.state is LegState.HELD:
            self.s.svc.media.unhold(self.s.customer.media)
            self.s.customer.leg.go(LegState.UP, self.s.now)
        self.s.rejoin()
        self.s.svc.publish_contact(self.s, "contact.conferenced")
        return {"conference": True}

    async def op_leave_conference(self) -> tuple[dict[str, Any], Target | bool | None]:
        """The agent leaves a three-way call; the customer and the other party stay."""
        if self.s.consult is None or not self.s.consult.leg.active:
            raise OperationRefused("the contact is not in a three-way call")
        return await self.op_hangup()

    async def op_record(self, action: str) -> dict[str, Any]:
        if action == "start":
            if self.s.recording is None:
                await self.s.start_recording()
        elif action == "pause":
            recording = self._need_recording()
            if recording.state is RecordingState.PAUSED:
                raise OperationRefused("the recording is paused already")
            recording.pause()
            self.s.contact.recording = "paused"
        elif action == "resume":
            recording = self._need_recording()
            if recording.state is not RecordingState.PAUSED:
                raise OperationRefused("the recording is not paused")
            recording.resume()
            self.s.contact.recording = "recording"
        elif action == "stop":
            await self.s.stop_recording()
        else:
            raise OperationRefused(f"unknown recording action {action!r}")
        state = self.s.recording.state.value if self.s.recording else "stopped"
        self.s.svc.publish_contact(self.s, "contact.recording", action=action, state=state)
        return {"recording": state, "recording_id": self.s.recording_id}

    def _need_recording(self) -> Recording:
        if self.s.recording is None:
            raise OperationRefused("the contact is not being recorded")
        return self.s.recording

    async def op_monitor(
        self, mode: str, device: str, supervisor_id: str | None = None
    ) -> dict[str, Any]:
        """A supervisor listens, whispers to the agent, or barges in."""
        self._require_agent()
        monitor = MonitorMode(mode)
        if self.s.supervisor is not None and self.s.supervisor.leg.active:
            self.s.supervisor.leg.monitor_mode = monitor
            self.s.rejoin()
            self.s.svc.publish_leg(self.s, self.s.supervisor.leg, "leg.monitor_mode")
            return {"mode": monitor.value, "leg": self.s.supervisor.leg.id}
        party = await self.s.new_party(LegRole.SUPERVISOR, device, supervisor_id)
        party.leg.monitor_mode = monitor
        self.s.svc.publish_leg(self.s, party.leg, "leg.created")
        status = await self.s.dial(party, device, 30.0)
        if status != "answered":
            raise OperationRefused(f"the supervisor's phone did not answer ({status})")
        self.s.supervisor = party
        self.s.rejoin()
        self.s.svc.publish_leg(self.s, party.leg, "leg.monitoring")
        return {"mode": monitor.value, "leg": party.leg.id}

    async def op_stop_monitor(self) -> dict[str, Any]:
        if self.s.supervisor is None:
            raise OperationRefused("nobody is monitoring this contact")
        party, self.s.supervisor = self.s.supervisor, None
        await self.s.hangup_party(party, "monitor_ended")
        self.s.rejoin()
        return {"ok": True}

    async def op_intercept(self) -> tuple[dict[str, Any], Target | bool | None]:
        """The monitoring supervisor takes the customer over; the agent is released."""
        if self.s.supervisor is None or not self.s.supervisor.leg.active:
            raise OperationRefused("intercepting needs a monitoring supervisor")
        agent = self._require_agent()
        supervisor, self.s.supervisor = self.s.supervisor, None
        supervisor.leg.monitor_mode = None
        self.s.agent = None
        await self.s._release_agent(agent)
        self.s.agent = supervisor
        self.s.contact.transfers.append(
            {"at": self.s.now, "kind": "intercept", "to": supervisor.leg.peer}
        )
        self.s.rejoin()
        await self.s.hand_on(agent)
        return {"intercepted": True}, False

    async def op_refer(self, event: ReferReceived) -> tuple[dict[str, Any], Target | bool | None]:
        """The agent's phone asked to transfer (REFER): a blind transfer to its target."""
        target = _refer_user(event.target)
        with contextlib.suppress(Exception):
            await event.notify(100, "Trying")
        try:
            kind = await self.s.svc.classify_dialed(self.s.tenant_id, target)
            result = await self.op_transfer(kind, target)
        except Exception:
            with contextlib.suppress(Exception):
                await event.notify(503, "Service Unavailable")
            raise
        with contextlib.suppress(Exception):
            await event.notify(200, "OK")
        return result


def _refer_user(target: str) -> str:
    text = target.strip("<>")
    if text.startswith(("sip:", "sips:", "tel:")):
        text = text.split(":", 1)[1]
    return text.split("@", 1)[0].split(";", 1)[0]
