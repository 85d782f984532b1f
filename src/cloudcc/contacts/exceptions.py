"""Errors of the contact layer."""

from __future__ import annotations

from cloudcc.errors import Conflict, Invalid, NotFound, PermissionDenied, ServiceError


class ContactError(ServiceError):
    """Base of errors raised by ``cloudcc.contacts``."""


class IllegalTransition(ContactError, Conflict):
    """A state change the contact's or leg's transition table does not allow."""

    code = "illegal_transition"


class ContactNotFound(ContactError, NotFound):
    """No such live contact in the caller's tenant."""


class OperationRefused(ContactError, Conflict):
    """A call-control operation does not apply to the contact in its current state."""

    code = "operation_refused"


class BadTarget(ContactError, Invalid):
    """A transfer or call target that does not exist or cannot be reached."""


class AgentStateConflict(ContactError, Conflict):
    """The agent's current state does not allow the change (already signed in, not signed
    in, already ready, still holding contacts)."""

    code = "agent_state_conflict"


class UnknownReason(ContactError, Invalid):
    """A not-ready reason or disposition code the tenant has not defined."""

    code = "unknown_code"


class NoDevice(ContactError, Invalid):
    """An agent signs in with no phone the node can reach."""

    code = "no_device"


class DestinationRefused(ContactError, PermissionDenied):
    """The tenant's dial plan or allowed SIP destinations do not let a call go there."""

    code = "destination_refused"


class NoRoute(ContactError, Conflict):
    """No trunk of the tenant can carry a call out now (none, none outbound, all full)."""

    code = "no_route"


__all__ = [
    "AgentStateConflict",
    "BadTarget",
    "ContactError",
    "ContactNotFound",
    "DestinationRefused",
    "IllegalTransition",
    "NoDevice",
    "NoRoute",
    "OperationRefused",
    "UnknownReason",
]
