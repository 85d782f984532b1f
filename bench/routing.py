"""Routing engine benchmark: 10,000 agents, 1,000 queues, 20 skills with levels and
100,000 waiting contacts, driven in simulated time (Poisson arrivals, exponential handle
times, wrap-up timers, abandons, ring timeouts). Only time spent inside the engine counts.

The same workload is then run through a straightforward scan-all-agents / scan-all-queues
router (ScanRouter below) for the speed-up figure.

    python bench/routing.py [--quick]
"""

from __future__ import annotations

import gc
import heapq
import random
import time
from bisect import insort
from collections.abc import Callable, Sequence
from typing import Any

from _bench import Report, parse_args, percentile, rss_bytes
from cloudcc.routing import (
    AgentConfig,
    Channel,
    Offer,
    OfferWithdrawn,
    Overflow,
    Presence,
    QueueAction,
    QueueConfig,
    Relaxation,
    RoutingEngine,
    SkillRequirement,
    Strategy,
)
from cloudcc.routing.model import Requirement, normalise
from cloudcc.routing.strategies import STRATEGY_KEYS

N_AGENTS = 10_000
N_QUEUES = 1_000
N_SKILLS = 20
N_WAITING = 100_000
HANDLE = 120.0  # mean handle time, s
WRAP = 5.0
RING = 20.0
SKILLS = [f"s{i}" for i in range(N_SKILLS)]
EXTRA_SKILLS = SKILLS[:3]  # the IVR adds these to some contacts (language, VIP)
VOICE = Channel.VOICE


def build_workload(seed: int = 42) -> tuple[list[QueueConfig], list[AgentConfig]]:
    rng = random.Random(seed)
    strategies = [
        Strategy.LONGEST_IDLE,
        Strategy.LONGEST_IDLE,
        Strategy.MOST_SKILLED,
        Strategy.LEAST_OCCUPIED,
        Strategy.ROUND_ROBIN,
    ]
    queues = []
    for i in range(N_QUEUES):
        s1, s2 = rng.sample(SKILLS, 2)
        req = (SkillRequirement(s1, rng.randint(1, 6)), SkillRequirement(s2, rng.randint(1, 6)))
        relax = (Relaxation(600, (SkillRequirement(s1, 1),)),) if i % 10 == 0 else ()
        queues.append(
            QueueConfig(
                f"q{i}",
                required_skills=req,
                strategy=strategies[i % len(strategies)],
                ring_timeout=RING,
                wrap_up_seconds=WRAP,
                relaxations=relax,
            )
        )
    agents = [
        AgentConfig(
            f"a{i}",
            skills={s: rng.randint(1, 10) for s in rng.sample(SKILLS, 4)},
            capacity={VOICE: 1},
        )
        for i in range(N_AGENTS)
    ]
    return queues, agents


# ---------------------------------------------------------------------- the scan baseline


class _ScanAgent:
    __slots__ = (
        "agent_id",
        "available_since",
        "contact",
        "rr",
        "skills",
        "state",
        "total",
        "wrap_until",
    )

    def __init__(self, cfg: AgentConfig) -> None:
        self.agent_id = cfg.agent_id
        self.skills = dict(cfg.skills)
        self.state = "offline"
        self.available_since = 0.0
        self.total = 0
        self.rr: dict[str, int] = {}
        self.contact: str | None = None
        self.wrap_until = 0.0


class ScanRouter:
    """What one writes first: every new contact scans all agents; every freed agent scans
    all queues (and each queue's waiting list) for the best contact it can serve."""

    def __init__(self, queues: Sequence[QueueConfig], agents: Sequence[AgentConfig]) -> None:
        self.queues = {q.queue_id: q for q in queues}
        self.base = {q.queue_id: normalise(q.required_skills) for q in queues}
        self.keys = {q.queue_id: STRATEGY_KEYS[q.strategy] for q in queues}
        self.waiting: dict[str, list[tuple[float, int, str]]] = {q: [] for q in self.queues}
        self.info: dict[str, tuple[str, Requirement, float, int, float]] = {}
        self.agents = {a.agent_id: _ScanAgent(a) for a in agents}
        self.ringing: dict[str, tuple[str, float]] = {}
        self.timers: list[tuple[float, int, str, str]] = []
        self.rr = 0
        self.seq = 0
        self.loading = False  # while filling the queues nobody is ready: skip the agent scan

    @staticmethod
    def _meets(skills: dict[str, int], req: Requirement) -> bool:
        return all(skills.get(s, 0) >= level for s, level in req)

    def _requirement(self, cid: str, now: float) -> Requirement:
        qid, extra, entered, _, _ = self.info[cid]
        q = self.queues[qid]
        req = self.base[qid]
        for r in q.relaxations:
            if now - entered >= r.after:
                req = normalise(r.required_skills)
        return normalise(req, extra)

    def _offer(self, cid: str, agent: _ScanAgent, now: float) -> Offer:
        qid = self.info[cid][0]
        agent.state = "reserved"
        agent.contact = cid
        self.rr += 1
        agent.rr[qid] = self.rr
        self.ringing[cid] = (agent.agent_id, now + RING)
        self.seq += 1
        heapq.heappush(self.timers, (now + RING, self.seq, "ring", cid))
        return Offer(cid, qid, VOICE, (agent.agent_id,), RING, now + RING)

    def _serve(self, agent: _ScanAgent, now: float) -> list[Any]:
        agent.state = "ready"
        best: tuple[float, int, str] | None = None
        for qid, waiting in self.waiting.items():
            if not waiting:
                continue
            if not self.queues[qid].relaxations and not self._meets(agent.skills, self.base[qid]):
                continue
            for entry in waiting:
                if self._meets(agent.skills, self._requirement(entry[2], now)):
                    if best is None or entry < best:
                        best = entry
                    break
        if best is None:
            return []
        self.waiting[self.info[best[2]][0]].remove(best)
        return [self._offer(best[2], agent, now)]

    def contact_queued(
        self, cid: str, qid: str, channel: Channel, now: float, required_skills: Any = ()
    ) -> list[Any]:
        self.seq += 1
        q = self.queues[qid]
        extra = normalise(required_skills)
        vkey = now
        self.info[cid] = (qid, extra, now, self.seq, vkey)
        req = normalise(self.base[qid], extra)
        key_fn: Callable[..., tuple[float, float]] = self.keys[qid]
        best: _ScanAgent | None = None
        best_key: tuple[float, float] | None = None
        for a in () if self.loading else self.agents.values():
            if a.state == "ready" and self._meets(a.skills, req):
                k = key_fn(a, req, qid)
                if best_key is None or k < best_key:
                    best, best_key = a, k
        if best is not None:
            return [self._offer(cid, best, now)]
        insort(self.waiting[q.queue_id], (vkey, self.seq, cid))
        return []

    def offer_accepted(self, cid: str, aid: str, now: float) -> list[Any]:
        self.tick(now)
        del self.ringing[cid]
        a = self.agents[aid]
        a.state = "busy"
        del self.info[cid]
        return []

    def contact_ended(self, cid: str, now: float) -> list[Any]:
        out = self.tick(now)
        for a in self.agents.values():  # straightforward: find the agent by scanning
            if a.contact == cid:
                a.state = "wrap"
                a.contact = None
                self.seq += 1
                heapq.heappush(self.timers, (now + WRAP, self.seq, "wrap", a.agent_id))
        return out

    def contact_abandoned(self, cid: str, now: float) -> list[Any]:
        out = self.tick(now)
        if cid in self.ringing:
            aid, _ = self.ringing.pop(cid)
            a = self.agents[aid]
            a.contact = None
            out += self._serve(a, now)
        else:
            qid, _, _, order, vkey = self.info[cid]
            self.waiting[qid].remove((vkey, order, cid))
        del self.info[cid]
        return out

    def agent_login(self, aid: str, now: float) -> list[Any]:
        self.agents[aid].state = "not_ready"
        return []

    def agent_state_changed(self, aid: str, presence: Presence, now: float) -> list[Any]:
        out = self.tick(now)
        a = self.agents[aid]
        a.available_since = now
        return out + self._serve(a, now)

    def tick(self, now: float) -> list[Any]:
        out: list[Any] = []
        while self.timers and self.timers[0][0] <= now:
            at, _, kind, ref = heapq.heappop(self.timers)
            if kind == "wrap":
                a = self.agents[ref]
                a.available_since = at
                out += self._serve(a, at)
            elif ref in self.ringing and self.ringing[ref][1] == at:
                aid, _ = self.ringing.pop(ref)
                self.agents[aid].state = "not_ready"
                self.agents[aid].contact = None
                out.append(OfferWithdrawn(ref, aid, "ring_timeout"))  # type: ignore[arg-type]
                qid, _, _, order, vkey = self.info[ref]
                insort(self.waiting[qid], (vkey, order, ref))
        return out

    def next_deadline(self) -> float | None:
        return self.timers[0][0] if self.timers else None


# ---------------------------------------------------------------------- the driver


def drive(
    engine: Any,
    queues: list[QueueConfig],
    decisions_wanted: int,
    checkpoint: int = 0,
    seed: int = 7,
) -> dict[str, Any]:
    """Fill the queues with N_WAITING contacts, start every agent over a minute, then run
    until ``decisions_wanted`` routing decisions were made. Returns timings (and the engine
    time spent when ``checkpoint`` decisions were reached, to compare equal prefixes)."""
    rng = random.Random(seed)
    qids = [q.queue_id for q in queues]
    n = 0
    now = 0.0

    def new_contact(t: float) -> list[Any]:
        nonlocal n
        n += 1
        extra = (SkillRequirement(rng.choice(EXTRA_SKILLS), 1),) if rng.random() < 0.1 else ()
        return engine.contact_queued(f"c{n}", rng.choice(qids), VOICE, t, required_skills=extra)

    gc.collect()
    rss0 = rss_bytes()
    if isinstance(engine, ScanRouter):
        engine.loading = True
    for _ in range(N_WAITING):
        now += 0.001
        new_contact(now)
    if isinstance(engine, ScanRouter):
        engine.loading = False
    gc.collect()
    per_contact = (rss_bytes() - rss0) / N_WAITING
    # A long-running node loads its state once: moving it out of the collector's reach
    # (gc.freeze) keeps full collections from walking a million settled objects.
    gc.freeze()

    events: list[tuple[float, int, str, Any]] = []
    seq = 0

    def push(t: float, kind: str, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, payload))

    start = now
    for i, aid in enumerate(list(getattr(engine, "agents", None) or engine.agent_ids())):
        push(start + i * 60.0 / N_AGENTS, "ready", aid)  # the shift starts over a minute
    rate = N_AGENTS / (HANDLE + WRAP + 1.0)
    push(now + rng.expovariate(rate), "arrive", None)
    ticks: set[float] = set()
    latencies: list[float] = []  # calls that made a routing decision
    all_calls = 0
    engine_time = 0.0
    decisions = 0
    time_at_checkpoint = 0.0
    by_kind: dict[str, float] = {}
    count_kind: dict[str, int] = {}
    ringing: dict[str, str] = {}
    answered: set[str] = set()
    perf = time.perf_counter
    while events and decisions < decisions_wanted:
        t, _, kind, payload = heapq.heappop(events)
        if kind == "arrive":
            push(t + rng.expovariate(rate), "arrive", None)
            t0 = perf()
            out = new_contact(t)
            dt = perf() - t0
            if rng.random() < 0.03:
                push(t + rng.expovariate(1 / 300), "abandon", f"c{n}")
        elif kind == "ready":
            t0 = perf()
            out = engine.agent_state_changed(payload, Presence.READY, t)
            dt = perf() - t0
        elif kind == "accept":
            cid, aid = payload
            if ringing.get(cid) != aid:
                continue
            del ringing[cid]
            answered.add(cid)
            t0 = perf()
            out = engine.offer_accepted(cid, aid, t)
            dt = perf() - t0
            push(t + rng.expovariate(1 / HANDLE), "end", cid)
        elif kind == "end":
            t0 = perf()
            out = engine.contact_ended(payload, t)
            dt = perf() - t0
        elif kind == "abandon":
            if payload in ringing or payload in answered:
                continue
            t0 = perf()
            out = engine.contact_abandoned(payload, t)
            dt = perf() - t0
        else:
            ticks.discard(t)
            t0 = perf()
            out = engine.tick(t)
            dt = perf() - t0
        routed = 0
        for d in out:
            if isinstance(d, Offer):
                routed += 1
                ringing[d.contact_id] = d.agent_ids[0]
                if rng.random() < 0.01:  # nobody answers: ring timeout, RONA
                    push(t + RING + 30, "ready", d.agent_ids[0])
                else:
                    push(t + rng.uniform(0.5, 3), "accept", (d.contact_id, d.agent_ids[0]))
            elif isinstance(d, OfferWithdrawn):
                ringing.pop(d.contact_id, None)
            elif isinstance(d, Overflow | QueueAction):
                routed += 1
        engine_time += dt
        by_kind[kind] = by_kind.get(kind, 0.0) + dt
        count_kind[kind] = count_kind.get(kind, 0) + 1
        all_calls += 1
        decisions += routed
        if routed:
            latencies.append(dt)
        if checkpoint and not time_at_checkpoint and decisions >= checkpoint:
            time_at_checkpoint = engine_time
        t0 = perf()
        deadline = engine.next_deadline()  # the edge asks after every event: it counts
        engine_time += perf() - t0
        if deadline is not None and deadline not in ticks:
            ticks.add(deadline)
            push(deadline, "tick", None)
    return {
        "decisions": decisions,
        "engine_time": engine_time,
        "calls": all_calls,
        "latencies": latencies,
        "per_contact": per_contact,
        "time_at_checkpoint": time_at_checkpoint,
        "per_kind_us": {k: round(by_kind[k] / count_kind[k] * 1e6, 1) for k in by_kind},
        "sim_seconds": t,
    }


def main() -> None:
    args = parse_args(__doc__ or "routing benchmark")
    quick = args.quick
    report = Report()
    queues, agents = build_workload()

    gc.collect()
    rss0 = rss_bytes()
    engine = RoutingEngine("bench")
    t0 = time.perf_counter()
    for q in queues:
        engine.configure_queue(q, 0.0)
    for a in agents:
        engine.configure_agent(a, 0.0)
        engine.agent_login(a.agent_id, 0.0, presence=Presence.NOT_READY)
    gc.collect()
    per_agent = (rss_bytes() - rss0) / N_AGENTS
    print(f"configured {N_QUEUES} queues, {N_AGENTS} agents in {time.perf_counter() - t0:.1f} s")
    wanted = 30_000 if quick else 300_000
    scan_wanted = 150 if quick else 1000
    r = drive(engine, queues, wanted, checkpoint=scan_wanted)
    waiting = sum(engine.queue_stats(q, r["sim_seconds"]).waiting for q in engine.queue_ids())
    rate = r["decisions"] / r["engine_time"]
    lat = r["latencies"]
    p50 = percentile(lat, 50) * 1000
    p99 = percentile(lat, 99) * 1000
    print(
        f"engine: {r['decisions']} routing decisions in {r['calls']} events, "
        f"{r['engine_time']:.2f} s engine time, {rate:.0f} decisions/s, "
        f"{r['calls'] / r['engine_time']:.0f} events/s; p50 {p50:.3f} ms p99 {p99:.3f} ms; "
        f"{waiting} contacts waiting at the end ({r['sim_seconds']:.0f} s simulated)"
    )
    print(f"engine: mean microseconds per event kind {r['per_kind_us']}")
    t0 = time.perf_counter()
    snapshot = engine.snapshot()
    t1 = time.perf_counter()
    standby = RoutingEngine.restore(snapshot)
    t2 = time.perf_counter()
    assert standby.wallboard(r["sim_seconds"]) == engine.wallboard(r["sim_seconds"])
    print(
        f"standby: snapshot {len(snapshot) / 1e6:.1f} MB in {t1 - t0:.2f} s, "
        f"restored in {t2 - t1:.2f} s"
    )
    restore_s = t2 - t0
    del engine, standby, snapshot
    gc.unfreeze()
    gc.collect()

    scan = ScanRouter(queues, agents)
    for a in agents:
        scan.agent_login(a.agent_id, 0.0)
    s = drive(scan, queues, scan_wanted)
    scan_rate = s["decisions"] / s["engine_time"]
    prefix_rate = scan_wanted / r["time_at_checkpoint"]
    print(
        f"scan: {s['decisions']} routing decisions in {s['calls']} events, "
        f"{s['engine_time']:.2f} s, {scan_rate:.0f} decisions/s, "
        f"p99 {percentile(s['latencies'], 99) * 1000:.2f} ms; engine on the same first "
        f"{scan_wanted} decisions: {prefix_rate:.0f} decisions/s"
    )
    report.add("routing_decisions_per_s", rate, "decisions/s", ">=", 50_000)
    report.add("routing_decision_p99", p99, "ms", "<", 1)
    report.add("routing_bytes_per_contact", r["per_contact"], "bytes")
    report.add("routing_bytes_per_agent", per_agent, "bytes")
    report.add("routing_speedup_vs_scan", prefix_rate / scan_rate, "x")
    report.add("routing_snapshot_restore_s", restore_s, "s")
    report.print()


if __name__ == "__main__":
    main()
