"""Discrete-event simulation of a contact center driven through the real RoutingEngine.

Poisson arrivals per queue, exponential handle times, optional exponential patience
(abandonment) and answer delay; the engine's own timers (ring timeouts, wrap-up) are
honoured through ``next_deadline``. Used to check the engine against Erlang C and for
capacity planning ("what service level would N agents give?").
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloudcc.routing.engine import RoutingEngine
from cloudcc.routing.events import Offer
from cloudcc.routing.exceptions import InvalidConfig
from cloudcc.routing.model import AgentConfig, Channel, QueueConfig, SkillRequirement
from cloudcc.routing.stats import QueueCounters


@dataclass(frozen=True, slots=True)
class Arrivals:
    """A Poisson stream of contacts into one queue."""

    queue_id: str
    rate: float  # contacts per second
    handle_seconds: float  # mean (exponential)
    channel: Channel = Channel.VOICE
    patience_seconds: float | None = None  # mean (exponential); None: never abandons
    required_skills: tuple[SkillRequirement, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueResult:
    queue_id: str
    arrived: int
    answered: int
    answered_in_sl: int
    abandoned: int
    service_level: float
    average_speed_of_answer: float
    abandon_rate: float


@dataclass(slots=True)
class Simulation:
    queues: Sequence[QueueConfig]
    agents: Sequence[AgentConfig]
    arrivals: Sequence[Arrivals]
    duration: float
    warmup: float = 0.0
    answer_delay: float = 0.0
    seed: int = 1
    #: After the arrivals stop, give waiting contacts this long to finish.
    drain: float = 3600.0
    _results: dict[str, QueueResult] = field(default_factory=dict)

    def run(self) -> dict[str, QueueResult]:
        """Simulate ``warmup + duration`` seconds; figures cover contacts arriving after
        the warmup (so the queue starts in its steady state)."""
        if self.duration <= 0 or self.warmup < 0:
            raise InvalidConfig("simulation", "duration must be > 0 and warmup >= 0")
        rng = random.Random(self.seed)
        engine = RoutingEngine("simulation")
        for qc in self.queues:
            engine.configure_queue(qc, 0.0)
        for ac in self.agents:
            engine.configure_agent(ac, 0.0)
            engine.agent_login(ac.agent_id, 0.0)
        end = self.warmup + self.duration
        # events: (time, seq, kind, payload)
        events: list[tuple[float, int, str, object]] = []
        seq = 0

        def push(t: float, kind: str, payload: object) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(events, (t, seq, kind, payload))

        for i, stream in enumerate(self.arrivals):
            push(rng.expovariate(stream.rate), "arrive", i)
        measured: dict[str, set[str]] = {q.queue_id: set() for q in self.queues}
        counted = {q.queue_id: QueueCounters() for q in self.queues}
        handle: dict[str, float] = {}
        stream_of: dict[str, Arrivals] = {}
        live: set[str] = set()
        n = 0
        ticks: set[float] = set()
        while events:
            t, _, kind, payload = heapq.heappop(events)
            if t > end + self.drain:
                break
            if kind == "arrive":
                if t >= end:
                    continue
                assert isinstance(payload, int)
                stream = self.arrivals[payload]
                push(t + rng.expovariate(stream.rate), "arrive", payload)
                n += 1
                cid = f"c{n}"
                stream_of[cid] = stream
                live.add(cid)
                if t >= self.warmup:
                    measured[stream.queue_id].add(cid)
                    counted[stream.queue_id].entered += 1
                handle[cid] = rng.expovariate(1.0 / stream.handle_seconds)
                if stream.patience_seconds is not None:
                    push(t + rng.expovariate(1.0 / stream.patience_seconds), "abandon", cid)
                decisions = engine.contact_queued(
                    cid,
                    stream.queue_id,
                    stream.channel,
                    t,
                    required_skills=stream.required_skills,
                )
            elif kind == "abandon":
                assert isinstance(payload, str)
                info = engine.contact_info(payload) if payload in live else None
                if info is None or info.state.value == "connected":
                    continue
                live.discard(payload)
                q = info.queue_id or ""
                if payload in measured.get(q, ()):
                    counted[q].abandoned += 1
                decisions = engine.contact_abandoned(payload, t)
            elif kind == "accept":
                assert isinstance(payload, tuple)
                cid, agent_id = payload
                if cid not in live or agent_id not in engine.contact_info(cid).agent_ids:
                    continue
                info = engine.contact_info(cid)
                q = info.queue_id or ""
                if cid in measured.get(q, ()):
                    c = counted[q]
                    c.answered += 1
                    wait = t - info.entered_at
                    c.answer_wait_total += wait
                    if wait <= engine.queue_config(q).service_level_seconds:
                        c.answered_in_sl += 1
                decisions = engine.offer_accepted(cid, agent_id, t)
                push(t + handle[cid], "end", cid)
            elif kind == "end":
                assert isinstance(payload, str)
                live.discard(payload)
                decisions = engine.contact_ended(payload, t)
            else:  # engine timer
                ticks.discard(t)
                decisions = engine.tick(t)
            for d in decisions:
                if isinstance(d, Offer):
                    push(t + self.answer_delay, "accept", (d.contact_id, d.agent_ids[0]))
            deadline = engine.next_deadline()
            if deadline is not None and deadline not in ticks:
                ticks.add(deadline)
                push(deadline, "tick", None)
        self._results = {qid: _result(qid, c) for qid, c in counted.items()}
        return self._results


def _result(queue_id: str, c: QueueCounters) -> QueueResult:
    finished = c.answered + c.abandoned
    return QueueResult(
        queue_id=queue_id,
        arrived=c.entered,
        answered=c.answered,
        answered_in_sl=c.answered_in_sl,
        abandoned=c.abandoned,
        service_level=c.answered_in_sl / finished if finished else 0.0,
        average_speed_of_answer=c.answer_wait_total / c.answered if c.answered else 0.0,
        abandon_rate=c.abandoned / finished if finished else 0.0,
    )
