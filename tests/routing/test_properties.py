"""Random event sequences against the engine, checked by invariants and by a brute-force
ledger rebuilt from the inputs and the decisions alone (hypothesis stateful testing)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from cloudcc.routing import (
    AgentConfig,
    AgentState,
    AgentStateChanged,
    Channel,
    ContactReleased,
    Decision,
    ForceAction,
    Offer,
    OfferWithdrawn,
    Overflow,
    Presence,
    QueueAction,
    QueueConfig,
    Relaxation,
    RoutingEngine,
    SignOutReason,
    SkillRequirement,
    Strategy,
    Treatment,
    TreatmentKind,
)
from cloudcc.routing import events as ev
from cloudcc.routing.model import Requirement, WorkPhase, normalise

SKILLS = ("en", "de", "vip")
AGENTS = ("a1", "a2", "a3", "a4", "a5")
CHANNELS = (Channel.VOICE, Channel.CHAT)


def meets(skills: dict[str, int], requirement: Requirement) -> bool:
    return all(skills.get(s, 0) >= level for s, level in requirement)


@dataclass
class Record:
    """What the ledger knows of one contact, from inputs and decisions only."""

    cid: str
    order: int
    queue: str
    channel: Channel
    priority: int
    extra: Requirement
    preferred: str | None
    entered_at: float
    state: str = "waiting"  # waiting | offered | connected | ended
    ringing: set[str] = field(default_factory=set)
    agent: str | None = None
    callback: bool = False
    outcome: str | None = None


@dataclass
class Counters:
    entered: int = 0
    answered: int = 0
    in_sl: int = 0
    wait_total: float = 0.0
    abandoned: int = 0
    overflowed: int = 0
    treated: dict[TreatmentKind, int] = field(default_factory=dict)


class RoutingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.e = RoutingEngine("prop")
        self.now = 0.0
        self.n = 0
        self.records: dict[str, Record] = {}
        self.counters: dict[str, Counters] = {}
        self.queues: dict[str, QueueConfig] = {}
        self.agents: dict[str, AgentConfig] = {}
        self.direct: dict[str, str] = {}  # direct/outbound contact -> agent
        self.log: list[ev.InputEvent] = []

    def do(self, event: ev.InputEvent) -> list[Decision]:
        """Apply an input event, recording it for the replay check."""
        self.log.append(event)
        return self.e.handle(event)

    # ------------------------------------------------------------------ setup

    @initialize(
        strategies=st.lists(st.sampled_from(list(Strategy)), min_size=3, max_size=3),
        skills=st.lists(
            st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=3),
            min_size=len(AGENTS),
            max_size=len(AGENTS),
        ),
        chat=st.lists(st.integers(0, 3), min_size=len(AGENTS), max_size=len(AGENTS)),
        mixing=st.lists(st.booleans(), min_size=len(AGENTS), max_size=len(AGENTS)),
        wrap=st.sampled_from([0.0, 5.0, None]),
        rona=st.booleans(),
    )
    def setup(
        self,
        strategies: list[Strategy],
        skills: list[dict[str, int]],
        chat: list[int],
        mixing: list[bool],
        wrap: float | None,
        rona: bool,
    ) -> None:
        queues = [
            QueueConfig(
                "general",
                strategy=strategies[0],
                ring_timeout=12,
                ring_all_limit=3,
                max_wait=200,
                on_max_wait=Treatment(TreatmentKind.VOICEMAIL),
            ),
            QueueConfig(
                "sales",
                required_skills=(SkillRequirement("en", 5),),
                relaxations=(Relaxation(30, (SkillRequirement("en", 2),)),),
                strategy=strategies[1],
                wrap_up_seconds=wrap,
                max_wait=90,
                on_max_wait=Treatment(TreatmentKind.OVERFLOW, target_queue="general"),
                rona_not_ready=rona,
            ),
            QueueConfig(
                "support",
                required_skills=(SkillRequirement("de", 3),),
                strategy=strategies[2],
                ring_timeout=15,
                preferred_agent_wait=20,
                capacity=3,
                on_full=Treatment(TreatmentKind.CALLBACK),
                reject_not_ready=rona,
                on_no_agents=Treatment(TreatmentKind.DISCONNECT, message="closed"),
            ),
        ]
        for q in queues:
            self.apply(self.do(ev.QueueConfigured(q, 0)))
            self.queues[q.queue_id] = q
            self.counters[q.queue_id] = Counters()
        for i, aid in enumerate(AGENTS):
            cfg = AgentConfig(
                aid,
                skills=skills[i],
                capacity={Channel.VOICE: 1, Channel.CHAT: chat[i]},
                calls_block_other=mixing[i],
            )
            self.agents[aid] = cfg
            self.apply(self.do(ev.AgentConfigured(cfg, 0)))
            self.apply(self.do(ev.AgentLoggedIn(aid, 0)))

    # ------------------------------------------------------------------ ledger

    def apply(self, decisions: list[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Offer):
                r = self.records[d.contact_id]
                assert r.state == "waiting", f"{d.contact_id} offered while {r.state}"
                assert r.queue == d.queue_id
                if len(d.agent_ids) > 1:
                    assert self.queues[d.queue_id].strategy is Strategy.RING_ALL
                assert len(set(d.agent_ids)) == len(d.agent_ids)
                self.check_offer(r, d)
                r.state = "offered"
                r.ringing = set(d.agent_ids)
            elif isinstance(d, OfferWithdrawn):
                r = self.records[d.contact_id]
                assert d.agent_id in r.ringing
                r.ringing.discard(d.agent_id)
                if r.state == "offered" and not r.ringing:
                    r.state = "waiting"
            elif isinstance(d, Overflow):
                r = self.records[d.contact_id]
                assert r.queue == d.from_queue and r.state == "waiting"
                self.counters[d.from_queue].overflowed += 1
                self.counters[d.to_queue].entered += 1
                r.queue = d.to_queue
                r.entered_at = self.now
            elif isinstance(d, QueueAction):
                r = self.records[d.contact_id]
                if d.kind is TreatmentKind.CALLBACK:
                    r.callback = True
                else:
                    c = self.counters[d.queue_id].treated
                    c[d.kind] = c.get(d.kind, 0) + 1
                    r.state, r.outcome = "ended", "treated"
            elif isinstance(d, ContactReleased):
                if d.contact_id in self.records:
                    self.records[d.contact_id].state = "ended"
                self.direct.pop(d.contact_id, None)
            elif isinstance(d, AgentStateChanged):
                assert d.at == self.now

    def check_offer(self, r: Record, d: Offer) -> None:
        """Skills satisfied, and no older same-priority contact of the queue was passed over."""
        if r.cid not in set(self.e.contact_ids()):
            return
        info = self.e.contact_info(r.cid)
        live = set(self.e.contact_ids())
        for aid in d.agent_ids:
            assert meets(self.agents[aid].skills, info.requirement), (aid, info.requirement)
            if r.preferred == aid:
                continue
            for o in self.records.values():
                if (
                    o.state == "waiting"
                    and o.queue == r.queue
                    and o.priority == r.priority
                    and o.channel == r.channel
                    and o.order < r.order
                    and o.cid in live
                    and not self.reserved_for_preferred(o)
                    and not self.stage_changes_now(o)
                ):
                    req = self.e.contact_info(o.cid).requirement
                    assert not meets(self.agents[aid].skills, req), (
                        f"{aid} got {r.cid} while older {o.cid} waited"
                    )

    def reserved_for_preferred(self, r: Record) -> bool:
        wait = self.queues[r.queue].preferred_agent_wait
        return r.preferred is not None and self.now <= r.entered_at + wait

    def stage_changes_now(self, r: Record) -> bool:
        return any(r.entered_at + x.after == self.now for x in self.queues[r.queue].relaxations)

    def live(self, *states: str) -> list[Record]:
        return [r for r in self.records.values() if r.state in states]

    # ------------------------------------------------------------------ rules: contacts

    @rule(
        queue=st.sampled_from(["general", "sales", "support"]),
        channel=st.sampled_from(CHANNELS),
        priority=st.integers(0, 2),
        vip=st.booleans(),
        preferred=st.none() | st.sampled_from(AGENTS),
    )
    def contact_arrives(
        self, queue: str, channel: Channel, priority: int, vip: bool, preferred: str | None
    ) -> None:
        self.n += 1
        cid = f"c{self.n}"
        extra = (SkillRequirement("vip", 2),) if vip else ()
        self.records[cid] = Record(
            cid, self.n, queue, channel, priority, normalise(extra), preferred, self.now
        )
        self.counters[queue].entered += 1
        self.apply(
            self.do(
                ev.ContactQueued(
                    cid,
                    queue,
                    channel,
                    self.now,
                    priority=priority,
                    required_skills=extra,
                    preferred_agent=preferred,
                )
            )
        )

    @rule(data=st.data())
    def agent_answers(self, data: st.DataObject) -> None:
        ringing = [(r, a) for r in self.live("offered") for a in sorted(r.ringing)]
        if not ringing:
            return
        r, aid = data.draw(st.sampled_from(ringing))
        self.apply(self.do(ev.OfferAccepted(r.cid, aid, self.now)))
        c = self.counters[r.queue]
        wait = self.now - r.entered_at
        c.answered += 1
        c.wait_total += wait
        c.in_sl += wait <= self.queues[r.queue].service_level_seconds
        r.state, r.agent, r.outcome = "connected", aid, "answered"
        r.ringing = set()

    @rule(data=st.data())
    def phone_starts_ringing(self, data: st.DataObject) -> None:
        reserved = [
            (r, a)
            for r in self.live("offered")
            for a in sorted(r.ringing)
            if self.e.agent_work(a).get(r.cid) is WorkPhase.OFFERED
        ]
        if reserved:
            r, aid = data.draw(st.sampled_from(reserved))
            self.apply(self.do(ev.OfferAlerting(r.cid, aid, self.now)))

    @rule(data=st.data(), timeout=st.booleans())
    def agent_declines(self, data: st.DataObject, timeout: bool) -> None:
        ringing = [(r, a) for r in self.live("offered") for a in sorted(r.ringing)]
        if not ringing:
            return
        r, aid = data.draw(st.sampled_from(ringing))
        decline = ev.OfferTimedOut if timeout else ev.OfferRejected
        self.apply(self.do(decline(r.cid, aid, self.now)))

    @rule(data=st.data())
    def customer_abandons(self, data: st.DataObject) -> None:
        waiting = self.live("waiting", "offered")
        if not waiting:
            return
        r = data.draw(st.sampled_from(waiting))
        queue = r.queue
        self.apply(self.do(ev.ContactAbandoned(r.cid, self.now)))
        self.counters[queue].abandoned += 1
        r.state, r.outcome = "ended", "abandoned"

    @rule(data=st.data())
    def customer_asks_for_callback(self, data: st.DataObject) -> None:
        waiting = [r for r in self.live("waiting", "offered") if not r.callback]
        if not waiting:
            return
        r = data.draw(st.sampled_from(waiting))
        self.apply(self.do(ev.CallbackRequested(r.cid, self.now)))
        r.callback = True

    @rule(data=st.data())
    def contact_ends(self, data: st.DataObject) -> None:
        connected = self.live("connected")
        if not connected:
            return
        r = data.draw(st.sampled_from(connected))
        self.apply(self.do(ev.ContactEnded(r.cid, self.now)))
        r.state = "ended"

    @rule(data=st.data())
    def wrap_up_done(self, data: st.DataObject) -> None:
        wrapping = [
            (aid, cid)
            for aid in AGENTS
            for cid, phase in self.e.agent_work(aid).items()
            if phase is WorkPhase.WRAP_UP
        ]
        if wrapping:
            aid, cid = data.draw(st.sampled_from(wrapping))
            self.apply(self.do(ev.WrapUpDone(aid, cid, self.now)))

    # ------------------------------------------------------------------ rules: agents

    @rule(
        aid=st.sampled_from(AGENTS),
        presence=st.sampled_from([Presence.READY, Presence.NOT_READY, Presence.WORKING]),
    )
    def agent_changes_presence(self, aid: str, presence: Presence) -> None:
        stats = self.e.agent_stats(aid, self.now)
        if stats.presence is Presence.OFFLINE:
            self.apply(self.do(ev.AgentLoggedIn(aid, self.now, presence=presence)))
        elif presence is not stats.presence or presence is Presence.NOT_READY:
            self.apply(self.do(ev.AgentPresenceChanged(aid, presence, self.now)))

    @rule(aid=st.sampled_from(AGENTS), reason=st.sampled_from(list(SignOutReason)))
    def agent_signs_out(self, aid: str, reason: SignOutReason) -> None:
        stats = self.e.agent_stats(aid, self.now)
        if stats.presence is Presence.OFFLINE:
            return
        work = self.e.agent_work(aid).values()
        if reason is SignOutReason.SELF and any(p is not WorkPhase.WRAP_UP for p in work):
            return
        connected = [r for r in self.live("connected") if r.agent == aid]
        self.apply(self.do(ev.AgentLoggedOut(aid, self.now, reason)))
        for r in connected:
            assert r.state == "ended"  # released by a ContactReleased decision
        assert self.e.agent_work(aid) == {}

    @rule(aid=st.sampled_from(AGENTS), action=st.sampled_from(list(ForceAction)))
    def supervisor_forces(self, aid: str, action: ForceAction) -> None:
        presence = self.e.agent_stats(aid, self.now).presence
        if presence is Presence.OFFLINE or (
            action is ForceAction.IDLE and presence is Presence.READY
        ):
            return
        self.apply(self.do(ev.AgentForced(aid, action, "sup", self.now, seconds=25)))

    @rule(
        aid=st.sampled_from(AGENTS),
        skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=3),
    )
    def skills_change(self, aid: str, skills: dict[str, int]) -> None:
        cfg = AgentConfig(
            aid,
            skills=skills,
            capacity=self.agents[aid].capacity,
            calls_block_other=self.agents[aid].calls_block_other,
        )
        self.agents[aid] = cfg
        self.apply(self.do(ev.AgentConfigured(cfg, self.now)))

    @rule(
        level=st.integers(1, 8),
        strategy=st.sampled_from(list(Strategy)),
        step=st.sampled_from([30.0, 60.0, 1e6]),
    )
    def sales_queue_edited(self, level: int, strategy: Strategy, step: float) -> None:
        cfg = dataclasses.replace(
            self.queues["sales"],
            required_skills=(SkillRequirement("en", level),),
            relaxations=(Relaxation(30, (SkillRequirement("en", min(level, 2)),)),),
            strategy=strategy,
            priority_step_seconds=step,
        )
        self.queues["sales"] = cfg
        self.apply(self.do(ev.QueueConfigured(cfg, self.now)))

    @rule(aid=st.sampled_from(AGENTS), outbound=st.booleans())
    def direct_or_outbound_call(self, aid: str, outbound: bool) -> None:
        stats = self.e.agent_stats(aid, self.now)
        if stats.presence is Presence.OFFLINE or stats.load.get(Channel.VOICE, 0):
            return
        self.n += 1
        cid = f"d{self.n}"
        if outbound:
            self.apply(self.do(ev.OutboundReserved(aid, cid, self.now)))
        else:
            self.apply(self.do(ev.DirectContactStarted(aid, cid, Channel.VOICE, self.now)))
        self.direct[cid] = aid

    @rule(data=st.data())
    def direct_call_progresses(self, data: st.DataObject) -> None:
        if not self.direct:
            return
        cid = data.draw(st.sampled_from(sorted(self.direct)))
        aid = self.direct[cid]
        if self.e.agent_work(aid).get(cid) is WorkPhase.PRE_OCCUPIED and data.draw(st.booleans()):
            self.apply(self.do(ev.OutboundConnected(cid, self.now)))
            return
        self.apply(self.do(ev.ContactEnded(cid, self.now)))
        del self.direct[cid]

    # ------------------------------------------------------------------ rules: time

    @rule(dt=st.floats(0.5, 60))
    def time_passes(self, dt: float) -> None:
        target = self.now + dt
        deadline = self.e.next_deadline()
        if deadline is not None and deadline < target:
            target = deadline  # stop at each timer so the ledger knows when things happen
        self.now = target
        self.apply(self.do(ev.Tick(self.now)))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def ringing_and_connected_agree_with_agents(self) -> None:
        holders: dict[str, list[tuple[str, WorkPhase]]] = {}
        for aid in AGENTS:
            for cid, phase in self.e.agent_work(aid).items():
                holders.setdefault(cid, []).append((aid, phase))
        for r in self.records.values():
            held = holders.get(r.cid, [])
            if r.state == "offered":
                ringing = (WorkPhase.OFFERED, WorkPhase.ALERTING)
                assert sorted(a for a, p in held if p in ringing) == sorted(r.ringing)
                assert set(self.e.contact_info(r.cid).agent_ids) == r.ringing
            elif r.state == "connected":
                assert held == [(r.agent, WorkPhase.ACTIVE)]
            elif r.state == "waiting":
                assert held == []

    @invariant()
    def capacity_is_never_exceeded(self) -> None:
        for aid, cfg in self.agents.items():
            load = self.e.agent_stats(aid, self.now).load
            for ch, n in load.items():
                assert n <= cfg.capacity.get(ch, 0), (aid, ch, n)

    @invariant()
    def no_free_agent_while_a_matching_contact_waits(self) -> None:
        for r in self.live("waiting"):
            if self.reserved_for_preferred(r):
                continue
            req = self.e.contact_info(r.cid).requirement
            for aid, cfg in self.agents.items():
                if meets(cfg.skills, req) and self.can_take(aid, r.channel):
                    raise AssertionError(f"{aid} is free for waiting {r.cid}")

    def can_take(self, aid: str, ch: Channel) -> bool:
        """Brute-force reading of the capacity and mixing rules."""
        cfg = self.agents[aid]
        stats = self.e.agent_stats(aid, self.now)
        work = self.e.agent_work(aid)
        if stats.presence is not Presence.READY or WorkPhase.PRE_OCCUPIED in work.values():
            return False
        load = stats.load
        if load.get(ch, 0) >= cfg.capacity.get(ch, 0):
            return False
        calls = load.get(Channel.VOICE, 0) + load.get(Channel.VIDEO, 0)
        others = sum(load.values()) - calls
        if ch.is_call:
            return not (others and cfg.other_blocks_calls)
        return not (calls and cfg.calls_block_other)

    @invariant()
    def statistics_equal_the_ledger(self) -> None:
        for qid, c in self.counters.items():
            s = self.e.queue_stats(qid, self.now)
            waiting = [r for r in self.live("waiting", "offered") if r.queue == qid]
            assert s.waiting == len(waiting)
            assert s.callbacks_waiting == sum(r.callback for r in waiting)
            assert (s.entered, s.answered, s.abandoned, s.overflowed) == (
                c.entered,
                c.answered,
                c.abandoned,
                c.overflowed,
            )
            assert s.answered_in_sl == c.in_sl
            assert dict(s.treated) == c.treated
            if c.answered:
                assert s.average_speed_of_answer == pytest.approx(c.wait_total / c.answered)
            oldest = min((r.entered_at for r in waiting), default=None)
            assert s.longest_wait == pytest.approx(0.0 if oldest is None else self.now - oldest)
            base = normalise(self.queues[qid].required_skills)
            expected: dict[AgentState, int] = dict.fromkeys(AgentState, 0)
            for aid, cfg in self.agents.items():
                if meets(cfg.skills, base):
                    expected[self.e.agent_stats(aid, self.now).state] += 1
            assert dict(s.agents_by_state) == expected

    @invariant()
    def engine_tracks_exactly_the_live_contacts(self) -> None:
        live = {r.cid for r in self.live("waiting", "offered", "connected")}
        assert set(self.e.contact_ids()) == live

    def teardown(self) -> None:
        """A standby replaying the recorded inputs reaches the same state. Then drain:
        everyone ready, every offer answered, every contact ended. Each contact must end
        answered, abandoned or treated (voicemail, disconnect)."""
        restored = RoutingEngine.restore(self.e.snapshot())
        for standby in (RoutingEngine.replay(self.log), restored):
            assert standby.wallboard(self.now) == self.e.wallboard(self.now)
            assert standby.next_deadline() == self.e.next_deadline()
            for aid in AGENTS:
                assert standby.agent_stats(aid, self.now) == self.e.agent_stats(aid, self.now)
                assert standby.agent_work(aid) == self.e.agent_work(aid)
            for cid in self.e.contact_ids():
                assert standby.contact_info(cid) == self.e.contact_info(cid)
                if standby.contact_info(cid).state.value == "waiting":
                    assert standby.position(cid) == self.e.position(cid)
        later = self.now + 500  # the restored engine goes on exactly like the live one
        assert restored.tick(later) == RoutingEngine.restore(self.e.snapshot()).tick(later)
        for aid in AGENTS:
            if self.e.agent_stats(aid, self.now).presence is Presence.OFFLINE:
                self.apply(self.e.agent_login(aid, self.now))
            self.apply(self.e.agent_state_changed(aid, Presence.NOT_READY, self.now))
            everything = AgentConfig(
                aid, skills=dict.fromkeys(SKILLS, 10), capacity={Channel.VOICE: 1, Channel.CHAT: 3}
            )
            self.apply(self.e.configure_agent(everything, self.now))
            self.agents[aid] = self.e.agent_config(aid)
        for cid in list(self.direct):
            self.apply(self.e.contact_ended(cid, self.now))
            del self.direct[cid]
        for aid in AGENTS:
            self.apply(self.e.force_agent(aid, ForceAction.IDLE, "sup", self.now))
        for _ in range(10_000):
            if not self.live("waiting", "offered", "connected"):
                break
            for r in self.live("offered"):
                self.agent_answers_first(r)
            for r in self.live("connected"):
                self.apply(self.e.contact_ended(r.cid, self.now))
                r.state = "ended"
            self.time_passes(10)
            for aid in AGENTS:
                for cid, phase in self.e.agent_work(aid).items():
                    if phase is WorkPhase.WRAP_UP:
                        self.apply(self.e.wrapup_done(aid, cid, self.now))
        assert not self.live("waiting", "offered", "connected")
        assert list(self.e.contact_ids()) == []
        for r in self.records.values():
            assert r.outcome in ("answered", "abandoned", "treated"), r

    def agent_answers_first(self, r: Record) -> None:
        aid = sorted(r.ringing)[0]
        self.apply(self.e.offer_accepted(r.cid, aid, self.now))
        c = self.counters[r.queue]
        wait = self.now - r.entered_at
        c.answered += 1
        c.wait_total += wait
        c.in_sl += wait <= self.queues[r.queue].service_level_seconds
        r.state, r.agent, r.outcome = "connected", aid, "answered"
        r.ringing = set()


RoutingMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_routing_engine_invariants = RoutingMachine.TestCase


@pytest.mark.slow
def test_routing_engine_invariants_long_run() -> None:
    run_state_machine_as_test(
        RoutingMachine,
        settings=settings(
            max_examples=400,
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
