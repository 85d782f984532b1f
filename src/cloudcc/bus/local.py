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
from collections.abc import AsyncIterator, Callable
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


class Subscription:
    """A consumer's queue; slow consumers are cut off rather than stalling the publisher."""

    def __init__(self, bus: LocalBus, tenant_id: str | None, accept: Filter | None, maxsize: int):
        self._bus = bus
        self.tenant_id = tenant_id
        self.accept = accept
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
        self._subs: set[Subscription] = set()
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
        for sub in list(self._subs):
            if sub.tenant_id is not None and sub.tenant_id != event.tenant_id:
                continue
            if sub.accept is None or sub.accept(event):
                sub.offer(event)

    def subscribe(
        self, tenant_id: str | None, accept: Filter | None = None, maxsize: int = 10_000
    ) -> Subscription:
        """Events of one tenant (None: every tenant, for internal consumers only)."""
        sub = Subscription(self, tenant_id, accept, maxsize)
        self._subs.add(sub)
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
        self._subs.discard(sub)

    def since(self, tenant_id: str, seq: int) -> tuple[list[Event], bool]:
        """Events after ``seq`` kept in history, and whether nothing was lost in between."""
        hist = self._history.get(tenant_id, deque())
        events = [e for e in hist if e.seq > seq]
        # An empty history after events were published: the byte budget pushed them all out.
        complete = seq >= self._seq.get(tenant_id, 0) or (bool(hist) and hist[0].seq <= seq + 1)
        return events, complete

    def last_seq(self, tenant_id: str) -> int:
        return self._seq.get(tenant_id, 0)
