"""Which agents an event concerns, decided when it is published.

An agent's stream carries the events naming it and every event of a contact it holds. The
events of a contact name the agent only in some messages (``contact.connected`` does,
``leg.held`` may not), so a bus hook remembers, per contact, the agents that held it so far
and records each event's audience at publication time. Deciding then, not at delivery, makes a
replay after a reconnect select exactly the events the live stream would have.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from cloudcc.bus import Event, LocalBus
from cloudcc.events.model import holding_agents, named_agents

_NOBODY: frozenset[str] = frozenset()


class ContactAudience:
    def __init__(self, history: int = 20_000, max_contacts: int = 100_000) -> None:
        self.history = history
        self.max_contacts = max_contacts
        # (tenant, contact) -> agents that hold or held it; least recently used first.
        self._holders: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()
        # tenant -> seq -> audience, for the events of contacts only (others need no memory).
        self._by_seq: dict[str, dict[int, frozenset[str]]] = {}
        self._order: dict[str, deque[int]] = {}

    def install(self, bus: LocalBus) -> None:
        bus.on(lambda e: True, self.observe)

    def observe(self, event: Event) -> None:
        """Bus hook: record the audience of ``event`` (runs inside ``publish``; keep it cheap)."""
        contact_id = event.data.get("contact_id")
        if not isinstance(contact_id, str):
            return
        key = (event.tenant_id, contact_id)
        holding = holding_agents(event)
        holders = self._holders.get(key, _NOBODY)
        if holding - holders:
            holders = holders | holding
        self._holders[key] = holders
        self._holders.move_to_end(key)
        while len(self._holders) > self.max_contacts:
            self._holders.popitem(last=False)
        seqs = self._by_seq.setdefault(event.tenant_id, {})
        order = self._order.setdefault(event.tenant_id, deque())
        seqs[event.seq] = holders | named_agents(event)
        order.append(event.seq)
        while len(order) > self.history:
            seqs.pop(order.popleft(), None)

    def __call__(self, event: Event) -> frozenset[str]:
        """The agents ``event`` concerns."""
        recorded = self._by_seq.get(event.tenant_id, {}).get(event.seq)
        if recorded:
            return recorded
        return named_agents(event)
