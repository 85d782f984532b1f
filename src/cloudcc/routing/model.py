"""Domain model of the ACD: channels, agent states and their transition tables, skills,
queue and agent configuration, reason codes.

The agent state machine has two levels (docs/routing.md, "Agent states"):
``Presence`` is what the agent (or a supervisor) chose; ``WorkPhase`` is the phase of
each contact the agent holds. The reported ``AgentState`` is derived from both; every
change of it is timestamped and published as an ``AgentStateChanged`` decision.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from cloudcc.routing.exceptions import InvalidConfig

MIN_LEVEL = 1
MAX_LEVEL = 10
MAX_QUEUE_PRIORITY = 100

#: What one level of queue priority moves a contact's place (seconds): longer than any
#: contact waits, so a higher-priority queue's contacts always come first. With the largest
#: priority the place stays exact to microseconds (about 1e11 in a double).
QUEUE_PRIORITY_SECONDS = 1e9


class Channel(enum.StrEnum):
    VOICE = "voice"
    VIDEO = "video"
    CHAT = "chat"
    MESSAGE = "message"
    EMAIL = "email"

    @property
    def is_call(self) -> bool:
        """Real-time media channels: one at a time, and they block text work by default."""
        return self is Channel.VOICE or self is Channel.VIDEO


class Presence(enum.StrEnum):
    """What the agent chose (or a supervisor forced)."""

    OFFLINE = "offline"
    READY = "ready"
    NOT_READY = "not_ready"
    WORKING = "working"


#: Allowed presence changes. NOT_READY -> NOT_READY changes the reason code.
PRESENCE_TRANSITIONS: Mapping[Presence, frozenset[Presence]] = {
    Presence.OFFLINE: frozenset({Presence.READY, Presence.NOT_READY, Presence.WORKING}),
    Presence.READY: frozenset({Presence.NOT_READY, Presence.WORKING, Presence.OFFLINE}),
    Presence.NOT_READY: frozenset(
        {Presence.READY, Presence.NOT_READY, Presence.WORKING, Presence.OFFLINE}
    ),
    Presence.WORKING: frozenset({Presence.READY, Presence.NOT_READY, Presence.OFFLINE}),
}


class WorkPhase(enum.StrEnum):
    """Phase of one contact held by an agent."""

    PRE_OCCUPIED = "pre_occupied"  # reserved for an outbound dial
    OFFERED = "offered"  # reserved for the agent, offer sent
    ALERTING = "alerting"  # the agent's phone/client is ringing (reported by the edge)
    ACTIVE = "active"  # talking / handling
    WRAP_UP = "wrap_up"  # after-contact work
    DONE = "done"  # released: the agent holds it no more


#: Phases a work item may start in (offer from a queue, outbound reservation, direct call).
WORK_START: frozenset[WorkPhase] = frozenset(
    {WorkPhase.PRE_OCCUPIED, WorkPhase.OFFERED, WorkPhase.ACTIVE}
)

#: Allowed phase changes of a work item.
WORK_TRANSITIONS: Mapping[WorkPhase, frozenset[WorkPhase]] = {
    WorkPhase.PRE_OCCUPIED: frozenset({WorkPhase.ACTIVE, WorkPhase.DONE}),
    WorkPhase.OFFERED: frozenset({WorkPhase.ALERTING, WorkPhase.ACTIVE, WorkPhase.DONE}),
    WorkPhase.ALERTING: frozenset({WorkPhase.ACTIVE, WorkPhase.DONE}),
    WorkPhase.ACTIVE: frozenset({WorkPhase.WRAP_UP, WorkPhase.DONE}),
    WorkPhase.WRAP_UP: frozenset({WorkPhase.DONE}),
    WorkPhase.DONE: frozenset(),
}


class AgentState(enum.StrEnum):
    """The reported state (what wallboards and reports show), derived from presence and work.

    Precedence when an agent holds several contacts: alerting > reserved > pre-occupied >
    busy > wrap-up > presence.
    """

    OFFLINE = "offline"
    READY = "ready"
    PRE_OCCUPIED = "pre_occupied"
    RESERVED = "reserved"
    ALERTING = "alerting"
    BUSY = "busy"
    WORKING = "working"
    NOT_READY = "not_ready"
    WRAP_UP = "wrap_up"


class ContactState(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"
    ENDED = "ended"


#: Allowed contact state changes (a contact leaves the engine on ENDED).
CONTACT_TRANSITIONS: Mapping[ContactState, frozenset[ContactState]] = {
    ContactState.WAITING: frozenset({ContactState.OFFERED, ContactState.ENDED}),
    ContactState.OFFERED: frozenset(
        {ContactState.WAITING, ContactState.CONNECTED, ContactState.ENDED}
    ),
    ContactState.CONNECTED: frozenset({ContactState.ENDED}),
    ContactState.ENDED: frozenset(),
}


class Outcome(enum.StrEnum):
    """How a contact left its queue."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"  # moved to another queue
    TREATED = "treated"  # voicemail, disconnect with a message


class Strategy(enum.StrEnum):
    LONGEST_IDLE = "longest_idle"
    MOST_SKILLED = "most_skilled"
    LEAST_OCCUPIED = "least_occupied"
    ROUND_ROBIN = "round_robin"
    RING_ALL = "ring_all"


class TreatmentKind(enum.StrEnum):
    QUEUE = "queue"  # keep waiting
    OVERFLOW = "overflow"  # move to target_queue
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"  # the customer leaves and keeps their place
    DISCONNECT = "disconnect"  # play message, hang up
    FLOW = "flow"  # leave the queue for an IVR flow (target_flow)


class SignOutReason(enum.StrEnum):
    SELF = "self"
    DISCONNECTED = "disconnected"  # no heartbeat from the client
    FORCED = "forced"  # by a supervisor
    REPLACED = "replaced"  # signed in again from another client


class ForceAction(enum.StrEnum):
    """Supervisor operations on an agent's state."""

    BUSY = "busy"
    IDLE = "idle"
    REST = "rest"
    SIGN_OUT = "sign_out"


class WithdrawReason(enum.StrEnum):
    RING_TIMEOUT = "ring_timeout"
    REJECTED = "rejected"
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    ABANDONED = "abandoned"
    CALLBACK = "callback"  # the caller hung up to be called back
    AGENT_SIGNED_OUT = "agent_signed_out"


# Built-in not-ready reason codes (tenants add their own with ReasonCode).
REASON_BUSY = "busy"  # the agent chose busy
REASON_REST = "rest"
REASON_TRAINING = "training"
REASON_RONA = "rona"  # redirected on no answer
REASON_REJECTED = "rejected"
REASON_FORCED = "forced"  # forced busy by a supervisor
REASON_UNREACHABLE = "unreachable"  # phone unreachable (reported by the edge)


@dataclass(frozen=True, slots=True)
class ReasonCode:
    """A not-ready reason. ``max_seconds`` bounds it (rest with a duration): when it runs
    out the agent returns to ready if ``auto_ready``, else a ``NotReadyOverrun`` is emitted."""

    code: str
    label: str = ""
    max_seconds: float | None = None
    auto_ready: bool = False
    cti_code: int = 7

    def __post_init__(self) -> None:
        if not self.code:
            raise InvalidConfig("reason code", "code must not be empty")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise InvalidConfig("reason code", f"{self.code}: max_seconds must be > 0")
        if self.cti_code not in (7, 8, 9):
            raise InvalidConfig("reason code", f"{self.code}: cti_code must be 7, 8 or 9")


#: The commercial product's not-ready states (PRODUCT.md appendix) a reason code reports,
#: with their CTI codes.
NOT_READY_STATES: Mapping[str, int] = {"busy": 7, "rest": 8, "study": 9}

BUILTIN_REASONS: tuple[ReasonCode, ...] = (
    ReasonCode(REASON_BUSY, "busy"),
    ReasonCode(REASON_REST, "rest", cti_code=8),
    ReasonCode(REASON_TRAINING, "training", cti_code=9),
    ReasonCode(REASON_RONA, "redirected on no answer"),
    ReasonCode(REASON_REJECTED, "rejected an offer"),
    ReasonCode(REASON_FORCED, "forced busy by a supervisor"),
    ReasonCode(REASON_UNREACHABLE, "phone unreachable"),
)


def cti_code(state: AgentState, reason: str | None, reasons: Mapping[str, ReasonCode]) -> int:
    """The commercial product's CTI state code (0-10) of an engine state."""
    if state is AgentState.NOT_READY:
        rc = reasons.get(reason or "")
        return rc.cti_code if rc is not None else 7
    return _CTI[state]


_CTI: Mapping[AgentState, int] = {
    AgentState.OFFLINE: 0,
    AgentState.READY: 1,
    AgentState.PRE_OCCUPIED: 2,
    AgentState.RESERVED: 3,
    AgentState.ALERTING: 4,
    AgentState.BUSY: 5,
    AgentState.WORKING: 6,
    AgentState.WRAP_UP: 10,
}


@dataclass(frozen=True, slots=True)
class SkillRequirement:
    skill: str
    min_level: int = MIN_LEVEL

    def __post_init__(self) -> None:
        if not self.skill:
            raise InvalidConfig("skill requirement", "skill name must not be empty")
        if not MIN_LEVEL <= self.min_level <= MAX_LEVEL:
            raise InvalidConfig(
                "skill requirement",
                f"{self.skill}: level {self.min_level} outside {MIN_LEVEL}..{MAX_LEVEL}",
            )


Requirement = tuple[tuple[str, int], ...]
"""A normalised requirement: (skill, min level) pairs sorted by skill, one per skill."""


def normalise(*parts: tuple[SkillRequirement, ...] | Requirement) -> Requirement:
    """Merge requirements; the same skill twice keeps the higher minimum level."""
    merged: dict[str, int] = {}
    for part in parts:
        for item in part:
            skill, level = (
                (item.skill, item.min_level) if isinstance(item, SkillRequirement) else item
            )
            if merged.get(skill, 0) < level:
                merged[skill] = level
    return tuple(sorted(merged.items()))


def is_weaker(wide: Requirement, narrow: Requirement) -> bool:
    """True when everyone who meets ``narrow`` also meets ``wide``."""
    levels = dict(narrow)
    return all(levels.get(skill, 0) >= level for skill, level in wide)


@dataclass(frozen=True, slots=True)
class Treatment:
    """What happens to a contact: keep queuing, overflow, voicemail, callback, disconnect."""

    kind: TreatmentKind
    target_queue: str | None = None
    message: str | None = None
    #: The flow a FLOW treatment sends the contact to (the edge runs it, the engine is done).
    target_flow: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is TreatmentKind.OVERFLOW) != (self.target_queue is not None):
            raise InvalidConfig("treatment", "target_queue is required by, and only by, overflow")
        if (self.kind is TreatmentKind.FLOW) != bool(self.target_flow):
            raise InvalidConfig("treatment", "target_flow is required by, and only by, flow")


KEEP_QUEUING = Treatment(TreatmentKind.QUEUE)


@dataclass(frozen=True, slots=True)
class Relaxation:
    """After ``after`` seconds in the queue, the contact needs only ``required_skills``
    (which must be weaker than the stage before); optionally its own extra skills drop."""

    after: float
    required_skills: tuple[SkillRequirement, ...] = ()
    drop_contact_skills: bool = False

    def __post_init__(self) -> None:
        if self.after <= 0:
            raise InvalidConfig("relaxation", "after must be > 0 seconds")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    queue_id: str
    required_skills: tuple[SkillRequirement, ...] = ()
    strategy: Strategy = Strategy.LONGEST_IDLE
    ring_timeout: float = 20.0
    #: Wrap-up after each contact; 0 = none, None = until the agent says done.
    wrap_up_seconds: float | None = 0.0
    service_level_seconds: float = 20.0
    #: Ageing: one priority level is worth this many seconds of waiting.
    priority_step_seconds: float = 60.0
    relaxations: tuple[Relaxation, ...] = ()
    capacity: int | None = None
    on_full: Treatment = Treatment(TreatmentKind.DISCONNECT, message="queue full")
    max_wait: float | None = None
    on_max_wait: Treatment = Treatment(TreatmentKind.VOICEMAIL)
    #: Applied on entry when no member agent is signed in; None keeps the contact queued.
    on_no_agents: Treatment | None = None
    rona_not_ready: bool = True
    reject_not_ready: bool = True
    ring_all_limit: int = 20
    #: How long a contact waits for its preferred agent before any agent may take it.
    preferred_agent_wait: float = 0.0
    #: Repeat AnnounceWait for each waiting contact this often (None: on entry only).
    announce_interval: float | None = None
    #: Handle time assumed by the wait estimate until real contacts have been measured.
    default_handle_seconds: float = 180.0
    #: Among the queues an agent serves, contacts of a higher-priority queue are offered
    #: first, strictly (ageing applies within one priority); 0 is the lowest.
    priority: int = 0

    def __post_init__(self) -> None:
        what = f"queue {self.queue_id!r}"
        if not self.queue_id:
            raise InvalidConfig("queue", "queue_id must not be empty")
        if self.ring_timeout <= 0:
            raise InvalidConfig(what, "ring_timeout must be > 0")
        if self.wrap_up_seconds is not None and self.wrap_up_seconds < 0:
            raise InvalidConfig(what, "wrap_up_seconds must be >= 0 or None")
        if self.service_level_seconds <= 0 or self.priority_step_seconds <= 0:
            raise InvalidConfig(what, "service_level_seconds and priority_step_seconds > 0")
        if self.capacity is not None and self.capacity < 0:
            raise InvalidConfig(what, "capacity must be >= 0")
        if self.max_wait is not None and self.max_wait <= 0:
            raise InvalidConfig(what, "max_wait must be > 0")
        if self.ring_all_limit < 1:
            raise InvalidConfig(what, "ring_all_limit must be >= 1")
        if self.preferred_agent_wait < 0:
            raise InvalidConfig(what, "preferred_agent_wait must be >= 0")
        if self.announce_interval is not None and self.announce_interval <= 0:
            raise InvalidConfig(what, "announce_interval must be > 0")
        if self.default_handle_seconds <= 0:
            raise InvalidConfig(what, "default_handle_seconds must be > 0")
        if not 0 <= self.priority <= MAX_QUEUE_PRIORITY:
            raise InvalidConfig(what, f"priority must be 0..{MAX_QUEUE_PRIORITY}")
        for t in (self.on_full, self.on_max_wait, self.on_no_agents):
            if t is not None and t.target_queue == self.queue_id:
                raise InvalidConfig(what, "a queue cannot overflow into itself")
        previous = normalise(self.required_skills)
        last_after = 0.0
        for r in self.relaxations:
            if r.after <= last_after:
                raise InvalidConfig(what, "relaxations must come in increasing 'after' order")
            wider = normalise(r.required_skills)
            if not is_weaker(wider, previous):
                raise InvalidConfig(what, f"relaxation at {r.after}s narrows the requirement")
            previous, last_after = wider, r.after

    def treatments(self) -> tuple[Treatment, ...]:
        return tuple(t for t in (self.on_full, self.on_max_wait, self.on_no_agents) if t)


DEFAULT_CAPACITY: Mapping[Channel, int] = {
    Channel.VOICE: 1,
    Channel.VIDEO: 1,
    Channel.CHAT: 3,
    Channel.MESSAGE: 5,
    Channel.EMAIL: 1,
}


@dataclass(frozen=True, slots=True)
class AgentConfig:
    agent_id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    capacity: Mapping[Channel, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    #: Cap on contacts of all channels together (None: the sum of the capacities).
    max_contacts: int | None = None
    #: While on a call no text contact is offered (unless False).
    calls_block_other: bool = True
    #: While holding text contacts no call is offered (unless False).
    other_blocks_calls: bool = True
    #: Overrides the queue's wrap-up time when set.
    wrap_up_seconds: float | None = None

    def __post_init__(self) -> None:
        what = f"agent {self.agent_id!r}"
        if not self.agent_id:
            raise InvalidConfig("agent", "agent_id must not be empty")
        for skill, level in self.skills.items():
            if not skill or not MIN_LEVEL <= level <= MAX_LEVEL:
                raise InvalidConfig(what, f"skill {skill!r} level {level} outside 1..10")
        for channel, n in self.capacity.items():
            if not isinstance(channel, Channel) or n < 0:
                raise InvalidConfig(what, f"capacity {channel!r}={n}")
            if channel.is_call and n > 1:
                raise InvalidConfig(what, f"{channel} capacity is at most 1")
        if self.max_contacts is not None and self.max_contacts < 0:
            raise InvalidConfig(what, "max_contacts must be >= 0")
        if self.wrap_up_seconds is not None and self.wrap_up_seconds < 0:
            raise InvalidConfig(what, "wrap_up_seconds must be >= 0")
