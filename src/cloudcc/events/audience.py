"""Which agents an event concerns, decided when it is published.

An agent's stream carries the events naming it and every event of a contact it holds. The
events of a contact name the agent only in some messages (``contact.connected`` does,
``leg.held`` may not), so a bus hook remembers, per contact, the agents that held it so far
and records each event's audience at publication time. Deciding then, not at delivery, makes a
replay after a reconnect select exactly the events the live stream would have.
"""

from __future__ import annotations

from collections import OrderedDict

from cloudcc.bus import Event, LocalBus
from cloudcc.events.model import holding_agents, named_agents
from cloudcc.sizing import ByteRing, approx_size

_NOBODY: frozenset[str] = frozenset()


def _entry_size(key: tuple[str, str], agents: frozenset[str]) -> int:
    return 100 + approx_size(key) + approx_size(agents)


class ContactAudience:
    """Bounded by size (``limits.audience_bytes``), half for each of its two tables.

    An event whose recorded audience was pushed out falls back to the agents it names, as an
    event older than the bus history would anyway.
    """

    def __init__(self, budget_bytes: int = 16 * 1024 * 1024) -> None:
        self.budget_bytes = budget_bytes
        # (tenant, contact) -> agents that hold or held it; least recently used first.
        self._holders: OrderedDict[tuple[str, str], tuple[frozenset[str], int]] = OrderedDict()
        self._holders_bytes = 0
        # tenant -> seq -> audience, for the events of contacts only (others need no memory).
        self._by_seq: dict[str, dict[int, frozenset[str]]] = {}
        self._order: ByteRing[tuple[str, int]] = ByteRing(budget_bytes // 2)
        # The last event asked about and its audience: publishing asks once per open stream
        # (1,000 agents: 1,000 times the same event), so it is worked out once.
        self._last: tuple[Event | None, frozenset[str]] = (None, _NOBODY)

    @property
    def nbytes(self) -> int:
        """Approximate size of what is remembered."""
        return self._holders_bytes + self._order.nbytes

    def install(self, bus: LocalBus) -> None:
        bus.on(lambda e: True, self.observe)

    def observe(self, event: Event) -> None:
        """Bus hook: record the audience of ``event`` (runs inside ``publish``; keep it cheap)."""
        contact_id = event.data.get("contact_id")
        if not isinstance(contact_id, str):
            return
        key = (event.tenant_id, contact_id)
        holding = holding_agents(event)
        holders, size = self._holders.pop(key, (_NOBODY, 0))
        if holding - holders or not size:
            holders = holders | holding
            self._holders_bytes += _entry_size(key, holders) - size
            size = _entry_size(key, holders)
        self._holders[key] = (holders, size)
        while self._holders_bytes > self.budget_bytes // 2 and len(self._holders) > 1:
            _, (_, old_size) = self._holders.popitem(last=False)
            self._holders_bytes -= old_size
        seqs = self._by_seq.setdefault(event.tenant_id, {})
        audience = holders | named_agents(event)
        seqs[event.seq] = audience
        entry = (event.tenant_id, event.seq)
        for tenant_id, seq in self._order.append(entry, 100 + approx_size(audience)):
            self._by_seq[tenant_id].pop(seq, None)

    def __call__(self, event: Event) -> frozenset[str]:
        """The agents ``event`` concerns."""
        last, audience = self._last
        if last is event:
            return audience
        audience = self._by_seq.get(event.tenant_id, {}).get(event.seq) or named_agents(event)
        self._last = (event, audience)
        return audience
