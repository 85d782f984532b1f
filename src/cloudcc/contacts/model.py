"""The contact model shared by every channel: a contact, its legs, and their state machines.

A *contact* is one customer interaction (a phone call, a chat). It has *legs*: the customer's,
the agent's, a consulted party's, a supervisor's. States are enums; allowed transitions are
tables in this module; every transition is timestamped, because the CDR is built from those
timestamps (``cloudcc.contacts.cdr``). Nothing here does I/O.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from typing import Any

from cloudcc.contacts.exceptions import IllegalTransition


class Channel(enum.StrEnum):
    VOICE = "voice"
    CHAT = "chat"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ContactState(enum.StrEnum):
    NEW = "new"
    IVR = "ivr"  # in a flow
    QUEUED = "queued"  # waiting in a skill queue
    OFFERED = "offered"  # reserved for an agent whose device rings
    DIALING = "dialing"  # outbound: the customer's phone rings
    CONNECTED = "connected"  # the customer talks to an agent (or an external party)
    WRAPUP = "wrapup"  # the customer left; the agent does after-call work
    ENDED = "ended"


CONTACT_TRANSITIONS: dict[ContactState, frozenset[ContactState]] = {
    ContactState.NEW: frozenset(
        {
            ContactState.IVR,
            ContactState.QUEUED,
            ContactState.OFFERED,
            ContactState.DIALING,
            ContactState.CONNECTED,
            ContactState.ENDED,
        }
    ),
    ContactState.IVR: frozenset(
        {ContactState.QUEUED, ContactState.OFFERED, ContactState.CONNECTED, ContactState.ENDED}
    ),
    ContactState.QUEUED: frozenset(
        {
            ContactState.OFFERED,
            ContactState.IVR,
            ContactState.QUEUED,
            ContactState.CONNECTED,
            ContactState.ENDED,
        }
    ),
    ContactState.OFFERED: frozenset(
        {ContactState.CONNECTED, ContactState.QUEUED, ContactState.OFFERED, ContactState.ENDED}
    ),
    ContactState.DIALING: frozenset(
        {ContactState.CONNECTED, ContactState.QUEUED, ContactState.IVR, ContactState.ENDED}
    ),
    ContactState.CONNECTED: frozenset(
        {
            ContactState.QUEUED,
            ContactState.IVR,
            ContactState.OFFERED,
            ContactState.WRAPUP,
            ContactState.CONNECTED,
            ContactState.ENDED,
        }
    ),
    ContactState.WRAPUP: frozenset({ContactState.ENDED}),
    ContactState.ENDED: frozenset(),
}


class LegRole(enum.StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    CONSULT = "consult"  # a party consulted before a transfer or conference
    SUPERVISOR = "supervisor"  # listening, whispering or barging
    EXTERNAL = "external"  # an outside number the contact was transferred to


class LegState(enum.StrEnum):
    CREATED = "created"
    RINGING = "ringing"
    UP = "up"
    HELD = "held"
    ENDED = "ended"


LEG_TRANSITIONS: dict[LegState, frozenset[LegState]] = {
    LegState.CREATED: frozenset({LegState.RINGING, LegState.UP, LegState.ENDED}),
    LegState.RINGING: frozenset({LegState.UP, LegState.ENDED}),
    LegState.UP: frozenset({LegState.HELD, LegState.ENDED}),
    LegState.HELD: frozenset({LegState.UP, LegState.ENDED}),
    LegState.ENDED: frozenset(),
}


class Disposition(enum.StrEnum):
    """How the contact ended, from the contact center's point of view."""

    ANSWERED = "answered"  # an agent talked to the customer
    ABANDONED = "abandoned"  # the customer left before an agent answered
    SELF_SERVICE = "self_service"  # ended in the IVR by design (hang-up node)
    OVERFLOWED = "overflowed"  # left the queues by an overflow rule (disconnect treatment)
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"  # left the line with a callback scheduled
    TRANSFERRED_OUT = "transferred_out"  # sent to an external number
    NO_ANSWER = "no_answer"  # outbound: the customer did not answer
    RELEASED = "released"  # a supervisor (or the agent) ended it before anyone answered
    FAILED = "failed"  # a technical failure ended it
    NODE_FAILURE = "node_failure"  # the node anchoring it died; closed on recovery
    REFUSED = "refused"  # refused at the door (a quota, the trunk's channels): counted offered


class EndCause(enum.StrEnum):
    CUSTOMER_HANGUP = "customer_hangup"
    AGENT_HANGUP = "agent_hangup"
    SYSTEM_HANGUP = "system_hangup"  # the IVR or a queue treatment hung up
    SUPERVISOR_RELEASE = "supervisor_release"
    PEER_LOST = "peer_lost"  # transport failure / no ACK / session timer
    NODE_SHUTDOWN = "node_shutdown"
    NODE_FAILURE = "node_failure"  # found unfinished after a crash
    ERROR = "error"  # the contact's task failed
    REFUSED = "refused"  # never admitted: a quota or the trunk's channels said no


class MonitorMode(enum.StrEnum):
    LISTEN = "listen"  # hears both, heard by none
    WHISPER = "whisper"  # heard by the agent only
    BARGE = "barge"  # heard by all


@dataclass
class Leg:
    id: str
    contact_id: str
    role: LegRole
    peer: str  # the SIP URI, number or agent extension at the other end
    created_at: float
    agent_id: str | None = None
    call_id: str | None = None  # the SIP Call-ID of this leg's dialog
    state: LegState = LegState.CREATED
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    end_cause: str | None = None
    held_since: float | None = None
    hold_seconds: float = 0.0
    hold_count: int = 0
    muted: bool = False
    monitor_mode: MonitorMode | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    trunk: str | None = None  # the trunk that carried it (its name)
    # An agent leg's wrap-up by its agent ({"code", "notes"}): each agent who handled the
    # contact (before a transfer, in a conference, or to its end) records its own part.
    wrapup: dict[str, Any] | None = None
    # Trunks tried before, in order, with their answer (a status, or "busy", "no_response")
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def go(self, target: LegState, now: float) -> None:
        if target not in LEG_TRANSITIONS[self.state]:
            raise IllegalTransition(f"leg {self.id} cannot go from {self.state} to {target}")
        if target is LegState.RINGING:
            self.ringing_at = now
        elif target is LegState.UP:
            if self.state is LegState.HELD and self.held_since is not None:
                self.hold_seconds += now - self.held_since
                self.held_since = None
            if self.answered_at is None:
                self.answered_at = now
        elif target is LegState.HELD:
            self.held_since = now
            self.hold_count += 1
        elif target is LegState.ENDED:
            if self.held_since is not None:
                self.hold_seconds += now - self.held_since
                self.held_since = None
            self.ended_at = now
        self.state = target

    @property
    def active(self) -> bool:
        return self.state is not LegState.ENDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role.value,
            "peer": self.peer,
            "agent_id": self.agent_id,
            "call_id": self.call_id,
            "state": self.state.value,
            "created_at": self.created_at,
            "ringing_at": self.ringing_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "end_cause": self.end_cause,
            "hold_seconds": round(self.hold_seconds, 3),
            "hold_count": self.hold_count,
            "muted": self.muted,
            "monitor_mode": self.monitor_mode.value if self.monitor_mode else None,
            "quality": self.quality,
            "trunk": self.trunk,
            "attempts": self.attempts,
            "wrapup": self.wrapup,
        }


@dataclass
class Contact:
    id: str
    tenant_id: str
    channel: Channel
    direction: Direction
    customer: str  # caller's number/URI (inbound) or the dialed customer (outbound)
    dialed: str  # the number the customer called (inbound) or the caller ID used (outbound)
    created_at: float
    state: ContactState = ContactState.NEW
    queue: str | None = None
    agent_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    legs: list[Leg] = field(default_factory=list)
    path: list[dict[str, Any]] = field(default_factory=list)  # flows, queues, agents in order
    transfers: list[dict[str, Any]] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    disposition: Disposition | None = None
    end_cause: EndCause | None = None
    wrapup_code: str | None = None
    wrapup_notes: str | None = None
    recording: str | None = None  # the live recording's state: recording, paused, or none
    # Phase timestamps (seconds since the epoch) the CDR is built from.
    ivr_started_at: float | None = None
    ivr_seconds: float = 0.0
    queued_at: float | None = None  # first time in a queue
    queue_seconds: float = 0.0
    offered_at: float | None = None  # first offer to an agent
    ring_seconds: float = 0.0
    answered_at: float | None = None  # first agent connected
    connected_since: float | None = None
    talk_seconds: float = 0.0
    customer_left_at: float | None = None
    wrapup_started_at: float | None = None
    wrapup_seconds: float = 0.0
    ended_at: float | None = None
    _phase_since: float | None = None
    _seq: int = 0

    def new_leg_id(self) -> str:
        self._seq += 1
        return f"{self.id}-{self._seq}"

    def add_leg(self, role: LegRole, peer: str, now: float, **kw: Any) -> Leg:
        leg = Leg(self.new_leg_id(), self.id, role, peer, now, **kw)
        self.legs.append(leg)
        return leg

    def leg(self, role: LegRole, *, active: bool = True) -> Leg | None:
        """The most recent leg of a role (active ones only by default)."""
        for leg in reversed(self.legs):
            if leg.role is role and (leg.active or not active):
                return leg
        return None

    def go(self, target: ContactState, now: float) -> None:
        """Move to ``target``, closing the time of the phase being left."""
        if target not in CONTACT_TRANSITIONS[self.state]:
            raise IllegalTransition(f"contact {self.id} cannot go from {self.state} to {target}")
        self._close_phase(now)
        self._phase_since = now
        if target is ContactState.IVR and self.ivr_started_at is None:
            self.ivr_started_at = now
        elif target is ContactState.QUEUED and self.queued_at is None:
            self.queued_at = now
        elif target is ContactState.OFFERED and self.offered_at is None:
            self.offered_at = now
        elif target is ContactState.CONNECTED:
            if self.answered_at is None:
                self.answered_at = now
        elif target is ContactState.WRAPUP:
            self.wrapup_started_at = now
        elif target is ContactState.ENDED:
            self.ended_at = now
        self.state = target

    def _close_phase(self, now: float) -> None:
        if self._phase_since is None:
            return
        spent = max(0.0, now - self._phase_since)
        if self.state is ContactState.IVR:
            self.ivr_seconds += spent
        elif self.state is ContactState.QUEUED:
            self.queue_seconds += spent
        elif self.state is ContactState.OFFERED:
            # While an agent's phone rings the customer is still waiting in the queue.
            self.ring_seconds += spent
            self.queue_seconds += spent
        elif self.state is ContactState.CONNECTED:
            self.talk_seconds += spent
        elif self.state is ContactState.WRAPUP:
            self.wrapup_seconds += spent
        self._phase_since = None

    def as_of(self, now: float) -> Contact:
        """A copy whose phase times count the phase under way up to ``now`` (what a
        checkpoint writes, so that a crash loses at most the time since)."""
        snapshot = copy.copy(self)
        snapshot._close_phase(now)
        return snapshot

    @property
    def ended(self) -> bool:
        return self.state is ContactState.ENDED

    def note_path(self, kind: str, name: str, now: float, **extra: Any) -> None:
        self.path.append({"type": kind, "name": name, "at": now, **extra})

    def hold_seconds(self) -> float:
        return sum(leg.hold_seconds for leg in self.legs if leg.role is LegRole.CUSTOMER)

    def summary(self) -> dict[str, Any]:
        """What events and the live API show about a contact."""
        return {
            "contact_id": self.id,
            "channel": self.channel.value,
            "direction": self.direction.value,
            "state": self.state.value,
            "customer": self.customer,
            "dialed": self.dialed,
            "queue": self.queue,
            "agent_id": self.agent_id,
            "created_at": self.created_at,
            "legs": [leg.to_dict() for leg in self.legs],
            "path": self.path,
            "attributes": self.attributes,
            "recording": self.recording,
        }
