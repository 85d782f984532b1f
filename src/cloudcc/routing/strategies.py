"""Agent selection strategies, as sort keys: the free agent with the smallest key is offered.

Each lane (queue x relaxation stage x contact skills x channel) keeps its free agents in a
heap ordered by its queue's key, so picking an agent is a heap pop, not a scan.
Ties are broken by the agent's rank (order of configuration), which keeps runs repeatable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from cloudcc.routing.model import Requirement, Strategy


class Candidate(Protocol):
    """What a strategy may look at on an agent."""

    @property
    def available_since(self) -> float: ...
    @property
    def total(self) -> int: ...
    @property
    def skills(self) -> Mapping[str, int]: ...
    @property
    def rr(self) -> Mapping[str, int]: ...


StrategyKey = Callable[[Candidate, Requirement, str], tuple[float, float]]


def longest_idle(agent: Candidate, requirement: Requirement, queue_id: str) -> tuple[float, float]:
    """The agent free for the longest time first."""
    return (agent.available_since, 0.0)


def most_skilled(agent: Candidate, requirement: Requirement, queue_id: str) -> tuple[float, float]:
    """Highest sum of levels in the required skills first, then longest idle."""
    skills = agent.skills
    total = 0
    for s, _ in requirement:  # (a loop, not sum(): a generator is slow when compiled)
        total += skills.get(s, 0)
    return (-float(total), agent.available_since)


def least_occupied(
    agent: Candidate, requirement: Requirement, queue_id: str
) -> tuple[float, float]:
    """Fewest contacts held (across channels) first, then longest idle."""
    return (float(agent.total), agent.available_since)


def round_robin(agent: Candidate, requirement: Requirement, queue_id: str) -> tuple[float, float]:
    """The agent this queue offered to least recently first (never offered: by rank)."""
    return (float(agent.rr.get(queue_id, 0)), 0.0)


#: Keys that depend on the agent alone (not on the lane's requirement or queue): a parked
#: agent's heap entry is built once and shared by all its lanes with such a key.
AGENT_ONLY_KEYS: frozenset[StrategyKey] = frozenset({longest_idle, least_occupied})

#: Keys that do not depend on the lane's requirement (only on the agent and the queue): the
#: lanes of one queue may share parked agents under them (not under ``most_skilled``).
LANE_FREE_KEYS: frozenset[StrategyKey] = AGENT_ONLY_KEYS | {round_robin}

STRATEGY_KEYS: Mapping[Strategy, StrategyKey] = {
    Strategy.LONGEST_IDLE: longest_idle,
    Strategy.MOST_SKILLED: most_skilled,
    Strategy.LEAST_OCCUPIED: least_occupied,
    Strategy.ROUND_ROBIN: round_robin,
    # Ring-all rings every free member; the key only orders who is rung first when
    # more are free than ring_all_limit.
    Strategy.RING_ALL: longest_idle,
}
