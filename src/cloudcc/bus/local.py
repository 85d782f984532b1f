"""The in-process event bus: every state change is published here, scoped by tenant.

Each tenant has its own monotonically increasing sequence; a bounded history per tenant lets a
consumer (the WebSocket event stream) resume from the last sequence it saw. The history is
bounded by size node-wide (``history_bytes``, oldest events of any tenant first) and by count
per tenant; a resume from before what is kept gets a ``stream.gap`` (the state itself is in
the database).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cloudcc.sizing import ByteRing, approx_size
from cloudcc.timefmt import iso_time, with_iso_times


@dataclass(frozen=True, slots=True)
class Event:
    tenant_id: str
    type: str  # "agent.state_changed", "contact.queued", "queue.updated", ...
    data: dict[str, Any]
    seq: int = 0
    at: float = field(default_factory=time.time)
    origin: str = ""  # the node that published it on a cluster bus ("": this process)

    def to_dict(self) -> dict[str, Any]:
        # on the wire: ISO 8601 times (cloudcc.timefmt), in the envelope and the data
        return {
            "seq": self.seq,
            "type": self.type,
            "at": iso_time(self.at),
            "data": with_iso_times(self.data),
        }


Filter = Callable[[Event], bool]
# The keys an event is routed to (the agents it concerns); see ``LocalBus.route_by``.
Router = Callable[[Event], Iterable[str]]


class Subscription:
    """A consumer's queue; slow consumers are cut off rather than stalling the publisher."""

    def __init__(
        self,
        bus: LocalBus,
        tenant_id: str | None,
        accept: Filter | None,
        maxsize: int,
        key: str | None = None,
    ):
        self._bus = bus
        self.tenant_id = tenant_id
        self.accept = accept
        self.key = key
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._bus.unsubscribe(self)

    async def get(self) -> Event | None:
        """The next event, or None once the subscription was cut off or closed."""
        if self.overflowed and self.queue.empty():
            return None
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            pass

    async def __aiter__(self) -> AsyncIterator[Event]:
        while (event := await self.get()) is not None:
            yield event


class LocalBus:
    def __init__(self, history: int = 10_000, history_bytes: int = 32 * 1024 * 1024) -> None:
        self._history_size = history
        self._history: dict[str, deque[Event]] = {}
        # Every tenant's kept events in publication order, with their approximate sizes: the
        # node-wide byte budget pushes out the oldest, whoever's they are.
        self._kept: ByteRing[tuple[str, int]] = ByteRing(history_bytes)
        self._seq: dict[str, int] = {}
        # Subscriptions by tenant (None: every tenant), and those with a key by (tenant, key):
        # publishing asks only the subscriptions that can want the event, not every open one
        # (1,000 agents' streams: one lookup, not 1,000 filters, per agent event).
        self._subs: dict[str | None, set[Subscription]] = {}
        self._keyed: dict[tuple[str, str], set[Subscription]] = {}
        self._router: Router | None = None
        self._hooks: list[tuple[Filter, Callable[[Event], None], bool]] = []

    def publish(self, tenant_id: str, type: str, data: dict[str, Any]) -> Event:
        seq = self._seq.get(tenant_id, 0) + 1
        self._seq[tenant_id] = seq
        event = Event(tenant_id, type, data, seq)
        self._keep(event)
        for accept, hook, _ in self._hooks:
            if accept(event):
                hook(event)
        self._fan_out(event)
        return event

    def _keep(self, event: Event) -> None:
        """Add ``event`` to its tenant's history; push out what the count and size caps say."""
        tenant_id = event.tenant_id
        hist = self._history.get(tenant_id)
        if hist is None:
            hist = self._history[tenant_id] = deque()
        hist.append(event)
        if len(hist) > self._history_size:
            self._trim(tenant_id, hist.popleft())
        size = 48 + approx_size(event.type) + approx_size(event.data)
        for old_tenant, old_seq in self._kept.append((tenant_id, event.seq), size):
            old_hist = self._history.get(old_tenant)
            # Already gone when the count cap pushed it out first.
            if old_hist and old_hist[0].seq == old_seq:
                self._trim(old_tenant, old_hist.popleft())

    def _trim(self, tenant_id: str, event: Event) -> None:
        """``event`` was pushed out of the history (the cluster bus remembers where)."""

    @property
    def history_bytes(self) -> int:
        """Approximate size of the events kept for resumes (an overestimate after count trims)."""
        return self._kept.nbytes

    def _fan_out(self, event: Event) -> None:
        # Copies: a subscription that overflows unsubscribes itself while we go.
        wanting = [*self._subs.get(event.tenant_id, ()), *self._subs.get(None, ())]
        if self._keyed and self._router is not None:
            for key in self._router(event):
                wanting.extend(self._keyed.get((event.tenant_id, key), ()))
        for sub in wanting:
            if sub.accept is None or sub.accept(event):
                sub.offer(event)

    def route_by(self, router: Router) -> None:
        """How events find keyed subscriptions: ``router(event)`` names the keys it goes to."""
        self._router = router

    def subscribe(
        self,
        tenant_id: str | None,
        accept: Filter | None = None,
        maxsize: int = 10_000,
        *,
        key: str | None = None,
    ) -> Subscription:
        """Events of one tenant (None: every tenant, for internal consumers only).

        With a ``key`` (and a router, see ``route_by``), only the events the router sends to
        that key are offered to ``accept``; ``accept`` must refuse every other event anyway,
        so that the history replayed to the same consumer matches what the key lets through.
        """
        if key is not None and (tenant_id is None or self._router is None):
            raise ValueError("a keyed subscription needs a tenant and a router (route_by)")
        sub = Subscription(self, tenant_id, accept, maxsize, key)
        if key is None:
            self._subs.setdefault(tenant_id, set()).add(sub)
        else:
            assert tenant_id is not None
            self._keyed.setdefault((tenant_id, key), set()).add(sub)
        return sub

    def on(
        self, accept: Filter, hook: Callable[[Event], None], *, origin_only: bool = False
    ) -> None:
        """Call ``hook`` synchronously inside ``publish`` (cache invalidation; keep it tiny).

        On a cluster bus hooks run on every node when the event arrives; ``origin_only``
        hooks (work to do once per event, such as webhooks) only on the node that published.
        """
        self._hooks.append((accept, hook, origin_only))

    def unsubscribe(self, sub: Subscription) -> None:
        if sub.key is None:
            _discard(self._subs, sub.tenant_id, sub)
        elif sub.tenant_id is not None:
            _discard(self._keyed, (sub.tenant_id, sub.key), sub)

    def since(self, tenant_id: str, seq: int) -> tuple[list[Event], bool]:
        """Events after ``seq`` kept in history, and whether nothing was lost in between."""
        hist = self._history.get(tenant_id, deque())
        events = [e for e in hist if e.seq > seq]
        # An empty history after events were published: the byte budget pushed them all out.
        complete = seq >= self._seq.get(tenant_id, 0) or (bool(hist) and hist[0].seq <= seq + 1)
        return events, complete

    def last_seq(self, tenant_id: str) -> int:
        return self._seq.get(tenant_id, 0)


def _discard(groups: dict[Any, set[Subscription]], where: Any, sub: Subscription) -> None:
    group = groups.get(where)
    if group is not None:
        group.discard(sub)
        if not group:
            del groups[where]
