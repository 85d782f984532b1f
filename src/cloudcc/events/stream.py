"""A resumable cursor over one tenant's events: the bus history after ``since``, then live.

The live subscription is opened and the history read in the same synchronous step, so every
event is either in the replay (``seq`` up to the bus's last sequence at that instant) or in
the subscription (published afterwards): no gap and no duplicate. When the history no longer
reaches back to ``since`` (or the sequence restarted, after a node restart) the cursor says so
first with a ``stream.gap`` message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from cloudcc.bus import Event, LocalBus
from cloudcc.events import model

Accept = Callable[[Event], bool]


class CutOff(Exception):
    """The consumer fell too far behind; it should reconnect from its last position."""


class Feed:
    """Messages for one consumer. Close it (or use it as a context manager) when done."""

    def __init__(
        self,
        bus: LocalBus,
        tenant_id: str,
        accept: Accept,
        since: int | None = None,
        *,
        maxsize: int = 1000,
        key: str | None = None,
    ) -> None:
        self.bus = bus
        self.tenant_id = tenant_id
        self.accept = accept
        # An agent's stream is keyed by its agent: the bus offers it only that agent's events.
        self._sub = bus.subscribe(tenant_id, accept, maxsize, key=key)
        last = bus.last_seq(tenant_id)
        self._backlog: deque[Event | dict[str, Any]] = deque()
        self.gap: dict[str, Any] | None = None
        if since is None:
            since = last
        else:
            if since > last:
                # The sequence restarted (a node restart): what the client saw is not comparable.
                self.gap = model.gap(since, 0, "reset")
                since = 0
            events, complete = bus.since(tenant_id, since)
            if not complete and self.gap is None:
                self.gap = model.gap(since, events[0].seq - 1, "history")
            if self.gap is not None:
                self._backlog.append(self.gap)
            self._backlog.extend(e for e in events if accept(e))
        self.started_at = since
        self.position = since  # the last seq delivered (or known not to match)

    @property
    def cut_off(self) -> bool:
        return self._sub.overflowed

    def ready(self) -> Event | dict[str, Any] | None:
        """The next message if one is at hand, without waiting."""
        if self._backlog:
            return self._take(self._backlog.popleft())
        while not self._sub.queue.empty():
            event = self._sub.queue.get_nowait()
            if event is None:
                raise CutOff
            if event.seq > self.position:
                return self._take(event)
        if self._sub.overflowed:
            raise CutOff
        return None

    async def next(self, wait: float) -> Event | dict[str, Any] | None:
        """The next message, or None when none came within ``wait`` seconds."""
        while True:
            message = self.ready()
            if message is not None:
                return message
            try:
                async with asyncio.timeout(wait):
                    event = await self._sub.get()
            except TimeoutError:
                return None
            if event is None:
                raise CutOff
            if event.seq > self.position:
                return self._take(event)

    def idle_position(self) -> int:
        """Where a resume may start when nothing is pending: every later event is still ahead."""
        if self._backlog or not self._sub.queue.empty():
            return self.position
        self.position = max(self.position, self.bus.last_seq(self.tenant_id))
        return self.position

    def close(self) -> None:
        self._sub.close()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self, message: Event | dict[str, Any]) -> Event | dict[str, Any]:
        seq = message.seq if isinstance(message, Event) else int(message["seq"])
        self.position = max(self.position, seq)
        return message


async def poll(
    bus: LocalBus,
    tenant_id: str,
    accept: Accept,
    since: int | None,
    *,
    wait: float = 0.0,
    limit: int = 100,
    key: str | None = None,
) -> tuple[list[Event | dict[str, Any]], int]:
    """Up to ``limit`` events after ``since`` (waiting up to ``wait`` s for the first one).

    Returns the messages and the position to poll from next time.
    """
    with Feed(bus, tenant_id, accept, since, maxsize=max(limit, 100), key=key) as feed:
        messages: list[Event | dict[str, Any]] = []
        events = 0
        try:
            while events < limit and (message := feed.ready()) is not None:
                messages.append(message)
                events += isinstance(message, Event)
            if not messages and wait > 0:
                first = await feed.next(wait)
                if first is not None:
                    messages.append(first)
                    events += 1
                    while events < limit and (message := feed.ready()) is not None:
                        messages.append(message)
                        events += 1
        except CutOff:  # cannot happen below ``maxsize``; the position so far stays right
            return messages, feed.position
        return messages, feed.idle_position()
