"""Events between components: an in-process bus by default (Redis/NATS in a cluster)."""

from cloudcc.bus.local import Event, LocalBus, Subscription

__all__ = ["Event", "LocalBus", "Subscription"]
