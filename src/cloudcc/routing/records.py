"""The engine's mutable records: agents, queues, lanes of waiting contacts, work items.

Plain ``__slots__`` classes, private to the routing package: ``RoutingEngine`` owns and
mutates them; nothing outside the engine should hold one (queries return frozen views).
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, SupportsIndex, TypeAlias

from cloudcc.routing.model import (
    AgentConfig,
    AgentState,
    Channel,
    ContactState,
    Presence,
    QueueConfig,
    Requirement,
    WorkPhase,
    normalise,
)
from cloudcc.routing.positions import AnswerPace, RankedKeys
from cloudcc.routing.stats import QueueCounters
from cloudcc.routing.strategies import STRATEGY_KEYS, StrategyKey

_READY = Presence.READY
_OFFLINE = Presence.OFFLINE
_WAITING = ContactState.WAITING
_CALLS = frozenset({Channel.VOICE, Channel.VIDEO})

#: State changes kept per agent for ``agent_history`` (the full record is the decisions).
HISTORY_LENGTH = 16

# Agent states by index (the order of AgentState), so counters are plain lists.
STATES: tuple[AgentState, ...] = tuple(AgentState)
(
    I_OFFLINE,
    I_READY,
    I_PRE,
    I_RESERVED,
    I_ALERTING,
    I_BUSY,
    I_WORKING,
    I_NOT_READY,
    I_WRAP,
) = (
    STATES.index(s)
    for s in (
        AgentState.OFFLINE,
        AgentState.READY,
        AgentState.PRE_OCCUPIED,
        AgentState.RESERVED,
        AgentState.ALERTING,
        AgentState.BUSY,
        AgentState.WORKING,
        AgentState.NOT_READY,
        AgentState.WRAP_UP,
    )
)


#: Set by ``routing.snapshot`` while it writes (numbers each record it meets) and while it
#: reads (collects the records by number).
SNAPSHOT_NUMBER: ContextVar[Callable[[object], int] | None] = ContextVar(
    "routing_snapshot_number", default=None
)
SNAPSHOT_SHELLS: ContextVar[dict[int, object] | None] = ContextVar(
    "routing_snapshot_shells", default=None
)


def _shell(cls: type[_Record], number: int) -> object:
    """An empty record; ``routing.snapshot`` fills its fields afterwards."""
    obj: object = cls.__new__(cls)  # (a compiled record's fields start as None / 0)
    shells = SNAPSHOT_SHELLS.get()
    if shells is not None:
        shells[number] = obj
    return obj


class _Record:
    """Records pickle as numbered empty shells; their fields are written one record at a
    time by ``routing.snapshot``, so pickling never recurses from record to record."""

    __slots__ = ()

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        number = SNAPSHOT_NUMBER.get()
        if number is None:
            raise TypeError(f"{type(self).__name__} is pickled by cloudcc.routing.snapshot only")
        return (_shell, (type(self), number(self)))


#: What a free agent reads to find the oldest head among its lanes of one channel (as
#: Python; the compiled engine reads the lanes' heads).
Scan: TypeAlias = "tuple[Channel, list[Lane], Callable[[array[float]], tuple[float, ...]]]"

#: ``Lane.head`` of a lane without waiting contacts: after every real entry (vkey, order, c).
NO_HEAD: tuple[float, float, None] = (float("inf"), float("inf"), None)


class Lane(_Record):
    """Contacts of one queue, stage, extra-skill set and channel, with their free agents.

    Waiting contacts are in ``fifo`` when they come in place order (nearly always: arrivals
    of equal priority) and as (place, order, contact) entries in the heap ``contacts``
    otherwise (a higher priority, a declined offer back at its place). Removal is lazy, but
    ``head`` is always the smallest live entry (or ``NO_HEAD``), and its place is mirrored
    in ``place`` (a C double in the compiled build: a free agent's scan reads it there, not
    through the head tuple) and in the engine's array ``places`` at ``ix`` (the Python
    build's scan reads the places of all its lanes from there in one call).

    Free agents are parked the same way: (key, ..., agent) entries in ``agent_fifo`` when
    they come in key order (agents freed one after another under a longest-idle key) and
    in the heap ``agents`` otherwise; the best is the smaller of the two heads."""

    __slots__ = (
        "agent_fifo",
        "agents",
        "channel",
        "contacts",
        "eligible",
        "fifo",
        "head",
        "ix",
        "key_fn",
        "place",
        "places",
        "pool",
        "queue",
        "queue_id",
        "requirement",
        "stage",
        "waiting",
    )

    def __init__(
        self,
        queue: QueueRecord | None,
        requirement: Requirement,
        channel: Channel | None,
        key_fn: StrategyKey | None,
        places: array[float],
        ix: int,
        stage: int = 0,
    ) -> None:
        self.queue = queue
        self.stage = stage
        self.queue_id = queue.queue_id if queue is not None else ""
        self.requirement = requirement
        self.channel = channel
        self.key_fn = key_fn
        self.fifo: deque[QueuedContact] = deque()
        self.contacts: list[tuple[float, int, QueuedContact]] = []
        self.head: tuple[float, float, QueuedContact | None] = NO_HEAD
        self.place = NO_HEAD[0]
        self.places = places
        self.ix = ix
        places[ix] = NO_HEAD[0]
        self.waiting = 0  # valid entries in ``contacts``
        self.agents: list[tuple[float, float, int, int, AgentRecord]] = []
        self.agent_fifo: deque[tuple[float, float, int, int, AgentRecord]] = deque()
        self.eligible = 0  # agents whose skills meet ``requirement``
        # The lane whose parked free agents this one takes (itself, or its queue's base lane
        # for a lane of extra skills: ``RoutingEngine._index_lane``).
        self.pool: Lane = self


class QueuedContact(_Record):
    __slots__ = (
        "agent",
        "announce_seq",
        "arrived_at",
        "callback",
        "channel",
        "connected_at",
        "contact_id",
        "entered_at",
        "extra",
        "hops",
        "in_queue",
        "lane",
        "max_wait_due",
        "offer_expires",
        "offered_to",
        "order",
        "preferred",
        "preferred_seq",
        "preferred_until",
        "priority",
        "queue",
        "ring_all",
        "ring_seq",
        "rkey",
        "stage",
        "stage_seq",
        "state",
        "vkey",
        "wait_seq",
    )

    def __init__(
        self,
        contact_id: str,
        channel: Channel,
        priority: int,
        extra: Requirement,
        preferred: str | None,
        now: float,
        order: int,
    ) -> None:
        self.contact_id = contact_id
        self.channel = channel
        self.priority = priority
        self.extra = extra
        self.preferred = preferred
        self.preferred_until = 0.0
        self.arrived_at = now
        self.entered_at = now
        self.order = order
        self.vkey = now
        # Its key in its queue's positions, (vkey, order): the same tuple object there, so
        # leaving finds it by identity.
        self.rkey: tuple[float, int] = (now, order)
        self.state = _WAITING
        self.queue: QueueRecord | None = None
        self.in_queue = False
        self.lane: Lane | None = None
        self.stage = 0
        self.callback = False
        self.hops = 0
        self.offered_to: Sequence[AgentRecord] = ()  # ringing agents (a list while any)
        self.offer_expires = 0.0
        self.ring_all = False
        self.agent: AgentRecord | None = None
        self.connected_at = 0.0
        self.max_wait_due = False
        self.ring_seq = self.stage_seq = self.wait_seq = -1
        self.preferred_seq = self.announce_seq = -1


class WorkItem(_Record):
    """One contact held by an agent."""

    __slots__ = (
        "agent",
        "channel",
        "contact",
        "contact_id",
        "phase",
        "queue",
        "since",
        "wrap_seq",
    )

    def __init__(
        self,
        agent: AgentRecord,
        contact_id: str,
        channel: Channel,
        phase: WorkPhase,
        queue: QueueRecord | None,
        contact: QueuedContact | None,
        since: float,
    ) -> None:
        self.agent = agent
        self.contact_id = contact_id
        self.channel = channel
        self.phase = phase
        self.queue = queue
        self.contact = contact
        self.since = since
        self.wrap_seq = -1


_NO_TIME = (0.0,) * len(STATES)


class AgentRecord(_Record):
    __slots__ = (
        "agent_id",
        "answered",
        "available_since",
        "by",
        "call_items",
        "capacity",
        "cfg",
        "counted",
        "handled",
        "history",
        "items",
        "lanes",
        "load",
        "max_total",
        "n_active",
        "n_alerting",
        "n_offered",
        "n_pre",
        "n_wrap",
        "nr_auto",
        "nr_seq",
        "offered",
        "personal",
        "presence",
        "queue_slots",
        "queues",
        "rank",
        "reason",
        "rejected",
        "ring_timeouts",
        "rr",
        "scan",
        "shown_reason",
        "si",
        "single",
        "skills",
        "state",
        "state_since",
        "time_in",
        "total",
        "uncounted",
        "version",
    )

    def __init__(self, cfg: AgentConfig, rank: int, now: float) -> None:
        self.agent_id = cfg.agent_id
        self.rank = rank
        self.presence = _OFFLINE
        self.reason: str | None = None
        self.by: str | None = None
        self.state = AgentState.OFFLINE
        self.shown_reason: str | None = None
        self.state_since = now
        self.si = I_OFFLINE
        self.counted = I_OFFLINE  # the state its queues' per-state counts include
        self.uncounted = False  # listed in the engine's agents whose counts are behind
        # Seconds spent in each state (before the current one). Compiled: C doubles inline in
        # the record, not a list of floats: a state change writes here, and three objects
        # to fetch from memory cost more than the rest of the change.
        self.time_in: list[float] = list(_NO_TIME)
        # (time, index in STATES, reason) of the last changes, flattened: 3 items a change
        # (the engine keeps HISTORY_LENGTH to twice as many)
        self.history: list[float | int | str | None] = []
        self.items: dict[str, WorkItem] = {}
        self.load: dict[Channel, int] = {}
        self.total = self.call_items = 0
        self.n_pre = self.n_offered = self.n_alerting = self.n_active = self.n_wrap = 0
        self.version = 0
        self.available_since = now
        self.lanes: dict[Channel, list[Lane]] = {}
        # (channel, its lanes, a getter of those lanes' ``Lane.ix`` places) per channel with
        # lanes; None: to rebuild.
        self.scan: list[Scan] | None = None
        self.queues: list[QueueRecord] = []
        self.queue_slots: list[int] = []  # those queues' ``QueueRecord.slot``
        self.personal: dict[Channel, Lane] | None = None  # preferred-agent lanes
        self.rr: dict[str, int] = {}
        self.nr_seq = -1
        self.nr_auto = False
        self.offered = self.answered = self.ring_timeouts = self.rejected = self.handled = 0
        self.apply(cfg)

    def apply(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.skills: dict[str, int] = dict(cfg.skills)
        self.capacity: dict[Channel, int] = dict(cfg.capacity)
        total = sum(self.capacity.values())
        self.max_total = total if cfg.max_contacts is None else min(total, cfg.max_contacts)
        # One channel and no lower overall cap: a free slot is always for that channel,
        # so ``can_take`` reduces to ready, not pre-occupied and ``total < max_total``.
        self.single = len(self.capacity) == 1 and total == self.max_total

    def can_take(self, channel: Channel) -> bool:
        """Free capacity for a new ``channel`` contact, presence and mixing rules allowing."""
        if self.presence is not _READY or self.n_pre:
            return False
        if self.load.get(channel, 0) >= self.capacity.get(channel, 0):
            return False
        if self.total >= self.max_total:
            return False
        if channel in _CALLS:
            return not (self.total > self.call_items and self.cfg.other_blocks_calls)
        return not (self.call_items and self.cfg.calls_block_other)

    def meets(self, requirement: Requirement) -> bool:
        skills = self.skills
        for skill, level in requirement:  # noqa: SIM110 (a loop beats all() + genexpr)
            if skills.get(skill, 0) < level:
                return False
        return True


class QueueRecord(_Record):
    __slots__ = (
        "callbacks_waiting",
        "cfg",
        "counters",
        "entries",
        "key_fn",
        "lanes",
        "members",
        "members_in",
        "pace",
        "queue_id",
        "ranked",
        "rr_counter",
        "slot",
        "stages",
        "timed",
        "waiting",
    )

    def __init__(self, cfg: QueueConfig, members_in: list[list[int]], slot: int) -> None:
        self.queue_id = cfg.queue_id
        self.lanes: dict[tuple[int, Requirement, Channel], Lane] = {}
        self.members: dict[str, AgentRecord] = {}
        # the engine's per-state member counts; this queue's are at ``slot``
        self.members_in = members_in
        self.slot = slot
        self.waiting = 0
        self.callbacks_waiting = 0
        self.ranked = RankedKeys()
        self.entries: deque[tuple[float, int, QueuedContact]] = deque()
        self.counters = QueueCounters()
        self.pace = AnswerPace()
        self.rr_counter = 0
        self.apply(cfg)

    def apply(self, cfg: QueueConfig) -> None:
        self.cfg = cfg
        self.key_fn = STRATEGY_KEYS[cfg.strategy]
        # (seconds after entry, requirement, drop the contact's own skills)
        self.stages: list[tuple[float, Requirement, bool]] = [
            (0.0, normalise(cfg.required_skills), False)
        ]
        for r in cfg.relaxations:
            self.stages.append((r.after, normalise(r.required_skills), r.drop_contact_skills))
        # Whether a contact entering this queue may need a timer (``_schedule_contact``).
        # (A contact's preferred-agent wait is checked apart: it depends on the contact.)
        self.timed = (
            len(self.stages) > 1 or cfg.max_wait is not None or cfg.announce_interval is not None
        )

    @property
    def base(self) -> Requirement:
        return self.stages[0][1]

    def staffed(self) -> int:
        return len(self.members) - self.members_in[I_OFFLINE][self.slot]
