"""Small builders shared by the routing tests (real engines, no doubles)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from cloudcc.routing import (
    AgentConfig,
    AgentState,
    AgentStateChanged,
    Channel,
    Decision,
    Offer,
    QueueConfig,
    RoutingEngine,
)

T = TypeVar("T")

VOICE = Channel.VOICE
CHAT = Channel.CHAT


def engine_with(
    queues: Sequence[QueueConfig] = (QueueConfig("q"),),
    agents: Mapping[str, Mapping[str, int]] | Iterable[AgentConfig] = (),
    login: bool = True,
    now: float = 0.0,
) -> RoutingEngine:
    """An engine with the queues and agents configured (and signed in, ready)."""
    e = RoutingEngine("tenant-1")
    for q in queues:
        e.configure_queue(q, now)
    configs = (
        [AgentConfig(aid, skills=dict(skills)) for aid, skills in agents.items()]
        if isinstance(agents, Mapping)
        else list(agents)
    )
    for ac in configs:
        e.configure_agent(ac, now)
        if login:
            e.agent_login(ac.agent_id, now)
    return e


def only(decisions: Iterable[Decision], kind: type[T]) -> list[T]:
    return [d for d in decisions if isinstance(d, kind)]


def offers(decisions: Iterable[Decision]) -> list[tuple[str, tuple[str, ...]]]:
    """(contact, agents) of each Offer, in order."""
    return [(o.contact_id, o.agent_ids) for o in only(decisions, Offer)]


def states(decisions: Iterable[Decision]) -> list[tuple[str, AgentState, str | None]]:
    return [(d.agent_id, d.state, d.reason) for d in only(decisions, AgentStateChanged)]
