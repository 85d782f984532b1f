"""Errors raised by the routing engine; each carries the ids the caller needs to report it."""

from __future__ import annotations


class RoutingError(Exception):
    """Base class of every routing error."""


class RoutingUnavailable(RoutingError):
    """The engine that should take the event cannot be reached (on a cluster: no node runs
    the tenant's routing and this one could not take it); the event was not applied."""


class InvalidConfig(RoutingError, ValueError):
    """A queue, agent, reason code or skill setting is not acceptable."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"invalid {what}: {detail}")
        self.what = what
        self.detail = detail


class UnknownAgent(RoutingError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"unknown agent {agent_id!r}")
        self.agent_id = agent_id


class UnknownQueue(RoutingError):
    def __init__(self, queue_id: str) -> None:
        super().__init__(f"unknown queue {queue_id!r}")
        self.queue_id = queue_id


class UnknownContact(RoutingError):
    def __init__(self, contact_id: str) -> None:
        super().__init__(f"unknown contact {contact_id!r}")
        self.contact_id = contact_id


class UnknownReasonCode(RoutingError):
    def __init__(self, code: str) -> None:
        super().__init__(f"unknown not-ready reason code {code!r}")
        self.code = code


class DuplicateContact(RoutingError):
    def __init__(self, contact_id: str) -> None:
        super().__init__(f"contact {contact_id!r} is already known to the engine")
        self.contact_id = contact_id


class IllegalTransition(RoutingError):
    """A state change that the transition tables of ``model.py`` do not allow."""

    def __init__(self, subject: str, source: str, target: str, why: str = "") -> None:
        text = f"{subject}: illegal transition {source} -> {target}"
        super().__init__(f"{text} ({why})" if why else text)
        self.subject = subject
        self.source = source
        self.target = target


class NotOffered(RoutingError):
    """An accept/reject/timeout names an agent the contact is not ringing at."""

    def __init__(self, contact_id: str, agent_id: str) -> None:
        super().__init__(f"contact {contact_id!r} is not offered to agent {agent_id!r}")
        self.contact_id = contact_id
        self.agent_id = agent_id


class AgentAtCapacity(RoutingError):
    def __init__(self, agent_id: str, channel: str) -> None:
        super().__init__(f"agent {agent_id!r} has no free {channel} capacity")
        self.agent_id = agent_id
        self.channel = channel


class AgentHasWork(RoutingError):
    """Signing out (not forced) while contacts are still offered, held or in wrap-up."""

    def __init__(self, agent_id: str, contact_ids: tuple[str, ...]) -> None:
        super().__init__(f"agent {agent_id!r} still holds contacts {list(contact_ids)}")
        self.agent_id = agent_id
        self.contact_ids = contact_ids


class QueueInUse(RoutingError):
    def __init__(self, queue_id: str, why: str) -> None:
        super().__init__(f"queue {queue_id!r} is in use: {why}")
        self.queue_id = queue_id


class ClockWentBackwards(RoutingError):
    def __init__(self, now: float, last: float) -> None:
        super().__init__(f"now={now} is earlier than the last event's now={last}")
        self.now = now
        self.last = last


class NotQueued(RoutingError):
    """Position or wait asked for a contact that is no longer in a queue."""

    def __init__(self, contact_id: str) -> None:
        super().__init__(f"contact {contact_id!r} is not in a queue")
        self.contact_id = contact_id
