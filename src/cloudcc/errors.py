"""Errors shared by the service packages; ``api/`` translates them once into RFC 9457 problems."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of errors a caller can act on; ``detail`` is safe to show to the caller."""

    code = "error"

    def __init__(self, detail: str, *, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(ServiceError):
    """The object does not exist in the caller's tenant (also for other tenants' objects)."""

    code = "not_found"


class Conflict(ServiceError):
    """The change clashes with existing data (a duplicate name, extension or number)."""

    code = "conflict"


class Invalid(ServiceError):
    """The request is well-formed but its values break a rule."""

    code = "invalid"


class AuthenticationError(ServiceError):
    code = "unauthenticated"


class PermissionDenied(ServiceError):
    code = "forbidden"


class QuotaExceeded(ServiceError):
    code = "quota_exceeded"


class RateLimited(ServiceError):
    code = "rate_limited"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
