"""The asyncio side of routing: one ``RoutingEngine`` per tenant, its timers and its inputs.

The engine is pure (``cloudcc.routing``); this module loads each tenant's agents and queues
from the store into it, keeps it in step with configuration changes (``agent.*``/``queue.*``
events), calls ``tick`` at the engine's next deadline, and hands every decision on: agent
state changes become ``agent.state_changed`` events on the bus, decisions about a contact go
to the contact layer's handler.

On a cluster (``attach``) a tenant's engine runs only on the node holding its lease
(cluster/lease.py): ``call``, ``query`` and ``ensure_agent`` go to that node
(cluster/routing.py), and its decisions about a contact go back to the node that holds the
call. A node that takes a tenant over rebuilds the engine from the store (``loaders``: the
agents' sign-ins, the contacts agents are talking on) and every node hands it the routing
state of its live calls (``VoiceService.resubmit_routing``); work taken from the store that
no live node claims within ``settle_seconds`` is ended (its node died with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from cloudcc.bus import LocalBus
from cloudcc.routing import engine as routing_engine
from cloudcc.routing.events import (
    AgentStateChanged,
    ContactReleased,
    Decision,
    NotReadyOverrun,
)
from cloudcc.routing.exceptions import RoutingError
from cloudcc.routing.model import (
    BUILTIN_REASONS,
    NOT_READY_STATES,
    AgentConfig,
    Channel,
    QueueConfig,
    ReasonCode,
    Relaxation,
    SkillRequirement,
    Strategy,
    Treatment,
    TreatmentKind,
)
from cloudcc.store.codes import ReasonCodeRow
from cloudcc.store.db import Database
from cloudcc.store.tables import Agent, SkillQueue

log = logging.getLogger("cloudcc.acd")

RoutingEngine = routing_engine.RoutingEngine
DecisionHandler = Callable[[str, Decision], None]
#: Run when a tenant's engine was built from the store, before it serves (cluster takeover).
EngineLoader = Callable[[str, RoutingEngine], Awaitable[None]]

#: Engine operations that bring a contact into the engine: where its contact id is (a node
#: that forwards one of these holds the contact; decisions about it go back there).
_CONTACT_ARG = {
    "contact_queued": 0,
    "callback_requested": 0,
    "direct_contact_started": 1,
    "outbound_reserved": 1,
}
#: Engine operations that end a contact in the engine.
_CONTACT_DONE = ("contact_abandoned", "contact_ended")
#: What another node may read of an engine (``Acd.query``).
_QUERIES = frozenset(
    {"agent_ids", "queue_ids", "agent_stats", "reason_codes", "wallboard", "queue_report",
     "routing_status", "in_wrapup", "signed_in"}
)  # fmt: skip

#: What a stored row that cannot be turned into engine configuration raises (an unknown
#: strategy, a malformed overflow document, an out-of-range value written past the API).
_BAD_ROW = (RoutingError, ValueError, KeyError, TypeError, AttributeError)


@dataclass(frozen=True)
class ConfigFault:
    """A queue or agent row the routing engine could not load: it is left out, the rest of
    the tenant routes, and the fault is reported until the row is fixed or deleted."""

    kind: str  # "queue" | "agent" | "reason_code"
    id: str
    name: str
    error: str
    at: float


def _treatment(
    action: dict[str, Any] | None, default: Treatment | None, ids: dict[str, str]
) -> Treatment | None:
    if not action:
        return default
    kind = action.get("action")
    if kind == "queue":
        target = ids.get(action["target"])
        if target is None:  # the target queue was deleted since
            return Treatment(TreatmentKind.DISCONNECT, message=action.get("message"))
        return Treatment(TreatmentKind.OVERFLOW, target_queue=target)
    if kind == "flow":
        return Treatment(
            TreatmentKind.FLOW, message=action.get("message"), target_flow=action["target"]
        )
    if kind == "voicemail":
        return Treatment(TreatmentKind.VOICEMAIL, message=action.get("message"))
    if kind == "callback":
        return Treatment(TreatmentKind.CALLBACK, message=action.get("message"))
    if kind == "disconnect":
        return Treatment(TreatmentKind.DISCONNECT, message=action.get("message"))
    raise ValueError(f"unknown overflow action {kind!r}")


def queue_config(row: SkillQueue, ids: dict[str, str]) -> QueueConfig:
    """The engine's view of a queue row; ``ids`` maps the tenant's queue names to ids."""
    required = {k: int(v) for k, v in (row.required_skills or {}).items()}
    overflow = row.overflow or {}
    relaxations = []
    current = dict(required)
    for step in sorted(overflow.get("relax") or [], key=lambda r: r["after_seconds"]):
        current = {
            skill: max(1, level - int(step.get("min_level_drop", 1)))
            for skill, level in current.items()
            if skill not in set(step.get("drop_skills") or ())
        }
        relaxations.append(
            Relaxation(
                after=float(step["after_seconds"]),
                required_skills=tuple(SkillRequirement(s, lv) for s, lv in sorted(current.items())),
            )
        )
    return QueueConfig(
        queue_id=row.id,
        required_skills=tuple(SkillRequirement(s, lv) for s, lv in sorted(required.items())),
        strategy=Strategy(row.strategy),
        ring_timeout=float(row.ring_timeout_seconds),
        wrap_up_seconds=float(row.wrapup_seconds),
        service_level_seconds=float(row.service_level_seconds),
        relaxations=tuple(relaxations),
        capacity=row.capacity,
        on_full=_treatment(overflow.get("queue_full"), None, ids)
        or Treatment(TreatmentKind.DISCONNECT, message="All our agents are busy."),
        max_wait=float(row.max_wait_seconds),
        on_max_wait=_treatment(overflow.get("wait_timeout"), None, ids)
        or Treatment(TreatmentKind.VOICEMAIL),
        on_no_agents=_treatment(overflow.get("no_agents"), None, ids),
        announce_interval=float(row.announce_interval_seconds) if row.announce_position else None,
        priority=int(row.priority),
    )


def agent_config(row: Agent) -> AgentConfig:
    return AgentConfig(
        agent_id=row.id,
        skills={k: int(v) for k, v in (row.skills or {}).items()},
        capacity={
            Channel.VOICE: 1,
            Channel.VIDEO: 1,
            Channel.CHAT: row.max_chats,
            Channel.MESSAGE: row.max_chats,
            Channel.EMAIL: 1,
        },
    )


def reason_code(row: ReasonCodeRow) -> ReasonCode:
    """The engine's view of a tenant's reason code row."""
    return ReasonCode(
        code=row.code,
        label=row.label,
        max_seconds=float(row.max_seconds) if row.max_seconds else None,
        auto_ready=bool(row.auto_ready),
        cti_code=NOT_READY_STATES.get(row.cec_state, 7),
    )


BUILTIN_CODES = frozenset(r.code for r in BUILTIN_REASONS)


class Acd:
    """Every tenant's routing engine on this node."""

    def __init__(self, db: Database, bus: LocalBus, clock: Callable[[], float] = time.time):
        self.db = db
        self.bus = bus
        self.clock = clock
        self.handlers: list[DecisionHandler] = []
        self._engines: dict[str, RoutingEngine] = {}
        self._queue_ids: dict[str, dict[str, str]] = {}  # tenant -> queue name -> id
        self._queue_names: dict[str, dict[str, str]] = {}  # tenant -> queue id -> name
        self._queue_music: dict[str, dict[str, str]] = {}  # tenant -> queue id -> music
        self._loading: dict[str, asyncio.Future[RoutingEngine]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._deadlines: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._faults: dict[str, dict[str, ConfigFault]] = {}  # tenant -> row id -> fault
        bus.on(
            lambda e: e.type.startswith(("agent.", "queue.")) and "." in e.type,
            self._on_config_event,
        )
        bus.on(lambda e: e.type.startswith("reason_code."), self._on_reason_event)
        #: Set by ``attach`` on a cluster: the tenant's engine runs on its lease's owner.
        self.cluster: Any = None  # cloudcc.cluster.routing.ClusterRouting
        self.loaders: list[EngineLoader] = []
        self.settle_seconds = 3.0
        self._homes: dict[tuple[str, str], str] = {}  # (tenant, contact) -> node holding it
        self._unclaimed: dict[str, dict[str, str]] = {}  # tenant -> contact -> agent (store)

    # --- the cluster ----------------------------------------------------------------------

    def attach(self, cluster: Any) -> None:
        """Run each tenant's engine only where its lease is (cloudcc.cluster.routing)."""
        self.cluster = cluster
        cluster.handle = self.handle_request
        cluster.deliver = self._deliver_here
        cluster.on_gained = self._take
        cluster.on_lost = self._give_up

    async def _take(self, tenant_id: str) -> None:
        """This node holds the tenant's lease now: build its engine from the store."""
        self._drop(tenant_id)
        await self.engine(tenant_id)
        unclaimed = self._unclaimed.get(tenant_id)
        if unclaimed:
            loop = asyncio.get_running_loop()
            loop.call_later(self.settle_seconds, self._end_unclaimed, tenant_id)

    def _end_unclaimed(self, tenant_id: str) -> None:
        """Work taken from the store that no live node claimed: its call died with its node."""
        unclaimed = self._unclaimed.pop(tenant_id, {})
        engine = self._engines.get(tenant_id)
        if engine is None:
            return
        for contact_id, agent_id in unclaimed.items():
            log.info("tenant %s: agent %s's contact %s is gone; ending its work",
                     tenant_id, agent_id, contact_id)  # fmt: skip
            with contextlib.suppress(RoutingError):
                self.run(tenant_id, engine, "contact_ended", contact_id)

    def claim_from_store(self, tenant_id: str, contact_id: str, agent_id: str) -> None:
        """A loader marked ``agent_id`` busy with ``contact_id`` from the store: ended unless
        a live node claims it within ``settle_seconds``."""
        self._unclaimed.setdefault(tenant_id, {})[contact_id] = agent_id

    def _give_up(self, tenant_id: str) -> None:
        self._drop(tenant_id)

    def _drop(self, tenant_id: str) -> None:
        self._engines.pop(tenant_id, None)
        timer = self._timers.pop(tenant_id, None)
        if timer is not None:
            timer.cancel()
        self._deadlines.pop(tenant_id, None)
        for key in [k for k in self._homes if k[0] == tenant_id]:
            del self._homes[key]

    def runs(self, tenant_id: str) -> bool:
        """Whether this node runs the tenant's engine (always, off a cluster)."""
        return self.cluster is None or self.cluster.owns(tenant_id)

    async def handle_request(self, tenant_id: str, request: tuple[Any, ...], origin: str) -> Any:
        """Run a routing request here (this node holds the tenant's lease)."""
        engine = await self.engine(tenant_id)
        kind = request[0]
        if kind == "call":
            _, method, args, kw = request
            index = _CONTACT_ARG.get(method)
            if index is not None and len(args) > index:
                contact_id = str(args[index])
                unclaimed = self._unclaimed.get(tenant_id, {})
                if method == "direct_contact_started" and contact_id in unclaimed:
                    del unclaimed[contact_id]  # a live node holds it: the store was right
                    self._homes[(tenant_id, contact_id)] = origin
                    return []
                if self.cluster is not None and origin != self.cluster.node:
                    self._homes[(tenant_id, contact_id)] = origin
            elif method in _CONTACT_DONE and args:
                self._homes.pop((tenant_id, str(args[0])), None)
            return self.run(tenant_id, engine, method, *args, **kw)
        if kind == "query":
            return self._answer(tenant_id, engine, request[1], tuple(request[2]))
        if kind == "ensure_agent":
            return await self._ensure_agent_here(tenant_id, engine, str(request[1]))
        raise RoutingError(f"unknown routing request {kind!r}")

    def _answer(
        self, tenant_id: str, engine: RoutingEngine, name: str, args: tuple[Any, ...]
    ) -> Any:
        if name not in _QUERIES:
            raise RoutingError(f"unknown routing query {name!r}")
        now = self.clock()
        if name == "queue_report":
            (queue_id,) = args
            fault = self.fault(tenant_id, queue_id)
            error = fault.error if fault is not None else None
            if queue_id not in set(engine.queue_ids()):
                return ("fault", error or "it is not loaded yet")
            return ("ok", engine.queue_stats(queue_id, now), error)
        if name == "routing_status":
            return {
                "queues": len(list(engine.queue_ids())),
                "agents": len(list(engine.agent_ids())),
                "faults": [asdict(f) for f in self.faults(tenant_id)],
            }
        if name in ("in_wrapup", "signed_in"):
            (agent_id,) = args
            if agent_id not in set(engine.agent_ids()):
                return False
            state = engine.agent_stats(agent_id, now).state.value
            return state == "wrap_up" if name == "in_wrapup" else state != "offline"
        value = getattr(engine, name)
        if callable(value):
            value = value(*args, now) if name in ("agent_stats", "wallboard") else value(*args)
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, Iterator):
            return list(value)
        return value

    async def query(self, tenant_id: str, name: str, *args: Any) -> Any:
        """Read the tenant's engine where it runs: ``agent_ids``, ``queue_ids``,
        ``agent_stats(agent)``, ``reason_codes``, ``wallboard()``, ``queue_report(queue)``,
        ``routing_status()``, ``in_wrapup(agent)``, ``signed_in(agent)``."""
        if self.cluster is not None:
            return await self.cluster.request(tenant_id, ("query", name, args))
        return self._answer(tenant_id, await self.engine(tenant_id), name, args)

    def _deliver_here(self, tenant_id: str, decision: Decision) -> None:
        for handler in self.handlers:
            try:
                handler(tenant_id, decision)
            except Exception:
                log.exception("handling %r failed", decision)

    # --- engines ------------------------------------------------------------------------

    async def engine(self, tenant_id: str) -> RoutingEngine:
        """The tenant's engine, loaded from the store on first use."""
        engine = self._engines.get(tenant_id)
        if engine is not None:
            return engine
        pending = self._loading.get(tenant_id)
        if pending is None:
            pending = self._loading[tenant_id] = asyncio.ensure_future(self._load(tenant_id))
        try:
            return await asyncio.shield(pending)
        finally:
            self._loading.pop(tenant_id, None)

    def loaded(self, tenant_id: str) -> RoutingEngine | None:
        return self._engines.get(tenant_id)

    async def queue_id(self, tenant_id: str, name: str) -> str | None:
        """The id of the tenant's queue called ``name`` (flows and numbers name queues)."""
        if self.runs(tenant_id):
            await self.engine(tenant_id)
        elif tenant_id not in self._queue_ids:
            await self._load_queue_names(tenant_id)
        return self._queue_ids.get(tenant_id, {}).get(name)

    async def _load_queue_names(self, tenant_id: str) -> None:
        """Queue names, ids and music of a tenant whose engine runs on another node."""
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(SkillQueue.id, SkillQueue.name, SkillQueue.music_on_hold).where(
                        SkillQueue.tenant_id == tenant_id
                    )
                )
            ).all()
        self._queue_ids[tenant_id] = {name: id_ for id_, name, _ in rows}
        self._queue_names[tenant_id] = {id_: name for id_, name, _ in rows}
        self._queue_music[tenant_id] = {id_: music for id_, _, music in rows}

    def queue_name(self, tenant_id: str, queue_id: str) -> str:
        return self._queue_names.get(tenant_id, {}).get(queue_id, queue_id)

    def music_on_hold(self, tenant_id: str, queue_id: str) -> str:
        """What the queue's waiting callers hear: "default" or one of the tenant's prompts."""
        return self._queue_music.get(tenant_id, {}).get(queue_id, "default")

    def faults(self, tenant_id: str) -> list[ConfigFault]:
        """The tenant's rows the engine could not load (empty when all routes)."""
        return list(self._faults.get(tenant_id, {}).values())

    def fault(self, tenant_id: str, row_id: str) -> ConfigFault | None:
        return self._faults.get(tenant_id, {}).get(row_id)

    def _fault(self, tenant_id: str, kind: str, row: Any, exc: Exception) -> None:
        name = str(getattr(row, "name", None) or getattr(row, "code", ""))
        fault = ConfigFault(kind, row.id, name, f"{type(exc).__name__}: {exc}", self.clock())
        self._faults.setdefault(tenant_id, {})[row.id] = fault
        log.error(
            "tenant %s: %s %s (%r) cannot be routed and is left out: %s",
            tenant_id,
            kind,
            row.id,
            name,
            fault.error,
        )
        self.bus.publish(tenant_id, "routing.config_fault", asdict(fault))

    def _clear_fault(self, tenant_id: str, row_id: str) -> None:
        self._faults.get(tenant_id, {}).pop(row_id, None)

    async def _load(self, tenant_id: str) -> RoutingEngine:
        async with self.db.session() as s:
            queues = (
                await s.scalars(select(SkillQueue).where(SkillQueue.tenant_id == tenant_id))
            ).all()
            agents = (await s.scalars(select(Agent).where(Agent.tenant_id == tenant_id))).all()
            reasons = (
                await s.scalars(select(ReasonCodeRow).where(ReasonCodeRow.tenant_id == tenant_id))
            ).all()
        engine = RoutingEngine(tenant_id=tenant_id)
        now = self.clock()
        self._faults[tenant_id] = {}
        # One row that cannot be loaded is left out (and reported); it never takes the
        # tenant's routing down.
        for reason in reasons:
            try:
                engine.configure_reason_code(reason_code(reason), now)
            except _BAD_ROW as exc:
                self._fault(tenant_id, "reason_code", reason, exc)
        # Overflow targets must exist when a queue is configured: first every queue without
        # them, then again with the ones that loaded.
        loaded = []
        for row in queues:
            try:
                engine.configure_queue(queue_config(row, {}), now)
            except _BAD_ROW as exc:
                self._fault(tenant_id, "queue", row, exc)
            else:
                loaded.append(row)
        ids = {row.name: row.id for row in loaded}
        self._queue_ids[tenant_id] = ids
        self._queue_names[tenant_id] = {row.id: row.name for row in loaded}
        self._queue_music[tenant_id] = {row.id: row.music_on_hold for row in loaded}
        for row in loaded:
            try:
                engine.configure_queue(queue_config(row, ids), now)
            except _BAD_ROW as exc:  # its overflow part: it keeps routing without it
                self._fault(tenant_id, "queue", row, exc)
        for agent in agents:
            if agent.status == "active":
                try:
                    engine.configure_agent(agent_config(agent), now)
                except _BAD_ROW as exc:
                    self._fault(tenant_id, "agent", agent, exc)
        for loader in self.loaders:
            await loader(tenant_id, engine)
        self._engines[tenant_id] = engine
        return engine

    # --- inputs -------------------------------------------------------------------------

    async def call(self, tenant_id: str, method: str, *args: Any, **kw: Any) -> list[Decision]:
        """Run an engine operation (``engine.<method>(*args, now=...)``) and dispatch; on a
        cluster, where the tenant's engine runs."""
        if self.cluster is not None:
            kw.pop("now", None)  # the owner's clock
            decisions: list[Decision] = await self.cluster.request(
                tenant_id, ("call", method, args, kw)
            )
            return decisions
        engine = await self.engine(tenant_id)
        return self.run(tenant_id, engine, method, *args, **kw)

    def run(
        self, tenant_id: str, engine: RoutingEngine, method: str, *args: Any, **kw: Any
    ) -> list[Decision]:
        now = kw.pop("now", None) or self.clock()
        decisions: list[Decision] = getattr(engine, method)(*args, now=now, **kw)
        self._dispatch(tenant_id, decisions)
        self._schedule(tenant_id, engine)
        return decisions

    def _dispatch(self, tenant_id: str, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, AgentStateChanged):
                self.bus.publish(
                    tenant_id,
                    "agent.state_changed",
                    {
                        "agent_id": decision.agent_id,
                        "state": decision.state.value,
                        "previous": decision.previous.value,
                        "reason": decision.reason,
                        "cti_code": decision.cti_code,
                        "by": decision.by,
                        "at": decision.at,
                    },
                )
                continue
            if isinstance(decision, NotReadyOverrun):
                self.bus.publish(tenant_id, "agent.not_ready_overrun", asdict(decision))
                continue
            if isinstance(decision, ContactReleased):
                self.bus.publish(tenant_id, "contact.released", asdict(decision))
            contact_id = getattr(decision, "contact_id", None)
            home = self._homes.get((tenant_id, contact_id)) if contact_id else None
            if isinstance(decision, ContactReleased):
                self._homes.pop((tenant_id, str(contact_id)), None)
            if home is not None and self.cluster is not None and home != self.cluster.node:
                self.cluster.send_decision(home, tenant_id, decision)
                continue
            for handler in self.handlers:
                try:
                    handler(tenant_id, decision)
                except Exception:
                    log.exception("handling %r failed", decision)

    # --- timers -------------------------------------------------------------------------

    def _schedule(self, tenant_id: str, engine: RoutingEngine) -> None:
        deadline = engine.next_deadline()
        if deadline == self._deadlines.get(tenant_id):
            return
        timer = self._timers.pop(tenant_id, None)
        if timer is not None:
            timer.cancel()
        self._deadlines.pop(tenant_id, None)
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline - self.clock())
        self._deadlines[tenant_id] = deadline
        self._timers[tenant_id] = loop.call_later(delay, self._tick, tenant_id)

    def _tick(self, tenant_id: str) -> None:
        self._timers.pop(tenant_id, None)
        self._deadlines.pop(tenant_id, None)
        engine = self._engines.get(tenant_id)
        if engine is None:
            return
        try:
            self.run(tenant_id, engine, "tick")
        except RoutingError:
            log.exception("tick of tenant %s failed", tenant_id)
            self._schedule(tenant_id, engine)

    # --- configuration changes ------------------------------------------------------------

    def _on_config_event(self, event: Any) -> None:
        if event.tenant_id not in self._engines:
            if event.type.startswith("queue."):  # names read again on next use
                self._queue_ids.pop(event.tenant_id, None)
            return  # loaded fresh on first use
        task = asyncio.get_running_loop().create_task(self._reconfigure(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconfigure(self, event: Any) -> None:
        tenant_id = event.tenant_id
        engine = self._engines.get(tenant_id)
        if engine is None:
            return
        kind, _, verb = event.type.partition(".")
        id_ = event.data.get("id")
        if verb not in ("created", "updated", "deleted") or not id_:
            return
        try:
            if kind == "agent":
                await self._agent_changed(tenant_id, engine, id_)
            else:
                await self._queue_changed(tenant_id, engine, id_)
        except RoutingError:
            log.exception("applying %s to the routing engine failed; reloading", event.type)
            self._engines.pop(tenant_id, None)

    def _on_reason_event(self, event: Any) -> None:
        if event.tenant_id not in self._engines:
            return
        task = asyncio.get_running_loop().create_task(self._reasons_changed(event.tenant_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reasons_changed(self, tenant_id: str) -> None:
        """Make the engine's tenant reason codes those of the store (built-ins stay)."""
        async with self.db.session() as s:
            rows = (
                await s.scalars(select(ReasonCodeRow).where(ReasonCodeRow.tenant_id == tenant_id))
            ).all()
        engine = self._engines.get(tenant_id)
        if engine is None:
            return
        wanted = {row.code: reason_code(row) for row in rows}
        try:
            for code in set(engine.reason_codes) - set(wanted) - BUILTIN_CODES:
                self.run(tenant_id, engine, "remove_reason_code", code)
            for reason in wanted.values():
                if engine.reason_codes.get(reason.code) != reason:
                    self.run(tenant_id, engine, "configure_reason_code", reason)
        except RoutingError:
            log.exception("applying reason codes to the routing engine failed; reloading")
            self._engines.pop(tenant_id, None)

    async def ensure_agent(self, tenant_id: str, agent_id: str) -> bool:
        """Make sure the engine knows an agent created a moment ago (its event may still be
        on its way); whether the agent is routable."""
        if self.cluster is not None:
            return bool(await self.cluster.request(tenant_id, ("ensure_agent", agent_id)))
        return await self._ensure_agent_here(tenant_id, await self.engine(tenant_id), agent_id)

    async def _ensure_agent_here(
        self, tenant_id: str, engine: RoutingEngine, agent_id: str
    ) -> bool:
        if agent_id not in set(engine.agent_ids()):
            await self._agent_changed(tenant_id, engine, agent_id)
        return agent_id in set(engine.agent_ids())

    async def _agent_changed(self, tenant_id: str, engine: RoutingEngine, id_: str) -> None:
        async with self.db.session() as s:
            row = await s.scalar(select(Agent).where(Agent.tenant_id == tenant_id, Agent.id == id_))
        if row is None or row.status != "active":
            self._clear_fault(tenant_id, id_)
            if id_ in set(engine.agent_ids()):
                self.run(tenant_id, engine, "remove_agent", id_)
            return
        try:
            config = agent_config(row)
        except _BAD_ROW as exc:
            self._fault(tenant_id, "agent", row, exc)
            return
        self.run(tenant_id, engine, "configure_agent", config)
        self._clear_fault(tenant_id, id_)

    async def _queue_changed(self, tenant_id: str, engine: RoutingEngine, id_: str) -> None:
        async with self.db.session() as s:
            row = await s.scalar(
                select(SkillQueue).where(SkillQueue.tenant_id == tenant_id, SkillQueue.id == id_)
            )
        names = self._queue_names.setdefault(tenant_id, {})
        ids = self._queue_ids.setdefault(tenant_id, {})
        if row is None:
            self._clear_fault(tenant_id, id_)
            self._queue_music.get(tenant_id, {}).pop(id_, None)
            name = names.pop(id_, None)
            if name is not None:
                ids.pop(name, None)
            if id_ in set(engine.queue_ids()):
                self.run(tenant_id, engine, "remove_queue", id_)
            return
        try:
            config = queue_config(row, ids)
        except _BAD_ROW as exc:  # the engine keeps what it had; the fault is reported
            self._fault(tenant_id, "queue", row, exc)
            return
        self.run(tenant_id, engine, "configure_queue", config)
        self._clear_fault(tenant_id, id_)
        old = names.get(row.id)
        if old is not None and old != row.name:
            ids.pop(old, None)
        names[row.id] = row.name
        ids[row.name] = row.id
        self._queue_music.setdefault(tenant_id, {})[row.id] = row.music_on_hold

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
