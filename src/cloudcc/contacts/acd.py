"""The asyncio side of routing: one ``RoutingEngine`` per tenant, its timers and its inputs.

The engine is pure (``cloudcc.routing``); this module loads each tenant's agents and queues
from the store into it, keeps it in step with configuration changes (``agent.*``/``queue.*``
events), calls ``tick`` at the engine's next deadline, and hands every decision on: agent
state changes become ``agent.state_changed`` events on the bus, decisions about a contact go
to the contact layer's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
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
        await self.engine(tenant_id)
        return self._queue_ids.get(tenant_id, {}).get(name)

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
        self._engines[tenant_id] = engine
        return engine

    # --- inputs -------------------------------------------------------------------------

    async def call(self, tenant_id: str, method: str, *args: Any, **kw: Any) -> list[Decision]:
        """Run an engine operation (``engine.<method>(*args, now=...)``) and dispatch."""
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
        engine = await self.engine(tenant_id)
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
