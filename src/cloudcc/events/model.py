"""What an event-stream client asks for: a scope, an optional type filter, and the messages.

A stream message is the bus event as ``{"seq", "type", "at", "data"}``. Control messages of
the stream itself have types under ``stream.`` and carry a ``seq`` the client may keep as its
resume position like any other.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import translate
from typing import Any

import orjson

from cloudcc.bus import Event
from cloudcc.errors import Invalid, PermissionDenied
from cloudcc.tenancy.model import Permission, Principal
from cloudcc.timefmt import iso_time

# Event categories a supervisor sees (besides any event naming a contact, agent or queue).
SUPERVISOR_CATEGORIES = frozenset(
    {"contact", "leg", "agent", "queue", "recording", "cdr", "callback", "chat", "voicemail"}
)
# The keys that say which contact, agent or queue an event concerns (the bus convention).
SUBJECT_KEYS = ("contact_id", "agent_id", "queue")

_PATTERN = re.compile(r"^[a-z0-9_*-]+(\.[a-z0-9_*-]+)*$")
MAX_PATTERNS = 50


class Scope(StrEnum):
    TENANT = "tenant"  # every event of the tenant (events:tenant)
    SUPERVISOR = "supervisor"  # every contact, agent and queue event (calls:monitor)
    AGENT = "agent"  # one agent's own events and those of the contacts it holds


class TypeFilter:
    """Event type patterns with ``*`` wildcards: ``contact.*``, ``*.created``, ``*``."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(dict.fromkeys(p.strip() for p in patterns if p.strip()))
        if not self.patterns:
            raise Invalid("name at least one event type pattern")
        if len(self.patterns) > MAX_PATTERNS:
            raise Invalid(f"at most {MAX_PATTERNS} event type patterns")
        for pattern in self.patterns:
            if len(pattern) > 100 or not _PATTERN.match(pattern):
                raise Invalid(
                    f"{pattern!r} is not an event type pattern "
                    "(lower-case words separated by dots, * as a wildcard)"
                )
        self._match = re.compile("|".join(f"(?:{translate(p)})" for p in self.patterns)).match

    @classmethod
    def parse(cls, text: str | None) -> TypeFilter | None:
        """A comma-separated list (``contact.*,agent.*``); None or empty means every type."""
        if text is None or not text.strip():
            return None
        return cls(text.split(","))

    def matches(self, type_: str) -> bool:
        return self._match(type_) is not None

    def __repr__(self) -> str:
        return f"TypeFilter({','.join(self.patterns)})"


Audience = Callable[[Event], frozenset[str]]


def holding_agents(event: Event) -> frozenset[str]:
    """The agents an event names as handling it: ``agent_id``, ``agent_ids`` (several on one
    contact), or the agent whose own record it is (``agent.*`` with ``id``)."""
    data = event.data
    found: set[str] = set()
    agent_id = data.get("agent_id")
    if isinstance(agent_id, str):
        found.add(agent_id)
    agent_ids = data.get("agent_ids")
    if isinstance(agent_ids, list):
        found.update(a for a in agent_ids if isinstance(a, str))
    if event.type.startswith("agent.") and isinstance(data.get("id"), str):
        found.add(data["id"])
    return frozenset(found)


def named_agents(event: Event) -> frozenset[str]:
    """The agents an event names: those holding it, and those it is offered to (``agents``,
    as ``contact.offered`` rings several agents at once) without making them holders."""
    offered = event.data.get("agents")
    if not isinstance(offered, list):
        return holding_agents(event)
    return holding_agents(event) | {a for a in offered if isinstance(a, str)}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of a tenant's events one client receives."""

    scope: Scope
    agent_id: str | None = None
    types: TypeFilter | None = None

    def accepts(self, event: Event, audience: Audience = named_agents) -> bool:
        if self.types is not None and not self.types.matches(event.type):
            return False
        if self.scope is Scope.TENANT:
            return True
        if self.scope is Scope.SUPERVISOR:
            return event.type.partition(".")[0] in SUPERVISOR_CATEGORIES or any(
                key in event.data for key in SUBJECT_KEYS
            )
        return self.agent_id is not None and self.agent_id in audience(event)

    def describe(self) -> dict[str, Any]:
        return {
            "scope": self.scope.value,
            "agent_id": self.agent_id,
            "types": list(self.types.patterns) if self.types else None,
        }


def select_for(
    principal: Principal,
    scope: str | None = None,
    agent_id: str | None = None,
    types: str | None = None,
) -> Selection:
    """The selection ``principal`` may have; PermissionDenied or Invalid otherwise."""
    type_filter = TypeFilter.parse(types)
    monitor = principal.can(Permission.CALLS_MONITOR) or principal.can(Permission.EVENTS_TENANT)
    if scope is None:
        if principal.agent_id or agent_id:
            chosen = Scope.AGENT
        elif principal.can(Permission.EVENTS_TENANT):
            chosen = Scope.TENANT
        elif principal.can(Permission.CALLS_MONITOR):
            chosen = Scope.SUPERVISOR
        else:
            raise PermissionDenied(
                "no event stream for this caller: it is not an agent and lacks "
                "events:tenant and calls:monitor"
            )
    else:
        try:
            chosen = Scope(scope)
        except ValueError:
            raise Invalid(f"scope must be one of {', '.join(s.value for s in Scope)}") from None
    if chosen is Scope.TENANT:
        if not principal.can(Permission.EVENTS_TENANT):
            raise PermissionDenied("scope=tenant needs the permission events:tenant")
        if agent_id:
            raise Invalid("agent_id goes with scope=agent")
        return Selection(Scope.TENANT, None, type_filter)
    if chosen is Scope.SUPERVISOR:
        if not monitor:
            raise PermissionDenied("scope=supervisor needs the permission calls:monitor")
        if agent_id:
            raise Invalid("agent_id goes with scope=agent")
        return Selection(Scope.SUPERVISOR, None, type_filter)
    if agent_id and agent_id != principal.agent_id:
        if not monitor:
            raise PermissionDenied("another agent's events need the permission calls:monitor")
        return Selection(Scope.AGENT, agent_id, type_filter)
    if principal.agent_id is None:
        raise Invalid("scope=agent needs an agent's login, or agent_id= with calls:monitor")
    if not (principal.can(Permission.CALLS_OWN) or monitor):
        raise PermissionDenied("an agent's event stream needs the permission calls:own")
    return Selection(Scope.AGENT, principal.agent_id, type_filter)


# --- messages -----------------------------------------------------------------------------

GAP = "stream.gap"
HELLO = "stream.hello"
HEARTBEAT = "stream.heartbeat"
PONG = "stream.pong"


def control(type_: str, seq: int, data: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A message of the stream itself; ``seq`` is a valid resume position."""
    at = iso_time(time.time() if now is None else now)
    return {"seq": seq, "type": type_, "at": at, "data": data}


def gap(requested: int, resumed_from: int, reason: str, now: float | None = None) -> dict[str, Any]:
    """Events after ``requested`` up to ``resumed_from`` are no longer available."""
    return control(
        GAP,
        resumed_from,
        {
            "requested_since": requested,
            "resumed_from": resumed_from,
            "missed": max(0, resumed_from - requested) if reason == "history" else None,
            "reason": reason,
        },
        now,
    )


def encode(message: Event | dict[str, Any]) -> str:
    """A message as JSON text."""
    body = message.to_dict() if isinstance(message, Event) else message
    return orjson.dumps(body, default=str).decode()


class WireText:
    """Each event's JSON text, made once however many streams it goes to (every supervisor's
    wallboard gets every agent event). Keeps the last ``size`` events' texts."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.made = 0  # events encoded (control messages, made per stream, are not counted)
        self._texts: dict[tuple[str, int], tuple[Event, str]] = {}

    def __call__(self, message: Event | dict[str, Any]) -> str:
        if not isinstance(message, Event):
            return encode(message)
        key = (message.tenant_id, message.seq)
        hit = self._texts.get(key)
        if hit is not None and hit[0] is message:
            return hit[1]
        text = encode(message)
        self.made += 1
        self._texts[key] = (message, text)
        if len(self._texts) > self.size:
            del self._texts[next(iter(self._texts))]
        return text
