"""An agent's figures of the day: time in each state, from the state changes this node saw.

Pure bookkeeping (no clock, no I/O): the service notes each ``agent.state_changed`` with its
time; a reader asks for the seconds per state between two instants (the start of the tenant's
day and now). Changes older than ``keep_seconds`` are dropped, keeping the last one before
the cut so the state at any instant inside the window stays known.
"""

from __future__ import annotations

from collections import defaultdict

#: A day and a half: enough for "today" in any time zone.
KEEP_SECONDS = 36 * 3600
OFFLINE = "offline"


class StateLog:
    """Each agent's state changes over the last ``keep_seconds``."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.keep_seconds = keep_seconds
        self._changes: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)

    def note(self, tenant_id: str, agent_id: str, at: float, state: str) -> None:
        """The agent entered ``state`` at ``at``."""
        changes = self._changes[(tenant_id, agent_id)]
        changes.append((at, state))
        changes.sort(key=lambda c: c[0])  # events arrive in order; a late one still fits
        cut = at - self.keep_seconds
        while len(changes) > 1 and changes[1][0] <= cut:
            del changes[0]

    def time_in_state(
        self,
        tenant_id: str,
        agent_id: str,
        start: float,
        now: float,
        current: tuple[float, str] | None = None,
    ) -> dict[str, float]:
        """Seconds spent in each state (signed out left out) between ``start`` and ``now``.
        ``current`` (since, state) stands in when no change was seen (the agent was signed
        in before this node started)."""
        changes = list(self._changes.get((tenant_id, agent_id), ()))
        if current is not None and (not changes or changes[-1][0] < current[0]):
            changes.append(current)
        spent: dict[str, float] = defaultdict(float)
        for i, (at, state) in enumerate(changes):
            end = changes[i + 1][0] if i + 1 < len(changes) else now
            seconds = min(end, now) - max(at, start)
            if seconds > 0 and state != OFFLINE:
                spent[state] += seconds
        return {state: round(seconds, 3) for state, seconds in spent.items()}
