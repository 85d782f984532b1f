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


class DestinationRefused(ContactError, PermissionDenied):
    """The tenant's dial plan or allowed SIP destinations do not let a call go there."""

    code = "destination_refused"


class NoRoute(ContactError, Conflict):
    """No trunk of the tenant can carry a call out now (none, none outbound, all full)."""

    code = "no_route"


__all__ = [
    "BadTarget",
    "ContactError",
    "ContactNotFound",
    "DestinationRefused",
    "IllegalTransition",
    "NoRoute",
    "OperationRefused",
]
