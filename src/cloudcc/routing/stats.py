"""Real-time statistics of queues and agents, kept as counters updated on each event.

Definitions (docs/routing.md, "Statistics"): service level = answered within the queue's
threshold / (answered + abandoned); ASA = mean wait of answered contacts; abandon rate =
abandoned / (answered + abandoned). Waits are measured from entry into *this* queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cloudcc.routing.model import AgentState, Channel, Presence, TreatmentKind


class QueueCounters:
    """Cumulative counters of one queue since the engine (or ``reset``) started."""

    __slots__ = (
        "abandoned",
        "answer_wait_total",
        "answered",
        "answered_in_sl",
        "callbacks",
        "entered",
        "handle_total",
        "handled",
        "offers",
        "overflowed",
        "rejects",
        "ring_timeouts",
        "treated",
    )

    def __init__(self) -> None:
        self.entered = 0
        self.answered = 0
        self.answered_in_sl = 0
        self.abandoned = 0
        self.overflowed = 0
        self.treated: dict[TreatmentKind, int] = {}
        self.callbacks = 0
        self.answer_wait_total = 0.0
        self.offers = 0
        self.ring_timeouts = 0
        self.rejects = 0
        self.handled = 0
        self.handle_total = 0.0


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue_id: str
    waiting: int  # in the queue, not yet connected (ringing and callbacks included)
    callbacks_waiting: int
    longest_wait: float
    agents_by_state: Mapping[AgentState, int]  # member agents (skills meet the queue)
    staffed: int  # member agents signed in
    entered: int
    answered: int
    answered_in_sl: int
    abandoned: int
    overflowed: int
    treated: Mapping[TreatmentKind, int]
    callbacks: int
    offers: int
    ring_timeouts: int
    rejects: int
    service_level: float | None  # None until a contact was answered or abandoned
    average_speed_of_answer: float | None
    abandon_rate: float | None
    average_handle_time: float | None


def queue_stats(
    queue_id: str,
    c: QueueCounters,
    *,
    waiting: int,
    callbacks_waiting: int,
    longest_wait: float,
    agents_by_state: Mapping[AgentState, int],
) -> QueueStats:
    """Freeze a queue's counters into the figures a wallboard shows."""
    finished = c.answered + c.abandoned
    return QueueStats(
        queue_id=queue_id,
        waiting=waiting,
        callbacks_waiting=callbacks_waiting,
        longest_wait=longest_wait,
        agents_by_state=dict(agents_by_state),
        staffed=sum(n for s, n in agents_by_state.items() if s is not AgentState.OFFLINE),
        entered=c.entered,
        answered=c.answered,
        answered_in_sl=c.answered_in_sl,
        abandoned=c.abandoned,
        overflowed=c.overflowed,
        treated=dict(c.treated),
        callbacks=c.callbacks,
        offers=c.offers,
        ring_timeouts=c.ring_timeouts,
        rejects=c.rejects,
        service_level=c.answered_in_sl / finished if finished else None,
        average_speed_of_answer=c.answer_wait_total / c.answered if c.answered else None,
        abandon_rate=c.abandoned / finished if finished else None,
        average_handle_time=c.handle_total / c.handled if c.handled else None,
    )


@dataclass(frozen=True, slots=True)
class AgentStats:
    agent_id: str
    state: AgentState
    presence: Presence
    reason: str | None
    state_since: float
    cti_code: int
    load: Mapping[Channel, int]
    offered: int
    answered: int
    ring_timeouts: int
    rejected: int
    handled: int
    time_in_state: Mapping[AgentState, float]  # including the current state up to now


@dataclass(frozen=True, slots=True)
class Wallboard:
    at: float
    queues: Mapping[str, QueueStats]
    agents_by_state: Mapping[AgentState, int]
    contacts_waiting: int
