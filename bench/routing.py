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
import itertools
import os
import random
import time
from array import array
from bisect import insort
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import cloudcc.routing
from _bench import Report, median, parse_args, percentile, rss_bytes
from cloudcc.routing import (
    AgentConfig,
    Channel,
    Offer,
    OfferWithdrawn,
    Presence,
    QueueConfig,
    RoutingEngine,
)
from cloudcc.routing.model import Requirement, normalise
from cloudcc.routing.strategies import STRATEGY_KEYS
from cloudcc.runtime import tune_gc

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


def build_workload(
    seed: int = 42, api: ModuleType = cloudcc.routing
) -> tuple[list[Any], list[Any]]:
    """Queues and agents, made of ``api``'s classes (``cloudcc.routing``, or a copy of
    another version of it: bench/routing_ab.py)."""
    rng = random.Random(seed)
    sr = api.SkillRequirement
    strategies = [
        api.Strategy.LONGEST_IDLE,
        api.Strategy.LONGEST_IDLE,
        api.Strategy.MOST_SKILLED,
        api.Strategy.LEAST_OCCUPIED,
        api.Strategy.ROUND_ROBIN,
    ]
    queues = []
    for i in range(N_QUEUES):
        s1, s2 = rng.sample(SKILLS, 2)
        req = (sr(s1, rng.randint(1, 6)), sr(s2, rng.randint(1, 6)))
        relax = (api.Relaxation(600, (sr(s1, 1),)),) if i % 10 == 0 else ()
        queues.append(
            api.QueueConfig(
                f"q{i}",
                required_skills=req,
                strategy=strategies[i % len(strategies)],
                ring_timeout=RING,
                wrap_up_seconds=WRAP,
                relaxations=relax,
            )
        )
    agents = [
        api.AgentConfig(
            f"a{i}",
            skills={s: rng.randint(1, 10) for s in rng.sample(SKILLS, 4)},
            capacity={api.Channel.VOICE: 1},
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

#: Kinds of engine call the driver makes (index into this tuple in ``Run.kinds``).
KINDS = ("arrival", "ready", "answer", "end", "abandon", "tick", "next_deadline")
K_ARRIVAL, K_READY, K_ANSWER, K_END, K_ABANDON, K_TICK, K_DEADLINE = range(len(KINDS))


class Run:
    """Every engine call of a drive: its kind, duration and the routing decisions it made."""

    def __init__(self) -> None:
        self.kinds = array("b")
        self.seconds = array("d")
        self.decided = array("l")

    def add(self, kind: int, seconds: float, decided: int) -> None:
        self.kinds.append(kind)
        self.seconds.append(seconds)
        self.decided.append(decided)

    def figures(self, lo: int = 0, hi: int | None = None) -> dict[str, float]:
        """Throughputs and latencies of calls ``lo:hi``: every call (the full cycle), the calls
        that made a routing decision, and the mean of each kind of call that did not."""
        kinds, secs, dec = self.kinds[lo:hi], self.seconds[lo:hi], self.decided[lo:hi]
        total = sum(secs)
        decisions = sum(dec)
        deciding = [t for t, d in zip(secs, dec, strict=True) if d]
        out = {
            "decisions": decisions,
            "calls": len(secs),
            "engine_s": total,
            "full_cycle_per_s": decisions / total if total else 0.0,
            "deciding_calls": len(deciding),
            "deciding_s": sum(deciding),
            "deciding_per_s": decisions / sum(deciding) if deciding else 0.0,
            "deciding_p50_ms": percentile(deciding, 50) * 1000,
            "deciding_p99_ms": percentile(deciding, 99) * 1000,
        }
        for k, name in enumerate(KINDS):
            for decided in (False, True):
                ts = [
                    t
                    for kk, t, d in zip(kinds, secs, dec, strict=True)
                    if kk == k and bool(d) == decided
                ]
                if ts:
                    key = f"{name}{'+decision' if decided else ''}"
                    out[f"n {key}"] = len(ts)
                    out[f"us {key}"] = sum(ts) / len(ts) * 1e6
        return out


class Shift:
    """The simulated shift that drives an engine: ``fill`` puts contacts in the queues
    (untimed), then ``calls`` runs the shift and yields (kind, seconds, decisions) for each
    engine call, timing only the call. ``api`` is the routing package whose decisions the
    engine returns (``cloudcc.routing``, or a copy of another version of it)."""

    def __init__(
        self,
        engine: Any,
        queues: list[Any],
        seed: int = 7,
        load: float = 1.0,
        api: ModuleType = cloudcc.routing,
    ) -> None:
        self.engine = engine
        self.api = api
        self.rng = random.Random(seed)
        self.qids = [q.queue_id for q in queues]
        self.extras = [api.SkillRequirement(s, 1) for s in EXTRA_SKILLS]
        self.load = load
        self.n = 0
        self.now = 0.0

    def new_contact(self, t: float) -> list[Any]:
        self.n += 1
        rng = self.rng
        extra = (rng.choice(self.extras),) if rng.random() < 0.1 else ()
        voice = self.api.Channel.VOICE
        return self.engine.contact_queued(
            f"c{self.n}", rng.choice(self.qids), voice, t, required_skills=extra
        )

    def fill(self, n_waiting: int) -> None:
        engine = self.engine
        if isinstance(engine, ScanRouter):
            engine.loading = True
        for _ in range(n_waiting):
            self.now += 0.001
            self.new_contact(self.now)
        if isinstance(engine, ScanRouter):
            engine.loading = False

    def calls(self) -> Iterator[tuple[int, float, int]]:
        """Agents start over a minute, then arrivals at ``load`` x what the agents can
        answer. After each event, the engine is asked for its next deadline (that call
        counts too, as ``K_DEADLINE``)."""
        engine, rng, api = self.engine, self.rng, self.api
        offer_t, withdrawn_t, routed_t = (
            api.Offer,
            api.OfferWithdrawn,
            (api.Overflow, api.QueueAction),
        )
        ready = api.Presence.READY
        events: list[tuple[float, int, str, Any]] = []
        seq = 0

        def push(t: float, kind: str, payload: Any) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(events, (t, seq, kind, payload))

        start = self.now
        for i, aid in enumerate(list(getattr(engine, "agents", None) or engine.agent_ids())):
            push(start + i * 60.0 / N_AGENTS, "ready", aid)  # the shift starts over a minute
        rate = self.load * N_AGENTS / (HANDLE + WRAP + 1.0)
        push(self.now + rng.expovariate(rate), "arrive", None)
        ticks: set[float] = set()
        ringing: dict[str, str] = {}
        answered: set[str] = set()
        perf = time.perf_counter
        while events:
            t, _, kind, payload = heapq.heappop(events)
            self.now = t
            if kind == "arrive":
                push(t + rng.expovariate(rate), "arrive", None)
                k = K_ARRIVAL
                t0 = perf()
                out = self.new_contact(t)
                dt = perf() - t0
                if rng.random() < 0.03:
                    push(t + rng.expovariate(1 / 300), "abandon", f"c{self.n}")
            elif kind == "ready":
                k = K_READY
                t0 = perf()
                out = engine.agent_state_changed(payload, ready, t)
                dt = perf() - t0
            elif kind == "accept":
                cid, aid = payload
                if ringing.get(cid) != aid:
                    continue
                del ringing[cid]
                answered.add(cid)
                k = K_ANSWER
                t0 = perf()
                out = engine.offer_accepted(cid, aid, t)
                dt = perf() - t0
                push(t + rng.expovariate(1 / HANDLE), "end", cid)
            elif kind == "end":
                k = K_END
                t0 = perf()
                out = engine.contact_ended(payload, t)
                dt = perf() - t0
            elif kind == "abandon":
                if payload in ringing or payload in answered:
                    continue
                k = K_ABANDON
                t0 = perf()
                out = engine.contact_abandoned(payload, t)
                dt = perf() - t0
            else:
                ticks.discard(t)
                k = K_TICK
                t0 = perf()
                out = engine.tick(t)
                dt = perf() - t0
            routed = 0
            for d in out:
                if isinstance(d, offer_t):
                    routed += 1
                    ringing[d.contact_id] = d.agent_ids[0]
                    if rng.random() < 0.01:  # nobody answers: ring timeout, RONA
                        push(t + RING + 30, "ready", d.agent_ids[0])
                    else:
                        push(t + rng.uniform(0.5, 3), "accept", (d.contact_id, d.agent_ids[0]))
                elif isinstance(d, withdrawn_t):
                    ringing.pop(d.contact_id, None)
                elif isinstance(d, routed_t):
                    routed += 1
            yield k, dt, routed
            t0 = perf()
            deadline = engine.next_deadline()  # the edge asks after every event: it counts
            dt = perf() - t0
            yield K_DEADLINE, dt, 0
            if deadline is not None and deadline not in ticks:
                ticks.add(deadline)
                push(deadline, "tick", None)


def drive(
    engine: Any,
    queues: list[QueueConfig],
    decisions_wanted: int,
    checkpoint: int = 0,
    seed: int = 7,
    n_waiting: int = N_WAITING,
    load: float = 1.0,
) -> dict[str, Any]:
    """Fill the queues with ``n_waiting`` contacts, start every agent over a minute, then run
    until ``decisions_wanted`` routing decisions were made, with arrivals at ``load`` x what
    the agents can answer. Returns every call's timing (a ``Run``), and the engine time spent
    when ``checkpoint`` decisions were reached (to compare equal prefixes)."""
    shift = Shift(engine, queues, seed, load)
    gc.collect()
    rss0 = rss_bytes()
    shift.fill(n_waiting)
    gc.collect()
    per_contact = (rss_bytes() - rss0) / n_waiting if n_waiting else 0.0
    # A long-running node loads its state once and then runs with the collector set up as
    # ``cloudcc serve`` sets it (cloudcc.runtime.tune_gc): what exists is frozen, out of
    # the full collections' reach, and young collections run every 50,000 allocations.
    tune_gc()
    run = Run()
    engine_time = 0.0
    decisions = 0
    time_at_checkpoint = 0.0
    for k, dt, routed in shift.calls():
        run.add(k, dt, routed)
        engine_time += dt
        decisions += routed
        if checkpoint and not time_at_checkpoint and decisions >= checkpoint:
            time_at_checkpoint = engine_time
        if k == K_DEADLINE and decisions >= decisions_wanted:
            break
    return {
        "run": run,
        "decisions": decisions,
        "engine_time": engine_time,
        "per_contact": per_contact,
        "time_at_checkpoint": time_at_checkpoint,
        "sim_seconds": shift.now,
    }


def segments(run: Run, n: int) -> list[dict[str, float]]:
    """The run cut in ``n`` consecutive parts with as many decisions each (rounds)."""
    total = sum(run.decided)
    bounds, seen, want = [0], 0, total / n
    for i, d in enumerate(run.decided):
        seen += d
        if seen >= want * len(bounds) and len(bounds) < n:
            bounds.append(i + 1)
    bounds.append(len(run.decided))
    return [run.figures(lo, hi) for lo, hi in itertools.pairwise(bounds)]


def summarise(label: str, parts: list[dict[str, float]]) -> dict[str, float]:
    """Median of each figure over the rounds; prints every round."""
    keys = [k for k in parts[0] if all(k in p for p in parts)]
    med = {k: median([p[k] for p in parts]) for k in keys}
    for i, p in enumerate(parts):
        print(
            f"{label} round {i + 1}: {p['decisions']:.0f} decisions in {p['calls']:.0f} calls; "
            f"all events {p['full_cycle_per_s']:.0f} decisions/s; deciding calls "
            f"{p['deciding_per_s']:.0f} decisions/s, p50 {p['deciding_p50_ms']:.3f} ms, "
            f"p99 {p['deciding_p99_ms']:.3f} ms"
        )
    kinds = {k[3:]: round(med[k], 1) for k in keys if k.startswith("us ")}
    print(f"{label}: median mean-microseconds per call kind: {kinds}")
    return med


def prime_lanes(engine: Any, queues: list[Any], api: ModuleType = cloudcc.routing) -> None:
    """Make the engine meet every kind of contact once (each queue, with and without each
    extra skill), as a running engine has: the lanes they wait in then exist, and their
    one-off creation (finding the qualified agents) is not timed as a routing decision."""
    n = 0
    for q in queues:
        for extra in ((), *((api.SkillRequirement(s, 1),) for s in EXTRA_SKILLS)):
            n += 1
            voice = api.Channel.VOICE
            engine.contact_queued(f"prime{n}", q.queue_id, voice, 0.0, required_skills=extra)
            engine.contact_abandoned(f"prime{n}", 0.0)


def load_engine(queues: list[Any], agents: list[Any], api: ModuleType = cloudcc.routing) -> Any:
    engine = api.RoutingEngine("bench")
    for q in queues:
        engine.configure_queue(q, 0.0)
    for a in agents:
        engine.configure_agent(a, 0.0)
        engine.agent_login(a.agent_id, 0.0, presence=api.Presence.NOT_READY)
    return engine


def main() -> None:
    args = parse_args(__doc__ or "routing benchmark")
    quick = args.quick
    # One core for the engine: the other is left to whatever else runs on the machine.
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    report = Report()
    queues, agents = build_workload()

    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    engine = load_engine(queues, agents)
    gc.collect()
    per_agent = (rss_bytes() - rss0) / N_AGENTS
    print(f"configured {N_QUEUES} queues, {N_AGENTS} agents in {time.perf_counter() - t0:.1f} s")
    print(f"engine build: {cloudcc.routing.BUILD} (cloudcc.routing.build)")
    wanted = 30_000 if quick else 300_000
    scan_wanted = 150 if quick else 1000
    rounds = 3 if quick else 5
    r = drive(engine, queues, wanted, checkpoint=scan_wanted)
    waiting = sum(engine.queue_stats(q, r["sim_seconds"]).waiting for q in engine.queue_ids())
    print(
        f"backlog workload: {r['decisions']} routing decisions, "
        f"{r['engine_time']:.2f} s engine time, {waiting} contacts waiting at the end "
        f"({r['sim_seconds']:.0f} s simulated)"
    )
    backlog = summarise("backlog", segments(r["run"], rounds))
    prefix_time = r["time_at_checkpoint"]
    r_per_contact = r["per_contact"]
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
    del engine, standby, snapshot, r
    gc.unfreeze()
    gc.collect()

    # Idle agents: no backlog, arrivals at 80 % of what the agents can take, so contacts
    # find a free agent on arrival (the other kind of routing decision).
    idle_engine = load_engine(queues, agents)
    prime_lanes(idle_engine, queues)
    i = drive(idle_engine, queues, wanted // 3, n_waiting=0, load=0.8)
    idle = summarise("idle agents", segments(i["run"], rounds))
    del idle_engine, i
    gc.unfreeze()
    gc.collect()

    scan = ScanRouter(queues, agents)
    for a in agents:
        scan.agent_login(a.agent_id, 0.0)
    s = drive(scan, queues, scan_wanted)
    scan_rate = s["decisions"] / s["engine_time"]
    scan_lat = [t for t, d in zip(s["run"].seconds, s["run"].decided, strict=True) if d]
    prefix_rate = scan_wanted / prefix_time
    print(
        f"scan: {s['decisions']} routing decisions, {s['engine_time']:.2f} s, "
        f"{scan_rate:.0f} decisions/s, p99 {percentile(scan_lat, 99) * 1000:.2f} ms; "
        f"engine on the same first {scan_wanted} decisions: {prefix_rate:.0f} decisions/s"
    )
    # Medians over the rounds (consecutive parts of each run with as many decisions).
    report.add(
        "routing_decisions_per_s",
        backlog["full_cycle_per_s"],
        "decisions/s over the engine time of every event: arrival, answer, end, "
        "wrap-up timer, next_deadline; backlog workload",
        ">=",
        50_000,
    )
    report.add(
        "routing_decision_calls_per_s",
        backlog["deciding_per_s"],
        "decisions/s over the engine time of the deciding calls only: a freed agent "
        "gets the best waiting contact, its wrap-up end is the same call; backlog workload",
        ">=",
        50_000,
    )
    report.add(
        "routing_decision_p99",
        backlog["deciding_p99_ms"],
        "ms, p99 latency of those deciding calls, backlog workload",
        "<",
        1,
    )
    report.add(
        "routing_arrival_decisions_per_s",
        idle["deciding_per_s"],
        "decisions/s over the engine time of the deciding calls only: an arriving "
        "contact gets the best free agent; idle-agents workload",
        ">=",
        50_000,
    )
    report.add(
        "routing_arrival_decision_p99",
        idle["deciding_p99_ms"],
        "ms, p99 latency of those deciding calls, idle-agents workload",
        "<",
        1,
    )
    for key, name, what in (
        ("us arrival", "routing_arrival_call_us", "contact_queued that waits"),
        ("us answer", "routing_answer_call_us", "offer_accepted"),
        ("us end", "routing_end_call_us", "contact_ended (wrap-up starts)"),
        ("us next_deadline", "routing_next_deadline_call_us", "next_deadline"),
    ):
        report.add(name, backlog[key], f"us mean per {what} call, backlog workload")
    report.add("routing_bytes_per_contact", r_per_contact, "bytes")
    report.add("routing_bytes_per_agent", per_agent, "bytes")
    report.add("routing_speedup_vs_scan", prefix_rate / scan_rate, "x")
    report.add("routing_snapshot_restore_s", restore_s, "s")
    for fig in report.figures:
        if fig.met() is False:
            fig.unit += " - GOAL NOT MET"
    report.print()


if __name__ == "__main__":
    main()
