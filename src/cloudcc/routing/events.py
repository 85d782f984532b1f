"""Input events fed to the routing engine and the decisions it returns, as dataclasses.

Every input carries ``now`` (seconds, any monotonic epoch): the engine never reads a clock.
``RoutingEngine.handle(event)`` applies any input event, so a standby node rebuilds an
engine by replaying the recorded inputs (``RoutingEngine.replay``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudcc.routing.model import (
    AgentConfig,
    AgentState,
    Channel,
    ForceAction,
    Presence,
    QueueConfig,
    ReasonCode,
    SignOutReason,
    SkillRequirement,
    TreatmentKind,
    WithdrawReason,
)

# ---------------------------------------------------------------- inputs: configuration


@dataclass(frozen=True, slots=True)
class ReasonCodeConfigured:
    reason: ReasonCode
    now: float


@dataclass(frozen=True, slots=True)
class QueueConfigured:
    config: QueueConfig
    now: float


@dataclass(frozen=True, slots=True)
class QueueRemoved:
    queue_id: str
    now: float


@dataclass(frozen=True, slots=True)
class AgentConfigured:
    config: AgentConfig
    now: float


@dataclass(frozen=True, slots=True)
class AgentRemoved:
    agent_id: str
    now: float


# ---------------------------------------------------------------- inputs: agents


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    agent_id: str
    now: float
    presence: Presence = Presence.READY
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    agent_id: str
    now: float
    reason: SignOutReason = SignOutReason.SELF
    by: str | None = None


@dataclass(frozen=True, slots=True)
class AgentPresenceChanged:
    agent_id: str
    presence: Presence
    now: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AgentForced:
    """A supervisor forces an agent busy, idle, to rest (optionally for ``seconds``) or out."""

    agent_id: str
    action: ForceAction
    by: str
    now: float
    seconds: float | None = None


# ---------------------------------------------------------------- inputs: contacts


@dataclass(frozen=True, slots=True)
class ContactQueued:
    contact_id: str
    queue_id: str
    channel: Channel
    now: float
    priority: int = 0
    required_skills: tuple[SkillRequirement, ...] = ()
    preferred_agent: str | None = None


@dataclass(frozen=True, slots=True)
class ContactAbandoned:
    contact_id: str
    now: float


@dataclass(frozen=True, slots=True)
class CallbackRequested:
    contact_id: str
    now: float


@dataclass(frozen=True, slots=True)
class OfferAccepted:
    contact_id: str
    agent_id: str
    now: float


@dataclass(frozen=True, slots=True)
class OfferAlerting:
    """The agent's phone or client started ringing (the reservation becomes alerting)."""

    contact_id: str
    agent_id: str
    now: float


@dataclass(frozen=True, slots=True)
class OfferRejected:
    contact_id: str
    agent_id: str
    now: float


@dataclass(frozen=True, slots=True)
class OfferTimedOut:
    contact_id: str
    agent_id: str
    now: float


@dataclass(frozen=True, slots=True)
class ContactEnded:
    contact_id: str
    now: float


@dataclass(frozen=True, slots=True)
class WrapUpDone:
    agent_id: str
    contact_id: str
    now: float


@dataclass(frozen=True, slots=True)
class DirectContactStarted:
    """A contact that did not come from a queue (direct or internal call) reached the agent."""

    agent_id: str
    contact_id: str
    channel: Channel
    now: float


@dataclass(frozen=True, slots=True)
class OutboundReserved:
    """The dialer pre-occupies the agent for an outbound dial (CTI state 2)."""

    agent_id: str
    contact_id: str
    now: float
    channel: Channel = Channel.VOICE


@dataclass(frozen=True, slots=True)
class OutboundConnected:
    contact_id: str
    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


InputEvent = (
    ReasonCodeConfigured
    | QueueConfigured
    | QueueRemoved
    | AgentConfigured
    | AgentRemoved
    | AgentLoggedIn
    | AgentLoggedOut
    | AgentPresenceChanged
    | AgentForced
    | ContactQueued
    | ContactAbandoned
    | CallbackRequested
    | OfferAccepted
    | OfferAlerting
    | OfferRejected
    | OfferTimedOut
    | ContactEnded
    | WrapUpDone
    | DirectContactStarted
    | OutboundReserved
    | OutboundConnected
    | Tick
)

# ---------------------------------------------------------------- outputs: decisions
# Decisions are values: treat them as immutable. They are not frozen because frozen
# dataclasses cost four times as much to build, and the engine builds one per change.


@dataclass(slots=True)
class Offer:
    """Ring ``agent_ids`` (several only for ring-all) with the contact until ``expires_at``."""

    contact_id: str
    queue_id: str
    channel: Channel
    agent_ids: tuple[str, ...]
    ring_timeout: float
    expires_at: float
    callback: bool = False


@dataclass(slots=True)
class OfferWithdrawn:
    contact_id: str
    agent_id: str
    reason: WithdrawReason


@dataclass(slots=True)
class Overflow:
    contact_id: str
    from_queue: str
    to_queue: str


@dataclass(slots=True)
class QueueAction:
    """Voicemail, callback, an IVR flow or disconnect-with-message for a queued contact."""

    contact_id: str
    queue_id: str
    kind: TreatmentKind
    message: str | None = None
    target_flow: str | None = None  # FLOW: the flow to run


@dataclass(slots=True)
class AnnounceWait:
    contact_id: str
    queue_id: str
    position: int
    estimated_wait: float


@dataclass(slots=True)
class AgentStateChanged:
    agent_id: str
    state: AgentState
    previous: AgentState
    reason: str | None
    at: float
    cti_code: int
    by: str | None = None


@dataclass(slots=True)
class NotReadyOverrun:
    """A time-limited not-ready reason (e.g. rest) ran out and the agent did not return."""

    agent_id: str
    reason: str
    since: float
    at: float


@dataclass(slots=True)
class ContactReleased:
    """The engine stopped tracking a contact held by an agent signed out by force."""

    contact_id: str
    agent_id: str


Decision = (
    Offer
    | OfferWithdrawn
    | Overflow
    | QueueAction
    | AnnounceWait
    | AgentStateChanged
    | NotReadyOverrun
    | ContactReleased
)
