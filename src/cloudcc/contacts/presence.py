"""Whether an agent's client is still there: sans-I/O bookkeeping fed the time.

A supervised session (the web apps sign in with ``heartbeat_seconds``) stays alive while its
client sends heartbeats, polls for events, or holds an event stream open; once none of these
has happened for the session's timeout it has expired and the agent is signed out
(``SignOutReason.DISCONNECTED``, PRODUCT.md appendix: "no heartbeat from its client for a set
time").
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

Key = tuple[str, str]  # (tenant id, agent id)


@dataclass(slots=True)
class _Session:
    timeout: float
    last_seen: float
    generation: int


class ClientPresence:
    def __init__(self) -> None:
        self._sessions: dict[Key, _Session] = {}
        self._streams: Counter[Key] = Counter()
        self._heap: list[tuple[float, int, Key]] = []
        self._generation = 0

    def start(self, key: Key, timeout: float, now: float) -> None:
        """Supervise the agent's session from now on."""
        self._generation += 1
        self._sessions[key] = _Session(timeout, now, self._generation)
        heapq.heappush(self._heap, (now + timeout, self._generation, key))

    def stop(self, key: Key) -> None:
        self._sessions.pop(key, None)

    def timeout(self, key: Key) -> float | None:
        session = self._sessions.get(key)
        return session.timeout if session is not None else None

    def seen(self, key: Key, now: float) -> None:
        """A heartbeat or a poll from the agent's client."""
        session = self._sessions.get(key)
        if session is not None:
            session.last_seen = max(session.last_seen, now)

    def opened(self, key: Key, now: float) -> None:
        """An event stream of the agent's opened: present for as long as it stays open."""
        self._streams[key] += 1
        self.seen(key, now)

    def closed(self, key: Key, now: float) -> None:
        self._streams[key] -= 1
        if self._streams[key] <= 0:
            del self._streams[key]
        self.seen(key, now)  # the timeout runs from the moment it closed

    def expired(self, now: float) -> list[Key]:
        """Sessions whose client has been silent for their timeout (they stop here)."""
        gone: list[Key] = []
        while self._heap and self._heap[0][0] <= now:
            _, generation, key = heapq.heappop(self._heap)
            session = self._sessions.get(key)
            if session is None or session.generation != generation:
                continue
            if self._streams[key] > 0:
                session.last_seen = now  # present: look again one timeout later
            deadline = session.last_seen + session.timeout
            if deadline <= now:
                del self._sessions[key]
                gone.append(key)
            else:
                heapq.heappush(self._heap, (deadline, generation, key))
        return gone

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None
