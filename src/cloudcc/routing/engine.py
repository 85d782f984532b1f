"""The ACD: a sans-I/O routing engine, one per tenant, fed events and returning decisions.

No clock, no timers, no I/O: every event carries ``now``; ``next_deadline()`` tells the edge
when to call ``tick``. Index layout (docs/routing.md, "How it is fast"): contacts wait in
*lanes* (queue x relaxation stage x extra skills x channel), each a heap ordered by
ageing priority; each agent knows the lanes whose requirement it meets; free agents are
parked in per-lane heaps ordered by the queue's strategy. A free agent looks at the heads
of its lanes; a new contact pops the best parked agent of its lane. Nothing scans.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import cast

from cloudcc.routing import snapshot as _snapshot
from cloudcc.routing.events import (
    AgentConfigured,
    AgentForced,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPresenceChanged,
    AgentRemoved,
    AgentStateChanged,
    AnnounceWait,
    CallbackRequested,
    ContactAbandoned,
    ContactEnded,
    ContactQueued,
    ContactReleased,
    Decision,
    DirectContactStarted,
    InputEvent,
    NotReadyOverrun,
    Offer,
    OfferAccepted,
    OfferAlerting,
    OfferRejected,
    OfferTimedOut,
    OfferWithdrawn,
    OutboundConnected,
    OutboundReserved,
    Overflow,
    QueueAction,
    QueueConfigured,
    QueueRemoved,
    ReasonCodeConfigured,
    Tick,
    WrapUpDone,
)
from cloudcc.routing.exceptions import (
    AgentAtCapacity,
    AgentHasWork,
    ClockWentBackwards,
    DuplicateContact,
    IllegalTransition,
    InvalidConfig,
    NotOffered,
    NotQueued,
    QueueInUse,
    RoutingError,
    UnknownAgent,
    UnknownContact,
    UnknownQueue,
    UnknownReasonCode,
)
from cloudcc.routing.model import (
    BUILTIN_REASONS,
    PRESENCE_TRANSITIONS,
    QUEUE_PRIORITY_SECONDS,
    REASON_BUSY,
    REASON_FORCED,
    REASON_REJECTED,
    REASON_REST,
    REASON_RONA,
    WORK_START,
    WORK_TRANSITIONS,
    AgentConfig,
    AgentState,
    Channel,
    ContactState,
    ForceAction,
    Outcome,
    Presence,
    QueueConfig,
    ReasonCode,
    Requirement,
    SignOutReason,
    SkillRequirement,
    Strategy,
    Treatment,
    TreatmentKind,
    WithdrawReason,
    WorkPhase,
    cti_code,
    normalise,
)
from cloudcc.routing.positions import RankedKeys
from cloudcc.routing.records import (
    HISTORY_LENGTH,
    I_ALERTING,
    I_BUSY,
    I_NOT_READY,
    I_OFFLINE,
    I_PRE,
    I_READY,
    I_RESERVED,
    I_WORKING,
    I_WRAP,
    NO_HEAD,
    STATES,
    AgentRecord,
    Lane,
    QueuedContact,
    QueueRecord,
    WorkItem,
)
from cloudcc.routing.stats import AgentStats, QueueStats, Wallboard, queue_stats
from cloudcc.routing.strategies import AGENT_ONLY_KEYS, LANE_FREE_KEYS, StrategyKey
from cloudcc.routing.timers import TimerQueue

try:
    import cython

    #: True in the compiled build (a compile-time constant there), False as source.
    COMPILED = cython.compiled
except ImportError:  # the source runs without Cython installed
    COMPILED = False

_READY = Presence.READY
_OFFLINE = Presence.OFFLINE
_WAITING = ContactState.WAITING
_OFFERED = ContactState.OFFERED
_CONNECTED = ContactState.CONNECTED
_CALLS = frozenset({Channel.VOICE, Channel.VIDEO})

# timer kinds
_T_RING, _T_WRAP, _T_STAGE, _T_MAXWAIT, _T_PREFERRED, _T_ANNOUNCE, _T_NOTREADY = range(7)
_BUILTIN_REASON_CODES = frozenset(r.code for r in BUILTIN_REASONS)

_FORCED: Mapping[ForceAction, tuple[Presence, str | None]] = {
    ForceAction.BUSY: (Presence.NOT_READY, REASON_FORCED),
    ForceAction.IDLE: (Presence.READY, None),
    ForceAction.REST: (Presence.NOT_READY, REASON_REST),
}

_CTI_READY = 1
#: CTI code of each state by index (NOT_READY depends on the reason: looked up then).
_CTI_BY_INDEX: tuple[int, ...] = tuple(cti_code(s, None, {}) for s in STATES)
_ALERTING = WorkPhase.ALERTING
_RINGING = frozenset({WorkPhase.OFFERED, WorkPhase.ALERTING})

# Enum members read in the hot paths: a module global costs a tenth of ``Enum.MEMBER``.
_NOT_READY = Presence.NOT_READY
_ENDED = ContactState.ENDED
_PH_PRE = WorkPhase.PRE_OCCUPIED
_PH_OFFERED = WorkPhase.OFFERED
_PH_ACTIVE = WorkPhase.ACTIVE
_PH_WRAP = WorkPhase.WRAP_UP
_PH_DONE = WorkPhase.DONE
_RING_ALL = Strategy.RING_ALL
_ROUND_ROBIN = Strategy.ROUND_ROBIN
_ANSWERED = Outcome.ANSWERED
_ABANDONED = Outcome.ABANDONED
_OVERFLOWED = Outcome.OVERFLOWED
_W_RING_TIMEOUT = WithdrawReason.RING_TIMEOUT
_W_REJECTED = WithdrawReason.REJECTED
_W_ELSEWHERE = WithdrawReason.ANSWERED_ELSEWHERE
_TK_QUEUE = TreatmentKind.QUEUE


_HEAD = attrgetter("head")
#: A lane of extra skills borrows its base lane's free agents when at least 1 in this many
#: of the base's agents has the extra skills (so a pop passes over a few agents at most).
_BORROW_SHARE = 8
_IX = attrgetter("ix")
_PLACE = attrgetter("rkey")  # a contact's (vkey, order): its place
_NOBODY = NO_HEAD[0]
_SCRATCH = 1  # the ``_places`` slot of preferred-agent lanes


def _place_of(c: QueuedContact, cfg: QueueConfig) -> float:
    """A contact's place in the engine's order (smallest first): arrival, less its priority's
    worth of waiting (ageing), less its queue's priority (strict: docs/routing.md)."""
    return (
        c.arrived_at
        - c.priority * cfg.priority_step_seconds
        - cfg.priority * QUEUE_PRIORITY_SECONDS
    )


def _settle(lane: Lane) -> None:
    """Drop dead entries from the fronts of a lane's FIFO and heap; record its live head."""
    fifo = lane.fifo
    while fifo:
        c = fifo[0]
        if c.lane is lane and c.state is _WAITING:
            break
        fifo.popleft()
    heap = lane.contacts
    while heap:
        c = heap[0][2]
        if c.lane is lane and c.state is _WAITING:
            break
        heapq.heappop(heap)
    head: tuple[float, float, QueuedContact | None]
    if fifo:
        c = fifo[0]
        head = (c.vkey, c.order, c)
        if heap and heap[0] < head:
            head = heap[0]
    else:
        head = heap[0] if heap else NO_HEAD
    lane.head = head
    lane.place = head[0]
    if not COMPILED:  # (only the Python scan reads the array)
        lane.places[lane.ix] = head[0]


def _compact(lane: Lane) -> None:
    ch = lane.channel
    assert ch is not None
    live = [e for e in lane.agents if e[3] == e[4].version and e[4].can_take(ch)]
    heapq.heapify(live)
    lane.agents = live
    fifo = lane.agent_fifo
    fifo_live = [e for e in fifo if e[3] == e[4].version and e[4].can_take(ch)]
    fifo.clear()
    fifo.extend(fifo_live)


def _pop_agent(lane: Lane) -> AgentRecord | None:
    """The best free agent of the lane (stale entries are dropped on the way)."""
    if lane.pool is not lane:
        return _pop_borrowed(lane)
    heap = lane.agents
    fifo = lane.agent_fifo
    ch = lane.channel
    assert ch is not None
    heappop = heapq.heappop
    popleft = fifo.popleft
    while True:
        if fifo:
            entry = heappop(heap) if heap and heap[0] < fifo[0] else popleft()
        elif heap:
            entry = heappop(heap)
        else:
            return None
        v = entry[3]
        a = entry[4]
        if v == a.version and a.can_take(ch):
            return a


def _pop_borrowed(lane: Lane) -> AgentRecord | None:
    """The best free agent for a lane that borrows its queue's base lane's parked agents:
    the first live one meeting the lane's extra skills; live ones passed over go back
    where they were (a borrowing lane has many of them: see ``_index_lane``)."""
    pool = lane.pool
    heap = pool.agents
    fifo = pool.agent_fifo
    ch = lane.channel
    assert ch is not None
    requirement = lane.requirement
    passed: list[tuple[bool, tuple[float, float, int, int, AgentRecord]]] = []
    found: AgentRecord | None = None
    while True:
        if fifo and not (heap and heap[0] < fifo[0]):
            entry = fifo.popleft()
            from_fifo = True
        elif heap:
            entry = heapq.heappop(heap)
            from_fifo = False
        else:
            break
        a = entry[4]
        if entry[3] == a.version and a.can_take(ch):
            if a.meets(requirement):
                found = a
                break
            passed.append((from_fifo, entry))
    for from_fifo, entry in reversed(passed):  # the FIFO's come back in order
        if from_fifo:
            fifo.appendleft(entry)
        else:
            heapq.heappush(heap, entry)
    return found


def _enlane(c: QueuedContact, lane: Lane) -> None:
    entry = (c.vkey, c.order, c)
    fifo = lane.fifo
    last = fifo[-1] if fifo else None
    if last is None or (last.vkey, last.order) < entry:
        # In place order, the usual case: the FIFO holds the contact itself (an entry
        # tuple would live as long as the wait, for the collector to walk).
        fifo.append(c)
    else:
        heapq.heappush(lane.contacts, entry)
    lane.waiting += 1
    c.lane = lane
    if entry < lane.head:
        lane.head = entry
        lane.place = entry[0]
        if not COMPILED:
            lane.places[lane.ix] = entry[0]


def _unlane(c: QueuedContact) -> None:
    """Take a waiting contact out of its lane (its heap entry dies lazily, unless it is
    the head: then the lane settles on its next live entry at once)."""
    lane = c.lane
    if lane is not None:
        c.lane = None
        if c.state is _WAITING:
            lane.waiting -= 1
            if lane.head[2] is c:
                _settle(lane)


def _trim_entries(q: QueueRecord) -> None:
    entries = q.entries
    while entries:
        _, order, c = entries[0]
        if c.in_queue and c.queue is q and c.order == order:
            return
        entries.popleft()


@lru_cache(maxsize=1024)
def _normalised(required: tuple[SkillRequirement, ...]) -> Requirement:
    return normalise(required)


def _contact_extra(required: tuple[SkillRequirement, ...]) -> Requirement:
    """A contact's own skills, normalised (IVRs send the same few sets over and over)."""
    if not required:
        return ()
    try:
        return _normalised(required)
    except TypeError:  # not hashable (a list): no cache
        return normalise(required)


def _by_state(counts: Iterable[int]) -> dict[AgentState, int]:
    return dict(zip(STATES, counts, strict=True))


#: Overflows one contact may take before it is disconnected (guards against A -> B -> A).
MAX_OVERFLOW_HOPS = 8


@dataclass(frozen=True, slots=True)
class ContactInfo:
    contact_id: str
    queue_id: str | None
    channel: Channel
    state: ContactState
    priority: int
    callback: bool
    stage: int
    agent_ids: tuple[str, ...]  # ringing agents, or the connected agent
    entered_at: float
    requirement: Requirement  # what an agent needs now (queue stage + contact skills)


class RoutingEngine:
    """The routing engine of one tenant. Every method that takes ``now`` is an event and
    returns the decisions it caused, in order; due timers run first."""

    # Every attribute (a snapshot writes them all; the compiled engine's are C fields).
    __slots__ = (
        "_agents",
        "_agents_by_skill",
        "_by_state",
        "_carry",
        "_contacts",
        "_direct",
        "_free_queue_slots",
        "_free_slots",
        "_lanes_by_skill",
        "_members_in",
        "_now",
        "_places",
        "_queues",
        "_queues_by_skill",
        "_ranks",
        "_reasons",
        "_seq",
        "_timers",
        "_uncounted",
        "tenant_id",
    )

    def __init__(self, tenant_id: str = "") -> None:
        self.tenant_id = tenant_id
        self._now = float("-inf")
        self._seq = 0
        self._agents: dict[str, AgentRecord] = {}
        self._agents_by_skill: dict[str, dict[str, AgentRecord]] = {}
        self._queues: dict[str, QueueRecord] = {}
        self._queues_by_skill: dict[str, list[QueueRecord]] = {}
        self._lanes_by_skill: dict[str, list[Lane]] = {}
        self._contacts: dict[str, QueuedContact] = {}
        self._direct: dict[str, AgentRecord] = {}  # direct and outbound contacts -> their agent
        self._timers = TimerQueue()
        # The place of each lane's head contact, at ``Lane.ix`` (_NOBODY if none). Slot 0
        # stays _NOBODY; slot 1 is written by preferred-agent lanes, which nobody scans.
        self._places = array("d", (_NOBODY, _NOBODY))
        # Member agents per state per queue: ``_members_in[state][Queue.slot]``. One compact
        # list per state keeps an agent's state change off its queues' own records (lists,
        # not arrays: storing into an array parses its argument, ten times the cost).
        # Counts move when read (``_count_all``): an agent whose state changed is listed in
        # ``_uncounted`` once, and its ~20 queues move once per read, not three times per
        # contact it serves. Signing in and out are counted at once: a contact's entry
        # reads how many members are signed in (``QueueRecord.staffed``).
        self._members_in: list[list[int]] = [[] for _ in STATES]
        self._uncounted: list[AgentRecord] = []
        self._free_queue_slots: list[int] = []
        self._free_slots: list[int] = []
        self._reasons: dict[str, ReasonCode] = {r.code: r for r in BUILTIN_REASONS}
        self._by_state: list[int] = [0] * len(STATES)
        self._ranks = 0
        self._carry: list[Decision] = []  # due-timer decisions of a refused event

    # ------------------------------------------------------------------ replay

    def handle(self, event: InputEvent) -> list[Decision]:
        """Apply any input event (used to replay a recorded stream on a standby node)."""
        match event:
            case ContactQueued():
                return self.contact_queued(
                    event.contact_id,
                    event.queue_id,
                    event.channel,
                    event.now,
                    priority=event.priority,
                    required_skills=event.required_skills,
                    preferred_agent=event.preferred_agent,
                )
            case OfferAccepted():
                return self.offer_accepted(event.contact_id, event.agent_id, event.now)
            case ContactEnded():
                return self.contact_ended(event.contact_id, event.now)
            case WrapUpDone():
                return self.wrapup_done(event.agent_id, event.contact_id, event.now)
            case Tick():
                return self.tick(event.now)
            case ContactAbandoned():
                return self.contact_abandoned(event.contact_id, event.now)
            case OfferAlerting():
                return self.offer_alerting(event.contact_id, event.agent_id, event.now)
            case OfferRejected():
                return self.offer_rejected(event.contact_id, event.agent_id, event.now)
            case OfferTimedOut():
                return self.offer_timed_out(event.contact_id, event.agent_id, event.now)
            case CallbackRequested():
                return self.callback_requested(event.contact_id, event.now)
            case AgentPresenceChanged():
                return self.agent_state_changed(
                    event.agent_id, event.presence, event.now, reason=event.reason
                )
            case AgentLoggedIn():
                return self.agent_login(
                    event.agent_id, event.now, presence=event.presence, reason=event.reason
                )
            case AgentLoggedOut():
                return self.agent_logout(event.agent_id, event.now, event.reason, by=event.by)
            case AgentForced():
                return self.force_agent(
                    event.agent_id, event.action, event.by, event.now, seconds=event.seconds
                )
            case DirectContactStarted():
                return self.direct_contact_started(
                    event.agent_id, event.contact_id, event.channel, event.now
                )
            case OutboundReserved():
                return self.outbound_reserved(
                    event.agent_id, event.contact_id, event.now, channel=event.channel
                )
            case OutboundConnected():
                return self.outbound_connected(event.contact_id, event.now)
            case AgentConfigured():
                return self.configure_agent(event.config, event.now)
            case AgentRemoved():
                return self.remove_agent(event.agent_id, event.now)
            case QueueConfigured():
                return self.configure_queue(event.config, event.now)
            case QueueRemoved():
                return self.remove_queue(event.queue_id, event.now)
            case ReasonCodeConfigured():
                return self.configure_reason_code(event.reason, event.now)
        raise TypeError(f"not a routing input event: {event!r}")  # pragma: no cover

    @classmethod
    def replay(cls, events: Iterable[InputEvent], tenant_id: str = "") -> RoutingEngine:
        """A new engine in the state the given input stream leads to (decisions dropped)."""
        engine = cls(tenant_id)
        for event in events:
            engine.handle(event)
        return engine

    def snapshot(self) -> bytes:
        """The whole state as bytes, to store with the position in the event stream it
        covers: a standby restores it and replays only the events after it. Restore only
        snapshots your own deployment wrote (they are pickles)."""
        self._count_all()
        return _snapshot.dump({name: getattr(self, name) for name in self.__slots__})

    @classmethod
    def restore(cls, data: bytes) -> RoutingEngine:
        """The engine a ``snapshot`` was taken of."""
        engine = cls.__new__(cls)
        state = _snapshot.load(data)
        if set(state) != set(cls.__slots__):
            raise InvalidConfig("snapshot", "not a snapshot of this engine version")
        for name, value in state.items():
            setattr(engine, name, value)
        return engine

    # ------------------------------------------------------------------ configuration

    def configure_reason_code(self, reason: ReasonCode, now: float) -> list[Decision]:
        """Add or replace a tenant's not-ready reason code."""
        out = self._advance(now)
        self._reasons[reason.code] = reason
        return out

    def remove_reason_code(self, code: str, now: float) -> list[Decision]:
        """Drop a tenant's reason code (built-ins stay); an agent in it keeps it until its
        next change, which may not choose it again."""
        if code in _BUILTIN_REASON_CODES:
            raise InvalidConfig("reason code", f"{code!r} is built in")
        out = self._advance(now)
        self._reasons.pop(code, None)
        return out

    def configure_queue(self, config: QueueConfig, now: float) -> list[Decision]:
        """Create a queue, or change one at run time (its waiting contacts are re-sorted)."""
        for t in config.treatments():
            if t.target_queue is not None and t.target_queue not in self._queues:
                raise InvalidConfig(
                    f"queue {config.queue_id!r}", f"overflow target {t.target_queue!r} unknown"
                )
        out = self._advance(now)
        q = self._queues.get(config.queue_id)
        if q is None:
            q = QueueRecord(config, self._members_in, self._queue_slot())
            self._queues[q.queue_id] = q
            self._index_queue(q)
            return out
        # Run-time edit: drop the lanes and memberships, rebuild, and re-place the contacts.
        self._unindex_queue(q)
        q.apply(config)
        self._index_queue(q)
        in_queue = sorted(
            (c for c in self._contacts.values() if c.queue is q and c.in_queue),
            key=lambda c: c.order,
        )
        q.ranked = RankedKeys()
        for c in in_queue:
            c.vkey = _place_of(c, config)
            c.rkey = (c.vkey, c.order)
            q.ranked.add(c.rkey)
            c.stage = 0
            c.stage_seq = c.wait_seq = c.announce_seq = -1
            if c.lane is not None and c.lane.queue is q:  # the old lanes are gone
                c.lane = None
            self._schedule_contact(c, q, c.entered_at, now)
        for c in sorted(in_queue, key=lambda c: (c.vkey, c.order)):
            if c.state is _WAITING and c.lane is None:
                self._place(c, now, out)
        self._unstaffed((q,), now, out)  # its new skills may leave nobody signed in
        return out

    def remove_queue(self, queue_id: str, now: float) -> list[Decision]:
        q = self._queue(queue_id)
        if q.waiting:
            raise QueueInUse(queue_id, f"{q.waiting} contacts are waiting")
        for other in self._queues.values():
            if other is not q and any(t.target_queue == queue_id for t in other.cfg.treatments()):
                raise QueueInUse(queue_id, f"queue {other.queue_id!r} overflows into it")
        out = self._advance(now)
        self._unindex_queue(q)
        del self._queues[queue_id]
        self._free_queue_slots.append(q.slot)
        return out

    def configure_agent(self, config: AgentConfig, now: float) -> list[Decision]:
        """Create an agent (signed out), or change skills/capacity at run time."""
        out = self._advance(now)
        a = self._agents.get(config.agent_id)
        if a is None:
            self._ranks += 1
            a = AgentRecord(config, self._ranks, now)
            self._agents[a.agent_id] = a
            self._by_state[I_OFFLINE] += 1
            self._index_agent(a)
            return out
        skills_changed = dict(config.skills) != a.skills
        before = a.queues
        if skills_changed:
            self._unindex_agent(a)
        a.apply(config)
        if skills_changed:
            self._index_agent(a)
            self._flush_personal(a, now, out)
        if a.presence is _READY:
            self._serve(a, now, out)
        if skills_changed and a.presence is not _OFFLINE:
            self._unstaffed([q for q in before if q not in a.queues], now, out)
        return out

    def remove_agent(self, agent_id: str, now: float) -> list[Decision]:
        """Delete an agent; if signed in it is signed out by force first."""
        a = self._agent(agent_id)
        out = self._advance(now)
        if a.presence is not _OFFLINE:
            self._sign_out(a, SignOutReason.FORCED, None, now, out)
        self._unindex_agent(a)
        self._by_state[I_OFFLINE] -= 1
        del self._agents[agent_id]
        return out

    # ------------------------------------------------------------------ agent events

    def agent_login(
        self,
        agent_id: str,
        now: float,
        presence: Presence = Presence.READY,
        reason: str | None = None,
    ) -> list[Decision]:
        out = self._advance(now)
        try:
            a = self._agent(agent_id)
            if a.presence is not _OFFLINE:
                raise IllegalTransition(
                    f"agent {agent_id}", a.presence, presence, "already signed in"
                )
            self._check_presence(a, presence, reason)
        except RoutingError:
            self._carry = out
            raise
        self._set_presence(a, presence, reason, now, out)
        return out

    def agent_logout(
        self,
        agent_id: str,
        now: float,
        reason: SignOutReason = SignOutReason.SELF,
        by: str | None = None,
    ) -> list[Decision]:
        """Sign out (ending any wrap-up). Only a forced, disconnected or replaced sign-out may
        leave contacts behind: offers are withdrawn (contacts requeued at their place) and
        held contacts released."""
        out = self._advance(now)
        try:
            a = self._agent(agent_id)
            self._check_presence(a, _OFFLINE, None)
            held = tuple(cid for cid, w in a.items.items() if w.phase is not WorkPhase.WRAP_UP)
            if reason is SignOutReason.SELF and held:
                raise AgentHasWork(agent_id, held)
        except RoutingError:
            self._carry = out
            raise
        self._sign_out(a, reason, by, now, out)
        return out

    def agent_state_changed(
        self, agent_id: str, presence: Presence, now: float, reason: str | None = None
    ) -> list[Decision]:
        """The agent chose ready, not ready (with a reason code) or working.

        While contacts are held the change is pending: it shows once they are done."""
        out = self._advance(now)
        try:
            a = self._agent(agent_id)
            if presence is _OFFLINE:
                raise IllegalTransition(
                    f"agent {agent_id}", a.presence, presence, "use agent_logout"
                )
            if a.presence is _OFFLINE:
                raise IllegalTransition(
                    f"agent {agent_id}", a.presence, presence, "use agent_login"
                )
            self._check_presence(a, presence, reason)
        except RoutingError:
            self._carry = out
            raise
        self._set_presence(a, presence, reason, now, out)
        return out

    def force_agent(
        self,
        agent_id: str,
        action: ForceAction,
        by: str,
        now: float,
        seconds: float | None = None,
    ) -> list[Decision]:
        """Supervisor operation: force an agent busy, idle, to rest (for ``seconds``) or out."""
        out = self._advance(now)
        try:
            a = self._agent(agent_id)
            if action is ForceAction.SIGN_OUT:
                self._check_presence(a, _OFFLINE, None)
            else:
                target, reason = _FORCED[action]
                if a.presence is _OFFLINE:
                    raise IllegalTransition(f"agent {agent_id}", a.presence, target, "signed out")
                if seconds is not None and seconds <= 0:
                    raise InvalidConfig("forced rest", "seconds must be > 0")
                self._check_presence(a, target, reason)
        except RoutingError:
            self._carry = out
            raise
        if action is ForceAction.SIGN_OUT:
            self._sign_out(a, SignOutReason.FORCED, by, now, out)
        else:
            self._set_presence(a, target, reason, now, out, by=by, seconds=seconds)
        return out

    # ------------------------------------------------------------------ contact events

    def contact_queued(
        self,
        contact_id: str,
        queue_id: str,
        channel: Channel,
        now: float,
        priority: int = 0,
        required_skills: tuple[SkillRequirement, ...] = (),
        preferred_agent: str | None = None,
        enqueued_at: float | None = None,
    ) -> list[Decision]:
        """A contact enters a queue (from the IVR, a transfer, a chat widget...).

        ``required_skills`` are added to the queue's; ``preferred_agent`` (e.g. the last
        agent who served this customer) gets it first for the queue's preferred wait; an
        unknown preferred agent is ignored (it may have been deleted since).

        ``enqueued_at``: the contact has been waiting in this queue since then (its routing
        moved to this engine, a cluster takeover): it keeps its place among the others by
        that time, its wait and its queue timers count from it."""
        out = self._advance(now)
        try:
            contacts = self._contacts
            if contact_id in contacts or contact_id in self._direct:
                raise DuplicateContact(contact_id)
            q = self._queues.get(queue_id)
            if q is None:
                raise UnknownQueue(queue_id)
            if not isinstance(channel, Channel):
                raise InvalidConfig("contact", f"{contact_id}: unknown channel {channel!r}")
            extra = _contact_extra(required_skills)
        except RoutingError:
            self._carry = out
            raise
        self._seq = order = self._seq + 1
        since = now if enqueued_at is None or enqueued_at > now else enqueued_at
        c = QueuedContact(contact_id, channel, priority, extra, preferred_agent, since, order)
        contacts[contact_id] = c
        self._enter(c, q, now, out)
        return out

    def contact_abandoned(self, contact_id: str, now: float) -> list[Decision]:
        """The customer hung up (or left the chat, or cancelled the callback) before answer."""
        out = self._advance(now)
        try:
            c = self._contact(contact_id)
            if c.state is _CONNECTED:
                raise IllegalTransition(f"contact {contact_id}", c.state, "abandoned", "answered")
        except RoutingError:
            self._carry = out
            raise
        freed = self._withdraw_all(c, WithdrawReason.ABANDONED, now, out)
        self._leave(c, Outcome.ABANDONED, now)
        self._forget(c)
        for a in freed:
            self._serve(a, now, out)
        return out

    def callback_requested(self, contact_id: str, now: float) -> list[Decision]:
        """The customer leaves the queue but keeps their place; routed as a callback."""
        out = self._advance(now)
        try:
            c = self._contact(contact_id)
            if c.state is _CONNECTED or c.callback:
                source = "callback" if c.callback else c.state
                raise IllegalTransition(f"contact {contact_id}", source, "callback")
        except RoutingError:
            self._carry = out
            raise
        self._make_callback(c)
        if c.state is _OFFERED:  # the live call is gone: stop ringing, keep the place
            freed = self._withdraw_all(c, WithdrawReason.CALLBACK, now, out)
            self._after_decline(c, freed, now, out)
        return out

    def offer_accepted(self, contact_id: str, agent_id: str, now: float) -> list[Decision]:
        """The agent answered: the contact is connected; other ring-all offers are withdrawn."""
        out = self._advance(now)
        try:
            c = self._contacts.get(contact_id)
            if c is None:
                raise UnknownContact(contact_id)
            a = self._agents.get(agent_id)
            if a is None:
                raise UnknownAgent(agent_id)
            w = a.items.get(contact_id)
            if w is None or w.contact is not c:
                raise NotOffered(contact_id, agent_id)
            phase = w.phase
            if _PH_ACTIVE not in WORK_TRANSITIONS[phase]:
                self._check_phase(w, _PH_ACTIVE, agent_id)
        except RoutingError:
            self._carry = out
            raise
        # A ringing work item means its agent is among ``offered_to``.
        offered_to = c.offered_to
        others = [o for o in offered_to if o is not a] if len(offered_to) > 1 else ()
        c.offered_to = ()
        c.ring_seq = -1
        c.state = _CONNECTED
        c.agent = a
        c.connected_at = now
        if phase is _PH_OFFERED:
            a.n_offered -= 1
        else:
            self._count_phase(a, phase, -1)
        a.n_active += 1
        w.phase = _PH_ACTIVE
        w.since = now
        a.answered += 1
        self._leave(c, _ANSWERED, now)
        for o in others:
            self._drop_item(o, o.items[contact_id])
            out.append(OfferWithdrawn(contact_id, o.agent_id, _W_ELSEWHERE))
            self._publish(o, now, out)
        self._publish(a, now, out)
        for o in others:
            self._serve(o, now, out)
        return out

    def offer_alerting(self, contact_id: str, agent_id: str, now: float) -> list[Decision]:
        """The edge reports the agent's phone (or client) is ringing: CTI state 4."""
        out = self._advance(now)
        try:
            c = self._contact(contact_id)
            a = self._agent(agent_id)
            w = a.items.get(contact_id)
            if w is None or w.contact is not c:
                raise NotOffered(contact_id, agent_id)
            self._check_phase(w, _ALERTING, agent_id)
        except RoutingError:
            self._carry = out
            raise
        self._set_phase(a, w, _ALERTING)
        self._publish(a, now, out)
        return out

    def offer_rejected(self, contact_id: str, agent_id: str, now: float) -> list[Decision]:
        return self._decline(contact_id, agent_id, now, WithdrawReason.REJECTED)

    def offer_timed_out(self, contact_id: str, agent_id: str, now: float) -> list[Decision]:
        """The edge saw the agent's phone not answer (the engine's own ring timer does too)."""
        return self._decline(contact_id, agent_id, now, WithdrawReason.RING_TIMEOUT)

    def contact_ended(self, contact_id: str, now: float) -> list[Decision]:
        """The agent's contact ended: wrap-up starts (or the agent is free again). Also
        ends direct contacts and releases an outbound reservation whose dial failed."""
        out = self._advance(now)
        try:
            c = self._contacts.get(contact_id)
            if c is not None:
                if c.state is not _CONNECTED or c.agent is None:
                    raise IllegalTransition(
                        f"contact {contact_id}", c.state, _ENDED, "not connected"
                    )
                a = c.agent
            elif contact_id in self._direct:
                a = self._direct[contact_id]
            else:
                raise UnknownContact(contact_id)
        except RoutingError:
            self._carry = out
            raise
        w = a.items[contact_id]
        q = w.queue
        if w.phase is _PH_PRE:  # the outbound dial failed
            self._drop_item(a, w)
            del self._direct[contact_id]
        else:
            a.handled += 1
            if c is not None and q is not None:
                counters = q.counters
                counters.handled += 1
                counters.handle_total += now - c.connected_at
                c.state = _ENDED  # _forget inlined
                c.lane = None
                del self._contacts[contact_id]
            else:
                del self._direct[contact_id]
            wrap = a.cfg.wrap_up_seconds
            if wrap is None:
                wrap = q.cfg.wrap_up_seconds if q is not None else 0.0
            if wrap == 0:
                self._drop_item(a, w)
            else:
                if w.phase is _PH_ACTIVE:  # _set_phase inlined for the usual case
                    a.n_active -= 1
                    a.n_wrap += 1
                    w.phase = _PH_WRAP
                else:
                    self._set_phase(a, w, _PH_WRAP)
                w.since = now
                if wrap is not None:
                    self._seq = seq = self._seq + 1
                    self._timers.add(now + wrap, seq, _T_WRAP, w, wrap)
                    w.wrap_seq = seq
        if contact_id not in a.items:  # no wrap-up: the slot is free again
            self._serve(a, now, out)  # (see ``_end_wrap``)
        self._publish(a, now, out)
        return out

    def wrapup_done(self, agent_id: str, contact_id: str, now: float) -> list[Decision]:
        out = self._advance(now)
        try:
            a = self._agent(agent_id)
            w = a.items.get(contact_id)
            if w is None or w.phase is not WorkPhase.WRAP_UP:
                source = w.phase if w is not None else "no contact"
                raise IllegalTransition(f"agent {agent_id} contact {contact_id}", source, "done")
        except RoutingError:
            self._carry = out
            raise
        self._end_wrap(a, w, now, out)
        return out

    def direct_contact_started(
        self, agent_id: str, contact_id: str, channel: Channel, now: float
    ) -> list[Decision]:
        """A contact that did not come from a queue (direct or internal call) reached the
        agent: it occupies capacity until ``contact_ended``."""
        out = self._advance(now)
        try:
            a = self._agent(agent_id)
            self._check_new_work(a, contact_id, channel)
        except RoutingError:
            self._carry = out
            raise
        self._direct[contact_id] = a
        self._add_item(a, WorkItem(a, contact_id, channel, WorkPhase.ACTIVE, None, None, now))
        self._publish(a, now, out)
        if a.presence is _READY:
            self._serve(a, now, out)  # a text agent on a direct chat may still take more
        return out

    def wrapup_resumed(
        self,
        agent_id: str,
        contact_id: str,
        channel: Channel,
        queue_id: str | None,
        until: float | None,
        now: float,
    ) -> list[Decision]:
        """The agent is in wrap-up after ``contact_id`` until ``until`` (None: until it says
        done), begun on another engine (its routing moved here, a cluster takeover): it stays
        in wrap-up for the time left, no offers meanwhile; ``wrapup_done`` ends it early.
        ``queue_id``: the queue of the contact (None: a direct one). Already over: nothing."""
        out = self._advance(now)
        try:
            a = self._agent(agent_id)
            self._check_new_work(a, contact_id, channel)
            q = self._queues.get(queue_id) if queue_id is not None else None
        except RoutingError:
            self._carry = out
            raise
        if until is not None and until <= now:
            return out
        w = WorkItem(a, contact_id, channel, WorkPhase.ACTIVE, q, None, now)
        self._add_item(a, w)
        self._set_phase(a, w, _PH_WRAP)
        wrap = self._wrap_seconds(a, w)
        if until is not None:
            w.since = until - wrap if wrap is not None else now
            w.wrap_seq = self._timer(until, _T_WRAP, w, until - now)
        self._publish(a, now, out)
        return out

    @staticmethod
    def _wrap_seconds(a: AgentRecord, w: WorkItem) -> float | None:
        """The wrap-up time after ``w`` (None: until the agent says done)."""
        wrap = a.cfg.wrap_up_seconds
        if wrap is None:
            wrap = w.queue.cfg.wrap_up_seconds if w.queue is not None else 0.0
        return wrap

    def wrap_ups(self, agent_id: str) -> list[tuple[str, Channel, str | None, float | None]]:
        """The agent's contacts in wrap-up: (contact, channel, queue or None, when it ends or
        None when it lasts until the agent says done)."""
        a = self._agent(agent_id)
        out = []
        for cid, w in a.items.items():
            if w.phase is not _PH_WRAP:
                continue
            wrap = self._wrap_seconds(a, w)
            until = None if wrap is None or w.wrap_seq == -1 else w.since + wrap
            out.append((cid, w.channel, w.queue.queue_id if w.queue is not None else None, until))
        return out

    def outbound_reserved(
        self, agent_id: str, contact_id: str, now: float, channel: Channel = Channel.VOICE
    ) -> list[Decision]:
        """The dialer pre-occupies the agent for an outbound call (no queue offers meanwhile).

        ``outbound_connected`` when the customer answers, ``contact_ended`` if the dial fails."""
        out = self._advance(now)
        try:
            a = self._agent(agent_id)
            self._check_new_work(a, contact_id, channel)
        except RoutingError:
            self._carry = out
            raise
        self._direct[contact_id] = a
        self._add_item(a, WorkItem(a, contact_id, channel, WorkPhase.PRE_OCCUPIED, None, None, now))
        a.version += 1
        self._publish(a, now, out)
        return out

    def outbound_connected(self, contact_id: str, now: float) -> list[Decision]:
        out = self._advance(now)
        try:
            a = self._direct.get(contact_id)
            if a is None:
                raise UnknownContact(contact_id)
            w = a.items[contact_id]
            if w.phase is not WorkPhase.PRE_OCCUPIED:
                raise IllegalTransition(f"contact {contact_id}", w.phase, WorkPhase.ACTIVE)
        except RoutingError:
            self._carry = out
            raise
        self._set_phase(a, w, WorkPhase.ACTIVE)
        w.since = now
        self._publish(a, now, out)
        if a.presence is _READY:
            self._serve(a, now, out)
        return out

    def tick(self, now: float) -> list[Decision]:
        """Run the timers due by ``now`` (ring timeouts, wrap-up ends, relaxation, ...)."""
        return self._advance(now)

    def next_deadline(self) -> float | None:
        """When ``tick`` must next be called, or None if no timer is pending."""
        timers = self._timers
        heap = timers.heap
        live = self._live
        while heap:
            at, seq, kind, obj, _ = heap[0]
            # The usual heads, checked inline (see ``_live``): a ring timer, dead once
            # answered, and a wrap-up end.
            if kind == _T_RING:
                if obj.ring_seq == seq and obj.state is _OFFERED:  # type: ignore[attr-defined]
                    return at
            elif kind == _T_WRAP:
                if obj.wrap_seq == seq and obj.phase is _PH_WRAP:  # type: ignore[attr-defined]
                    return at
            elif live(seq, kind, obj):
                return at
            timers.pop()
        return None

    # ------------------------------------------------------------------ queries

    def queue_stats(self, queue_id: str, now: float) -> QueueStats:
        q = self._queue(queue_id)
        self._count_all()
        _trim_entries(q)
        longest = now - q.entries[0][0] if q.entries else 0.0
        return queue_stats(
            queue_id,
            q.counters,
            waiting=q.waiting,
            callbacks_waiting=q.callbacks_waiting,
            longest_wait=max(0.0, longest),
            agents_by_state=_by_state([counts[q.slot] for counts in self._members_in]),
        )

    def agent_stats(self, agent_id: str, now: float) -> AgentStats:
        a = self._agent(agent_id)
        spent = list(a.time_in)
        spent[a.si] += max(0.0, now - a.state_since)
        time_in = {s: t for s, t in zip(STATES, spent, strict=True) if t}
        return AgentStats(
            agent_id=agent_id,
            state=a.state,
            presence=a.presence,
            reason=a.shown_reason,
            state_since=a.state_since,
            cti_code=cti_code(a.state, a.shown_reason, self._reasons),
            load={ch: n for ch, n in a.load.items() if n},
            offered=a.offered,
            answered=a.answered,
            ring_timeouts=a.ring_timeouts,
            rejected=a.rejected,
            handled=a.handled,
            time_in_state=time_in,
        )

    def agent_history(self, agent_id: str) -> list[tuple[float, AgentState, str | None]]:
        """The agent's last state changes (time, state, reason), oldest first."""
        it = iter(self._agent(agent_id).history[-3 * HISTORY_LENGTH :])
        triples = cast("list[tuple[float, int, str | None]]", list(zip(it, it, it, strict=True)))
        return [(at, STATES[si], reason) for at, si, reason in triples]

    def agent_work(self, agent_id: str) -> dict[str, WorkPhase]:
        """The contacts the agent holds and their phase."""
        return {cid: w.phase for cid, w in self._agent(agent_id).items.items()}

    def contact_info(self, contact_id: str) -> ContactInfo:
        c = self._contact(contact_id)
        agents = tuple(a.agent_id for a in c.offered_to)
        if c.state is _CONNECTED and c.agent is not None:
            agents = (c.agent.agent_id,)
        q = c.queue
        return ContactInfo(
            contact_id=contact_id,
            queue_id=q.queue_id if q is not None else None,
            channel=c.channel,
            state=c.state,
            priority=c.priority,
            callback=c.callback,
            stage=c.stage,
            agent_ids=agents,
            entered_at=c.entered_at,
            requirement=self._requirement(c),
        )

    def position(self, contact_id: str) -> int:
        """1-based position of a contact in its queue (priority and ageing applied)."""
        c = self._contact(contact_id)
        if not c.in_queue or c.queue is None:
            raise NotQueued(contact_id)
        return c.queue.ranked.rank(c.rkey) + 1

    def estimated_wait(self, contact_id: str) -> float:
        """Seconds until the contact is expected to be answered, from its current position."""
        c = self._contact(contact_id)
        position = self.position(contact_id)
        assert c.queue is not None
        q = c.queue
        return q.pace.estimate(position, q.cfg.default_handle_seconds, q.staffed)

    def wallboard(self, now: float) -> Wallboard:
        queues = {qid: self.queue_stats(qid, now) for qid in self._queues}
        return Wallboard(
            at=now,
            queues=queues,
            agents_by_state=_by_state(self._by_state),
            contacts_waiting=sum(q.waiting for q in self._queues.values()),
        )

    def agent_ids(self) -> Iterator[str]:
        return iter(self._agents)

    def queue_ids(self) -> Iterator[str]:
        return iter(self._queues)

    def contact_ids(self) -> Iterator[str]:
        """Contacts the engine tracks: queued, ringing or connected (not direct ones)."""
        return iter(self._contacts)

    def queue_config(self, queue_id: str) -> QueueConfig:
        return self._queue(queue_id).cfg

    def agent_config(self, agent_id: str) -> AgentConfig:
        return self._agent(agent_id).cfg

    @property
    def reason_codes(self) -> Mapping[str, ReasonCode]:
        return dict(self._reasons)

    # ------------------------------------------------------------------ internals: lookups

    def _agent(self, agent_id: str) -> AgentRecord:
        a = self._agents.get(agent_id)
        if a is None:
            raise UnknownAgent(agent_id)
        return a

    def _queue(self, queue_id: str) -> QueueRecord:
        q = self._queues.get(queue_id)
        if q is None:
            raise UnknownQueue(queue_id)
        return q

    def _contact(self, contact_id: str) -> QueuedContact:
        c = self._contacts.get(contact_id)
        if c is None:
            raise UnknownContact(contact_id)
        return c

    def _requirement(self, c: QueuedContact) -> Requirement:
        q = c.queue
        if q is None:
            return c.extra
        _, stage_req, drop = q.stages[c.stage]
        return stage_req if drop else normalise(stage_req, c.extra)

    # ------------------------------------------------------------------ internals: checks

    def _check_presence(self, a: AgentRecord, target: Presence, reason: str | None) -> None:
        if target not in PRESENCE_TRANSITIONS[a.presence]:
            raise IllegalTransition(f"agent {a.agent_id}", a.presence, target)
        if target is _NOT_READY and reason is not None and reason not in self._reasons:
            raise UnknownReasonCode(reason)

    def _check_phase(self, w: WorkItem, target: WorkPhase, agent_id: str) -> None:
        if target not in WORK_TRANSITIONS[w.phase]:
            raise IllegalTransition(f"agent {agent_id} contact {w.contact_id}", w.phase, target)

    def _check_new_work(self, a: AgentRecord, contact_id: str, channel: Channel) -> None:
        if contact_id in self._contacts or contact_id in self._direct:
            raise DuplicateContact(contact_id)
        if a.presence is _OFFLINE:
            raise IllegalTransition(f"agent {a.agent_id}", a.presence, "busy", "not signed in")
        if a.load.get(channel, 0) >= a.capacity.get(channel, 0) or a.total >= a.max_total:
            raise AgentAtCapacity(a.agent_id, channel)

    # ------------------------------------------------------------------ internals: time

    def _advance(self, now: float) -> list[Decision]:
        if now < self._now:
            raise ClockWentBackwards(now, self._now)
        self._now = now
        out = self._carry
        self._carry = []
        heap = self._timers.heap
        while heap and heap[0][0] <= now:
            at, seq, kind, obj, fifo = heap[0]  # TimerQueue.pop, inline
            if fifo is None:
                heapq.heappop(heap)
            else:
                fifo.popleft()
                if fifo:
                    heapq.heapreplace(heap, fifo[0])
                else:
                    heapq.heappop(heap)
            if kind == _T_WRAP:  # the usual ones, checked inline (see ``_fire``)
                w: WorkItem = obj  # type: ignore[assignment]
                if w.wrap_seq == seq and w.phase is _PH_WRAP:
                    self._end_wrap(w.agent, w, at, out)
            elif kind == _T_RING:  # nearly always answered since: a dead timer
                c: QueuedContact = obj  # type: ignore[assignment]
                if c.ring_seq == seq and c.state is _OFFERED:
                    self._fire(at, seq, kind, obj, out)
            else:
                self._fire(at, seq, kind, obj, out)
        return out

    def _timer(self, at: float, kind: int, obj: object, delay: float) -> int:
        """Arm a timer due at ``at`` (normally now + ``delay``); returns its sequence."""
        self._seq = seq = self._seq + 1
        self._timers.add(at, seq, kind, obj, delay)
        return seq

    @staticmethod
    def _live(seq: int, kind: int, obj: object) -> bool:
        """Whether a timer still counts (cancellation is lazy: records keep their timers'
        sequences, and a state change makes older ones dead)."""
        if kind == _T_WRAP:
            assert isinstance(obj, WorkItem)
            return obj.wrap_seq == seq and obj.phase is _PH_WRAP
        if kind == _T_NOTREADY:
            assert isinstance(obj, AgentRecord)
            return obj.nr_seq == seq
        assert isinstance(obj, QueuedContact)
        if kind == _T_RING:
            return obj.ring_seq == seq and obj.state is _OFFERED
        if not obj.in_queue:
            return False
        if kind == _T_STAGE:
            return obj.stage_seq == seq
        if kind == _T_MAXWAIT:
            return obj.wait_seq == seq
        if kind == _T_PREFERRED:
            return obj.preferred_seq == seq
        return obj.announce_seq == seq

    def _fire(self, at: float, seq: int, kind: int, obj: object, out: list[Decision]) -> None:
        if kind == _T_WRAP:  # the usual one, checked inline
            assert isinstance(obj, WorkItem)
            if obj.wrap_seq == seq and obj.phase is _PH_WRAP:
                self._end_wrap(obj.agent, obj, at, out)
            return
        if not self._live(seq, kind, obj):
            return
        if kind == _T_RING:
            assert isinstance(obj, QueuedContact)
            ringing = list(obj.offered_to)
            for a in ringing:
                self._withdraw(obj, a, _W_RING_TIMEOUT, at, out)
            self._after_decline(obj, ringing, at, out)
        elif kind == _T_NOTREADY:
            assert isinstance(obj, AgentRecord)
            obj.nr_seq = -1
            if obj.nr_auto:
                self._set_presence(obj, _READY, None, at, out)
            else:
                out.append(NotReadyOverrun(obj.agent_id, obj.reason or "", obj.state_since, at))
        else:
            assert isinstance(obj, QueuedContact)
            self._fire_contact(obj, kind, at, out)

    def _fire_contact(self, c: QueuedContact, kind: int, at: float, out: list[Decision]) -> None:
        q = c.queue
        assert q is not None
        if kind == _T_STAGE:
            c.stage += 1
            if c.stage + 1 < len(q.stages):
                after = q.stages[c.stage + 1][0]
                c.stage_seq = self._timer(c.entered_at + after, _T_STAGE, c, after)
            if c.state is _WAITING and c.lane is not None and c.lane.queue is q:
                _unlane(c)
                self._place(c, at, out)
        elif kind == _T_MAXWAIT:
            if c.state is _OFFERED:
                c.max_wait_due = True
            elif not c.callback:
                self._treat(c, q, q.cfg.on_max_wait, at, out)
        elif kind == _T_PREFERRED:
            c.preferred = None
            if c.state is _WAITING and c.lane is not None and c.lane.queue is None:
                _unlane(c)
                self._place(c, at, out)
        else:  # announce
            interval = q.cfg.announce_interval
            if interval is not None:
                c.announce_seq = self._timer(at + interval, _T_ANNOUNCE, c, interval)
            if c.state is _WAITING:
                self._announce(c, q, out)

    # ------------------------------------------------------------------ internals: agents

    def _set_presence(
        self,
        a: AgentRecord,
        presence: Presence,
        reason: str | None,
        at: float,
        out: list[Decision],
        by: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self._apply_presence(a, presence, reason, at, by, seconds)
        if presence is _READY:
            self._publish(a, at, out, by=by)
            a.available_since = at
            self._serve(a, at, out)
        else:
            self._publish(a, at, out, by=by)
            a.version += 1

    def _apply_presence(
        self,
        a: AgentRecord,
        presence: Presence,
        reason: str | None,
        at: float,
        by: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Set presence and reason; arm the reason's time limit (rest with a duration)."""
        if presence is _NOT_READY and reason is None:
            reason = REASON_BUSY
        a.presence = presence
        a.reason = reason if presence is not _READY else None
        a.by = by
        a.nr_seq = -1
        if presence is _NOT_READY:
            rc = self._reasons[reason or REASON_BUSY]
            limit = seconds if seconds is not None else rc.max_seconds
            if limit is not None:
                a.nr_auto = rc.auto_ready or seconds is not None
                a.nr_seq = self._timer(at + limit, _T_NOTREADY, a, limit)

    def _sign_out(
        self, a: AgentRecord, reason: SignOutReason, by: str | None, at: float, out: list[Decision]
    ) -> None:
        a.presence = _OFFLINE
        a.reason = reason.value
        a.by = by
        a.nr_seq = -1
        a.version += 1
        requeue: list[QueuedContact] = []
        for w in list(a.items.values()):
            c = w.contact
            if (w.phase is WorkPhase.OFFERED or w.phase is _ALERTING) and c is not None:
                c.offered_to = [o for o in c.offered_to if o is not a]
                self._drop_item(a, w)
                gone = WithdrawReason.AGENT_SIGNED_OUT
                out.append(OfferWithdrawn(c.contact_id, a.agent_id, gone))
                if not c.offered_to:
                    requeue.append(c)
                continue
            wrapping = w.phase is WorkPhase.WRAP_UP
            self._drop_item(a, w)
            if wrapping:
                continue  # signing out ends the wrap-up; the contact itself is over
            out.append(ContactReleased(w.contact_id, a.agent_id))
            if c is not None:
                if c.state is _CONNECTED:
                    self._forget(c)
            else:
                self._direct.pop(w.contact_id, None)
        self._publish(a, at, out, by=by)
        # The offers taken back and the agent's own waiting customers go back in place
        # order: each meets the free agents before any later contact does.
        moving = requeue + self._personal_waiting(a)
        moving.sort(key=_PLACE)
        for c in moving:
            if c.state is _OFFERED:
                self._after_decline(c, [], at, out)
            else:
                self._place(c, at, out)
        self._unstaffed(a.queues, at, out)

    def _flush_personal(self, a: AgentRecord, at: float, out: list[Decision]) -> None:
        """Contacts waiting for this preferred agent go to the normal lanes."""
        for c in self._personal_waiting(a):
            self._place(c, at, out)

    def _personal_waiting(self, a: AgentRecord) -> list[QueuedContact]:
        """Take the contacts waiting for this preferred agent out of its lanes, in place
        order, no longer waiting for it."""
        waiting: list[QueuedContact] = []
        if a.personal is None:
            return waiting
        for lane in a.personal.values():
            if not lane.waiting:
                continue
            waiting += (
                c
                for c in (*lane.fifo, *(entry[2] for entry in lane.contacts))
                if c.lane is lane and c.state is _WAITING
            )
            lane.fifo.clear()
            lane.contacts.clear()
            lane.head = NO_HEAD
            lane.place = _NOBODY
            lane.waiting = 0
        waiting.sort(key=_PLACE)
        for c in waiting:
            c.lane = None
            c.preferred = None
        return waiting

    def _publish(
        self,
        a: AgentRecord,
        at: float,
        out: list[Decision],
        by: str | None = None,
    ) -> None:
        """Record and announce a change of the agent's reported state (or reason)."""
        presence = a.presence
        if presence is _OFFLINE:
            si = I_OFFLINE
        elif a.n_alerting:
            si = I_ALERTING
        elif a.n_offered:
            si = I_RESERVED
        elif a.n_pre:
            si = I_PRE
        elif a.n_active:
            si = I_BUSY
        elif a.n_wrap:
            si = I_WRAP
        elif presence is _READY:
            si = I_READY
        elif presence is _NOT_READY:
            si = I_NOT_READY
        else:
            si = I_WORKING
        reason = a.reason if si in (I_NOT_READY, I_OFFLINE) else None
        old = a.si
        if si == old and reason == a.shown_reason:
            return
        a.time_in[old] += at - a.state_since
        a.state_since = at
        previous = a.state
        state = a.state = STATES[si]
        a.si = si
        a.shown_reason = reason
        if si != old:
            counts = self._by_state
            counts[old] -= 1
            counts[si] += 1
            if si == I_OFFLINE or old == I_OFFLINE:
                self._count(a)  # signed-in counts stay exact (see ``_members_in``)
            elif not a.uncounted:
                a.uncounted = True
                self._uncounted.append(a)
        # Flat (time, state index, reason) triples: a tuple per change would live on in the
        # list, and the collector would walk every one of them at least once. The list keeps
        # up to twice HISTORY_LENGTH changes (three appends cost less than a deque's extend).
        history = a.history
        history.append(at)
        history.append(si)
        history.append(reason)
        if len(history) > 6 * HISTORY_LENGTH:
            del history[: 3 * HISTORY_LENGTH]
        code = _CTI_BY_INDEX[si] if si != I_NOT_READY else cti_code(state, reason, self._reasons)
        out.append(AgentStateChanged(a.agent_id, state, previous, reason, at, code, by))

    def _add_item(self, a: AgentRecord, w: WorkItem) -> None:
        assert w.phase in WORK_START
        a.items[w.contact_id] = w
        ch = w.channel
        a.load[ch] = a.load.get(ch, 0) + 1
        a.total += 1
        if ch in _CALLS:
            a.call_items += 1
        self._count_phase(a, w.phase, 1)

    def _drop_item(self, a: AgentRecord, w: WorkItem) -> None:
        phase = w.phase
        if _PH_DONE not in WORK_TRANSITIONS[phase]:
            raise IllegalTransition(f"agent {a.agent_id} contact {w.contact_id}", phase, _PH_DONE)
        self._count_phase(a, phase, -1)
        w.phase = _PH_DONE
        w.wrap_seq = -1
        del a.items[w.contact_id]
        ch = w.channel
        a.load[ch] -= 1
        a.total -= 1
        if ch in _CALLS:
            a.call_items -= 1
        a.available_since = self._now

    def _set_phase(self, a: AgentRecord, w: WorkItem, phase: WorkPhase) -> None:
        old = w.phase
        if phase not in WORK_TRANSITIONS[old]:
            raise IllegalTransition(f"agent {a.agent_id} contact {w.contact_id}", old, phase)
        self._count_phase(a, old, -1)
        self._count_phase(a, phase, 1)
        w.phase = phase

    @staticmethod
    def _count_phase(a: AgentRecord, phase: WorkPhase, n: int) -> None:
        if phase is _PH_OFFERED:
            a.n_offered += n
        elif phase is _PH_ACTIVE:
            a.n_active += n
        elif phase is _PH_WRAP:
            a.n_wrap += n
        elif phase is _ALERTING:
            a.n_alerting += n
        else:
            a.n_pre += n

    def _end_wrap(self, a: AgentRecord, w: WorkItem, at: float, out: list[Decision]) -> None:
        # _drop_item inlined: WRAP_UP -> DONE is always allowed
        a.n_wrap -= 1
        w.phase = _PH_DONE
        w.wrap_seq = -1
        del a.items[w.contact_id]
        ch = w.channel
        a.load[ch] -= 1
        a.total -= 1
        if ch in _CALLS:
            a.call_items -= 1
        a.available_since = at
        # Offered a waiting contact at once, the agent goes from WRAP_UP straight to
        # RESERVED (its offer publishes that); a READY of no duration is not announced.
        self._serve(a, at, out)
        self._publish(a, at, out)  # nothing to offer: WRAP_UP -> READY

    def _count_all(self) -> None:
        """Bring every queue's per-state member counts up to its agents' states."""
        for a in self._uncounted:
            a.uncounted = False
            self._count(a)
        self._uncounted.clear()

    def _count(self, a: AgentRecord) -> None:
        """Bring the per-state member counts of the agent's queues up to its state."""
        if a.counted != a.si:
            members_in = self._members_in
            leaving = members_in[a.counted]
            entering = members_in[a.si]
            for slot in a.queue_slots:
                leaving[slot] -= 1
                entering[slot] += 1
            a.counted = a.si

    # ------------------------------------------------------------------ internals: matching

    def _serve(self, a: AgentRecord, at: float, out: list[Decision]) -> None:
        """Offer a free agent the best waiting contacts it can take, then park it."""
        a.version += 1
        if a.presence is not _READY:
            return
        while a.total < a.max_total:  # room for one more contact of some channel
            best_lane: Lane | None = None
            if a.personal is not None:  # customers waiting for this very agent come first
                for lane in a.personal.values():
                    if (
                        lane.waiting
                        and (best_lane is None or lane.head < best_lane.head)
                        and a.can_take(lane.channel)  # type: ignore[arg-type]
                    ):
                        best_lane = lane
            if best_lane is None:
                # The oldest head among the agent's lanes; equal places (same arrival time)
                # are decided by arrival order. Heads are always live.
                best: tuple[float, float, QueuedContact | None] = NO_HEAD
                if COMPILED:
                    # A C loop over the lanes' head places (``Lane.place``: a C double in
                    # the lane, not the head tuple and its float: one object to fetch per
                    # lane, not three). Lanes are few and shared by many agents, so they
                    # stay in cache; an array of the agent's own lane slots, read as the
                    # Python loop below does, was 12 % slower (per-agent objects are the
                    # cold ones).
                    best_place = _NOBODY
                    for ch, lanes in a.lanes.items():
                        # one channel: the free slot the loop found is for it
                        if (not a.n_pre) if a.single else a.can_take(ch):
                            for lane in lanes:
                                place = lane.place
                                if place < best_place or (
                                    place == best_place and place != _NOBODY and lane.head < best
                                ):
                                    best = lane.head
                                    best_place = place
                                    best_lane = lane
                else:
                    # As Python: the places sit in one compact engine-wide array (no lane,
                    # tuple or float object to fetch per lane): the agent's getter reads its
                    # lanes' places in one C call (slot 0, always _NOBODY, keeps it a
                    # tuple), and a C-level ``min`` finds the oldest.
                    scan = a.scan
                    if scan is None:
                        scan = a.scan = [
                            (ch, lanes, itemgetter(0, *map(_IX, lanes)))
                            for ch, lanes in a.lanes.items()
                            if lanes
                        ]
                    for ch, lanes, getter in scan:
                        if (not a.n_pre) if a.single else a.can_take(ch):
                            got = getter(self._places)
                            place = min(got)
                            if place > best[0] or place == _NOBODY:
                                continue
                            if got.count(place) == 1:
                                lane = lanes[got.index(place) - 1]
                            else:
                                tied = [
                                    ln for ln, p in zip(lanes, got[1:], strict=True) if p == place
                                ]
                                lane = min(tied, key=_HEAD)
                            if lane.head < best:
                                best = lane.head
                                best_lane = lane
                if best_lane is None:
                    break
            head = best_lane.head
            c = head[2]
            assert c is not None
            fifo = best_lane.fifo
            if fifo and fifo[0] is c:  # (twins of ``c`` are interchangeable)
                fifo.popleft()
            else:
                heapq.heappop(best_lane.contacts)
            best_lane.waiting -= 1
            q = c.queue
            assert q is not None
            if q.cfg.strategy is _RING_ALL and best_lane.queue is q:
                ringing = [a]
                while len(ringing) < q.cfg.ring_all_limit:
                    other = _pop_agent(best_lane)
                    if other is None:
                        break
                    if other is not a:
                        ringing.append(other)
                self._offer(c, ringing, at, out)
                _settle(best_lane)
                for other in ringing[1:]:
                    if other.presence is _READY:
                        self._park(other)
            else:
                self._offer(c, [a], at, out)
                _settle(best_lane)  # after the offer: ``c`` may have stale twins behind it
        if a.total < a.max_total:
            self._park(a)

    def _park(self, a: AgentRecord) -> None:
        """Put a free agent in the agent heaps of the lanes it can take work from."""
        if a.total >= a.max_total:
            return
        v = a.version
        heappush = heapq.heappush
        shared: dict[StrategyKey, tuple[float, float, int, int, AgentRecord]] = {}
        for ch, lanes in a.lanes.items():
            if not a.can_take(ch):
                continue
            for lane in lanes:
                if lane.pool is not lane:  # it takes its agents from its queue's base lane
                    continue
                key_fn = lane.key_fn
                assert key_fn is not None
                entry = shared.get(key_fn)
                if entry is None:
                    k1, k2 = key_fn(a, lane.requirement, lane.queue_id)
                    entry = (k1, k2, a.rank, v, a)
                    if key_fn in AGENT_ONLY_KEYS:  # the same entry serves all such lanes
                        shared[key_fn] = entry
                fifo = lane.agent_fifo
                heap = lane.agents
                if not fifo or fifo[-1] < entry:
                    fifo.append(entry)  # in key order: stale entries leave at O(1)
                else:
                    heappush(heap, entry)
                if len(heap) + len(fifo) > 2 * lane.eligible + 64:
                    _compact(lane)

    def _place(self, c: QueuedContact, at: float, out: list[Decision]) -> None:
        """Offer a waiting contact to the best free agent, or make it wait in its lane."""
        q = c.queue
        assert q is not None
        if c.preferred is not None and c.preferred_until > at:
            pa = self._agents.get(c.preferred)
            if (
                pa is not None
                and pa.presence is not _OFFLINE
                and pa.capacity.get(c.channel, 0)
                and pa.meets(self._requirement(c))
            ):
                if pa.can_take(c.channel):
                    self._offer(c, [pa], at, out)
                    if pa.presence is _READY:
                        self._park(pa)
                    return
                # One lane per channel: a chat waiting for the agent is not held up by an
                # older call the agent cannot take yet (and the other way round).
                if pa.personal is None:
                    pa.personal = {}
                lane = pa.personal.get(c.channel)
                if lane is None:
                    lane = Lane(None, (), c.channel, None, self._places, _SCRATCH)
                    pa.personal[c.channel] = lane
                _enlane(c, lane)
                return
            c.preferred = None
        lane = self._lane(q, c)
        pool = lane.pool
        if not pool.agents and not pool.agent_fifo:  # nobody free (so while contacts wait)
            _enlane(c, lane)
            return
        if q.cfg.strategy is _RING_ALL:
            agents: list[AgentRecord] = []
            while len(agents) < q.cfg.ring_all_limit:
                a = _pop_agent(lane)
                if a is None:
                    break
                agents.append(a)
        else:
            a = _pop_agent(lane)
            agents = [a] if a is not None else []
        if not agents:
            _enlane(c, lane)
            return
        self._offer(c, agents, at, out)
        for a in agents:
            if a.presence is _READY:
                self._park(a)  # a text agent may still have room for more

    def _offer(
        self, c: QueuedContact, agents: list[AgentRecord], at: float, out: list[Decision]
    ) -> None:
        q = c.queue
        assert q is not None
        cfg = q.cfg
        strategy = cfg.strategy
        ring = cfg.ring_timeout
        expires = at + ring
        cid = c.contact_id
        ch = c.channel
        c.state = _OFFERED
        c.offered_to = agents
        c.ring_all = strategy is _RING_ALL
        c.offer_expires = expires
        self._seq = seq = self._seq + 1
        timers = self._timers
        fifo = timers.fifos.get(ring)
        if fifo and fifo[-1][0] <= expires:  # TimerQueue.add's usual case, inline
            fifo.append((expires, seq, _T_RING, c, fifo))
        else:
            timers.add(expires, seq, _T_RING, c, ring)
        c.ring_seq = seq
        q.counters.offers += 1
        ids = (agents[0].agent_id,) if len(agents) == 1 else tuple([a.agent_id for a in agents])
        out.append(Offer(cid, q.queue_id, ch, ids, ring, expires, c.callback))
        rr = strategy is _ROUND_ROBIN
        call = ch in _CALLS
        for a in agents:
            # _add_item inlined: OFFERED is a start phase (WORK_START)
            a.items[cid] = WorkItem(a, cid, ch, _PH_OFFERED, q, c, at)
            load = a.load
            load[ch] = load.get(ch, 0) + 1
            a.total += 1
            if call:
                a.call_items += 1
            a.n_offered += 1
            a.version += 1
            a.offered += 1
            if rr:
                q.rr_counter += 1
                a.rr[q.queue_id] = q.rr_counter
            self._publish(a, at, out)

    def _withdraw(
        self,
        c: QueuedContact,
        a: AgentRecord,
        reason: WithdrawReason,
        at: float,
        out: list[Decision],
    ) -> None:
        """Take one ringing offer back from ``a``; RONA / reject rules apply to single offers."""
        w = a.items[c.contact_id]
        c.offered_to = [o for o in c.offered_to if o is not a]
        self._drop_item(a, w)
        out.append(OfferWithdrawn(c.contact_id, a.agent_id, reason))
        q = c.queue
        assert q is not None
        not_ready: str | None = None
        if reason is _W_RING_TIMEOUT:
            q.counters.ring_timeouts += 1
            a.ring_timeouts += 1
            if q.cfg.rona_not_ready and not c.ring_all:
                not_ready = REASON_RONA
        elif reason is _W_REJECTED:
            q.counters.rejects += 1
            a.rejected += 1
            if q.cfg.reject_not_ready and not c.ring_all:
                not_ready = REASON_REJECTED
        if not_ready is not None and a.presence is not _OFFLINE:
            self._apply_presence(a, _NOT_READY, not_ready, at)
        self._publish(a, at, out)
        a.version += 1
        if a.presence is _READY:
            self._park(a)

    def _after_decline(
        self, c: QueuedContact, freed: list[AgentRecord], at: float, out: list[Decision]
    ) -> None:
        """Offers to ``freed`` were withdrawn. Once none rings any more the contact goes back
        to its place (ahead of later contacts); then the freed agents pick their best work,
        which may be an older contact; then the contact looks for another free agent."""
        if c.offered_to or c.state is not _OFFERED:
            for a in freed:
                self._serve(a, at, out)
            return
        c.ring_seq = -1
        c.state = _WAITING
        c.preferred = None
        q = c.queue
        assert q is not None
        if c.max_wait_due and not c.callback:
            c.max_wait_due = False
            c.lane = None  # it is in no lane's heap while it rang
            self._treat(c, q, q.cfg.on_max_wait, at, out)
            for a in freed:
                self._serve(a, at, out)
            return
        lane = self._lane(q, c)
        _enlane(c, lane)
        for a in freed:
            self._serve(a, at, out)
        if c.state is _WAITING and c.lane is lane:
            _unlane(c)
            self._place(c, at, out)

    def _decline(
        self, contact_id: str, agent_id: str, now: float, reason: WithdrawReason
    ) -> list[Decision]:
        out = self._advance(now)
        try:
            c = self._contact(contact_id)
            a = self._agent(agent_id)
            w = a.items.get(contact_id)
            if w is None or w.contact is not c or w.phase not in _RINGING:
                raise NotOffered(contact_id, agent_id)
        except RoutingError:
            self._carry = out
            raise
        self._withdraw(c, a, reason, now, out)
        self._after_decline(c, [a], now, out)
        return out

    def _withdraw_all(
        self, c: QueuedContact, reason: WithdrawReason, at: float, out: list[Decision]
    ) -> list[AgentRecord]:
        freed = list(c.offered_to)
        for a in freed:
            self._drop_item(a, a.items[c.contact_id])
            out.append(OfferWithdrawn(c.contact_id, a.agent_id, reason))
            self._publish(a, at, out)
        c.offered_to = ()
        c.ring_seq = -1
        return freed

    # ------------------------------------------------------------------ internals: queues

    def _enter(self, c: QueuedContact, q: QueueRecord, at: float, out: list[Decision]) -> None:
        """The contact arrives at ``q``: entry treatments, then offer or wait."""
        cfg = q.cfg
        treatment: Treatment | None = None
        if cfg.on_no_agents is not None and q.staffed() == 0:
            treatment = cfg.on_no_agents
        elif cfg.capacity is not None and q.waiting - q.callbacks_waiting >= cfg.capacity:
            treatment = cfg.on_full
        if treatment is not None and treatment.kind is not _TK_QUEUE:
            q.counters.entered += 1
            if treatment.kind is TreatmentKind.CALLBACK:
                self._join(c, q, at)
                self._make_callback(c)
                out.append(QueueAction(c.contact_id, q.queue_id, treatment.kind, treatment.message))
                self._place(c, at, out)
                return
            c.queue = q
            self._treat(c, q, treatment, at, out)
            return
        q.counters.entered += 1
        rank = self._join(c, q, at)
        self._place(c, at, out)
        if c.state is _WAITING:  # not offered: nobody else moved, ``rank`` still holds
            self._announce(c, q, out, rank)

    def _join(self, c: QueuedContact, q: QueueRecord, at: float) -> int:
        """Enter ``q`` (place, position, timers); returns the contacts ahead of it."""
        c.queue = q
        c.in_queue = True
        # A contact handed over from another engine arrived before ``at`` (contact_queued's
        # ``enqueued_at``) and has been in this queue since; any other joins now.
        entered = c.arrived_at if c.hops == 0 and c.arrived_at < at else at
        c.entered_at = entered
        c.stage = 0
        c.vkey = vkey = _place_of(c, q.cfg)
        q.waiting += 1
        c.rkey = key = (vkey, c.order)
        rank = q.ranked.add(key)
        entries = q.entries
        if not entries or entries[-1][0] <= entered:
            entries.append((entered, c.order, c))
        else:  # handed over: the entries stay in time order (the longest wait is the first)
            i = len(entries)
            while i and entries[i - 1][0] > entered:
                i -= 1
            entries.insert(i, (entered, c.order, c))
        # Timers armed by a previous queue (before an overflow) must not fire here.
        c.stage_seq = c.wait_seq = c.preferred_seq = c.announce_seq = -1
        if q.timed or c.preferred is not None:
            self._schedule_contact(c, q, entered, at)
        else:  # no timer to arm (most queues): ``_schedule_contact``'s outcome, inline
            c.preferred_until = 0.0
        return rank

    def _schedule_contact(
        self, c: QueuedContact, q: QueueRecord, entered: float, now: float
    ) -> None:
        """(Re)arm the contact's timers; stages already due are applied at once."""
        cfg = q.cfg
        while c.stage + 1 < len(q.stages) and entered + q.stages[c.stage + 1][0] <= now:
            c.stage += 1
        if c.stage + 1 < len(q.stages):
            after = q.stages[c.stage + 1][0]
            c.stage_seq = self._timer(entered + after, _T_STAGE, c, after)
        if cfg.max_wait is not None and not c.callback:
            c.wait_seq = self._timer(max(now, entered + cfg.max_wait), _T_MAXWAIT, c, cfg.max_wait)
        c.preferred_until = 0.0
        if c.preferred is not None and cfg.preferred_agent_wait > 0:
            c.preferred_until = entered + cfg.preferred_agent_wait
            if c.preferred_until > now:
                wait = cfg.preferred_agent_wait
                c.preferred_seq = self._timer(c.preferred_until, _T_PREFERRED, c, wait)
        if cfg.announce_interval is not None:
            interval = cfg.announce_interval
            c.announce_seq = self._timer(now + interval, _T_ANNOUNCE, c, interval)

    def _announce(
        self, c: QueuedContact, q: QueueRecord, out: list[Decision], rank: int | None = None
    ) -> None:
        if rank is None:
            rank = q.ranked.rank(c.rkey)
        position = rank + 1
        pace = q.pace
        if pace.samples >= 3:
            ewt = position * pace.interval
        else:
            ewt = pace.estimate(position, q.cfg.default_handle_seconds, q.staffed)
        out.append(AnnounceWait(c.contact_id, q.queue_id, position, ewt))

    def _make_callback(self, c: QueuedContact) -> None:
        q = c.queue
        assert q is not None
        c.callback = True
        c.wait_seq = -1
        c.max_wait_due = False
        q.callbacks_waiting += 1
        q.counters.callbacks += 1

    def _leave(self, c: QueuedContact, outcome: Outcome, at: float) -> None:
        """The contact leaves its queue (answered, abandoned, overflowed or treated)."""
        q = c.queue
        assert q is not None
        if c.in_queue:
            if c.lane is not None:
                if c.state is _WAITING:
                    _unlane(c)
                else:
                    c.lane = None
            c.in_queue = False
            q.waiting -= 1
            if c.callback:
                q.callbacks_waiting -= 1
            q.ranked.remove(c.rkey)
            entries = q.entries
            if entries[0][2] is c:
                _trim_entries(q)
        counters = q.counters
        if outcome is _ANSWERED:
            wait = at - c.entered_at
            counters.answered += 1
            counters.answer_wait_total += wait
            if wait <= q.cfg.service_level_seconds:
                counters.answered_in_sl += 1
            q.pace.answered(at)
        elif outcome is _ABANDONED:
            counters.abandoned += 1
        elif outcome is _OVERFLOWED:
            counters.overflowed += 1

    def _forget(self, c: QueuedContact) -> None:
        c.state = _ENDED
        c.lane = None
        del self._contacts[c.contact_id]

    def _treat(
        self, c: QueuedContact, q: QueueRecord, t: Treatment, at: float, out: list[Decision]
    ) -> None:
        """Apply an overflow / voicemail / callback / disconnect treatment to a contact."""
        kind = t.kind
        if kind is TreatmentKind.QUEUE:
            return
        if kind is TreatmentKind.CALLBACK:
            if c.in_queue and not c.callback:
                self._make_callback(c)
                out.append(QueueAction(c.contact_id, q.queue_id, kind, t.message))
            return
        if kind is TreatmentKind.OVERFLOW and c.hops < MAX_OVERFLOW_HOPS:
            assert t.target_queue is not None
            target = self._queues[t.target_queue]
            self._leave(c, Outcome.OVERFLOWED, at)
            c.hops += 1
            c.state = _WAITING
            out.append(Overflow(c.contact_id, q.queue_id, target.queue_id))
            self._enter(c, target, at, out)
            return
        if kind is TreatmentKind.OVERFLOW:
            kind = TreatmentKind.DISCONNECT
            t = Treatment(kind, message="no queue could take the contact")
        self._leave(c, Outcome.TREATED, at)
        q.counters.treated[kind] = q.counters.treated.get(kind, 0) + 1
        out.append(QueueAction(c.contact_id, q.queue_id, kind, t.message, t.target_flow))
        self._forget(c)

    def _unstaffed(self, queues: Iterable[QueueRecord], at: float, out: list[Decision]) -> None:
        """Queues left with no member agent signed in apply their no-agents action to the
        contacts waiting there, as they would to a newcomer (callbacks keep waiting: nobody
        is on the line)."""
        for q in queues:
            t = q.cfg.on_no_agents
            if t is None or t.kind is _TK_QUEUE or not q.waiting or q.staffed():
                continue
            # (A treatment moves only its own contact: the list stays true while it runs.)
            waiting = [
                c
                for _, order, c in q.entries
                if c.in_queue and c.queue is q and c.order == order
                if c.state is _WAITING and not c.callback
            ]
            for c in waiting:
                self._treat(c, q, t, at, out)

    def _lane(self, q: QueueRecord, c: QueuedContact) -> Lane:
        drop = q.stages[c.stage][2]
        extra = () if drop else c.extra
        key = (c.stage, extra, c.channel)
        lane = q.lanes.get(key)
        if lane is None:
            lane = self._new_lane(q, c.stage, extra, c.channel)
        return lane

    def _new_lane(self, q: QueueRecord, stage: int, extra: Requirement, ch: Channel) -> Lane:
        base: Lane | None = None
        if stage == 0 and extra and q.key_fn in LANE_FREE_KEYS:
            # Contacts with extra skills may take free agents from the queue's base lane.
            base = q.lanes.get((0, (), ch)) or self._new_lane(q, 0, (), ch)
        requirement = normalise(q.stages[stage][1], extra)
        lane = Lane(q, requirement, ch, q.key_fn, self._places, self._place_slot(), stage)
        q.lanes[(stage, extra, ch)] = lane
        self._index_lane(lane, base)
        return lane

    # ------------------------------------------------------------------ internals: indexes

    def _eligible(
        self, requirement: Requirement, within: Iterable[AgentRecord] | None = None
    ) -> list[AgentRecord]:
        """Agents meeting ``requirement``, searched ``within`` a known superset if given,
        else within the agents having its rarest skill."""
        if within is None:
            if not requirement:
                return list(self._agents.values())
            pools = [self._agents_by_skill.get(s, {}) for s, _ in requirement]
            within = min(pools, key=len).values()
        return [a for a in within if a.meets(requirement)]

    def _index_lane(self, lane: Lane, base: Lane | None = None) -> None:
        """Tell the eligible agents about a new lane, and park the free ones in it.

        A lane of contacts with extra skills whose agents are a good share of its queue's
        (``base`` lane: stage 0, no extra skill; the queue's key must not depend on the
        lane) parks nobody: it takes free agents from ``base``, passing over those without
        the extra skills. A free agent is so parked in fewer lanes (fewer entries to make
        and to find stale later); a lane of rare extra skills parks its own few agents."""
        key = lane.requirement[0][0] if lane.requirement else ""
        self._lanes_by_skill.setdefault(key, []).append(lane)
        ch = lane.channel
        assert ch is not None
        q = lane.queue
        # A stage-0 lane only narrows its queue's requirement: its agents are queue members.
        within = q.members.values() if q is not None and lane.stage == 0 else None
        eligible = self._eligible(lane.requirement, within)
        if base is not None and len(eligible) * _BORROW_SHARE >= base.eligible:
            lane.pool = base
        for a in eligible:
            a.lanes.setdefault(ch, []).append(lane)
            a.scan = None
            lane.eligible += 1
            if lane.pool is lane and a.can_take(ch):  # a free agent is parked where it can work
                key_fn = lane.key_fn
                assert key_fn is not None
                k1, k2 = key_fn(a, lane.requirement, lane.queue_id)
                heapq.heappush(lane.agents, (k1, k2, a.rank, a.version, a))

    def _index_queue(self, q: QueueRecord) -> None:
        key = q.base[0][0] if q.base else ""
        self._queues_by_skill.setdefault(key, []).append(q)
        for a in self._eligible(q.base):
            q.members[a.agent_id] = a
            a.queues.append(q)
            a.queue_slots.append(q.slot)
            self._members_in[a.counted][q.slot] += 1

    def _unindex_queue(self, q: QueueRecord) -> None:
        for lanes in self._lanes_by_skill.values():
            lanes[:] = [lane for lane in lanes if lane.queue is not q]
        for a in self._agents.values():
            for ch, lanes in a.lanes.items():
                a.lanes[ch] = [lane for lane in lanes if lane.queue is not q]
            a.scan = None
        for lane in q.lanes.values():
            self._places[lane.ix] = _NOBODY
            self._free_slots.append(lane.ix)
        for a in q.members.values():
            a.queues.remove(q)
            a.queue_slots.remove(q.slot)
        self._queues_by_skill[q.base[0][0] if q.base else ""].remove(q)
        q.members.clear()
        for counts in self._members_in:
            counts[q.slot] = 0
        q.lanes.clear()

    def _index_agent(self, a: AgentRecord) -> None:
        for skill in a.skills:
            self._agents_by_skill.setdefault(skill, {})[a.agent_id] = a
        for key in ("", *a.skills):
            for q in self._queues_by_skill.get(key, ()):
                if a.meets(q.base):
                    q.members[a.agent_id] = a
                    a.queues.append(q)
                    a.queue_slots.append(q.slot)
                    self._members_in[a.counted][q.slot] += 1
            for lane in self._lanes_by_skill.get(key, ()):
                if a.meets(lane.requirement):
                    assert lane.channel is not None
                    a.lanes.setdefault(lane.channel, []).append(lane)
                    a.scan = None
                    lane.eligible += 1

    def _unindex_agent(self, a: AgentRecord) -> None:
        for skill in a.skills:
            pool = self._agents_by_skill.get(skill)
            if pool is not None:
                pool.pop(a.agent_id, None)
        for q in a.queues:
            del q.members[a.agent_id]
            self._members_in[a.counted][q.slot] -= 1
        a.queues = []
        a.queue_slots = []
        for lanes in a.lanes.values():
            for lane in lanes:
                lane.eligible -= 1
        a.lanes = {}
        a.scan = None
        a.version += 1

    def _queue_slot(self) -> int:
        """A free slot of the ``_members_in`` lists for a new queue (zeroed)."""
        if self._free_queue_slots:
            return self._free_queue_slots.pop()
        for counts in self._members_in:
            counts.append(0)
        return len(self._members_in[0]) - 1

    def _place_slot(self) -> int:
        """A free slot of ``_places`` for a new lane."""
        if self._free_slots:
            return self._free_slots.pop()
        self._places.append(_NOBODY)
        return len(self._places) - 1
