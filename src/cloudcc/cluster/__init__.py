"""What nodes of a cluster share beyond the event bus (cloudcc.bus.nats): live-call counts."""
