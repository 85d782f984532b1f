"""Contact routing (the ACD): a sans-I/O engine fed events, returning decisions.

Start with ``RoutingEngine`` (engine.py) and docs/routing.md.
"""

from cloudcc.routing.build import BUILD  # first: picks the compiled or the source build
from cloudcc.routing.engine import ContactInfo, RoutingEngine
from cloudcc.routing.events import (
    AgentStateChanged,
    AnnounceWait,
    ContactReleased,
    Decision,
    InputEvent,
    NotReadyOverrun,
    Offer,
    OfferWithdrawn,
    Overflow,
    QueueAction,
)
from cloudcc.routing.exceptions import RoutingError
from cloudcc.routing.model import (
    AgentConfig,
    AgentState,
    Channel,
    ForceAction,
    Presence,
    QueueConfig,
    ReasonCode,
    Relaxation,
    SignOutReason,
    SkillRequirement,
    Strategy,
    Treatment,
    TreatmentKind,
)
from cloudcc.routing.stats import AgentStats, QueueStats, Wallboard

__all__ = [
    "BUILD",
    "AgentConfig",
    "AgentState",
    "AgentStateChanged",
    "AgentStats",
    "AnnounceWait",
    "Channel",
    "ContactInfo",
    "ContactReleased",
    "Decision",
    "ForceAction",
    "InputEvent",
    "NotReadyOverrun",
    "Offer",
    "OfferWithdrawn",
    "Overflow",
    "Presence",
    "QueueAction",
    "QueueConfig",
    "QueueStats",
    "ReasonCode",
    "Relaxation",
    "RoutingEngine",
    "RoutingError",
    "SignOutReason",
    "SkillRequirement",
    "Strategy",
    "Treatment",
    "TreatmentKind",
    "Wallboard",
]
