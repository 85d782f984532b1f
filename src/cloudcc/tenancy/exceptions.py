"""Errors of tenancy and IAM (the shared kinds from ``cloudcc.errors``)."""

from cloudcc.errors import (
    AuthenticationError,
    Conflict,
    Invalid,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServiceError,
)

__all__ = [
    "AuthenticationError",
    "Conflict",
    "Invalid",
    "NotFound",
    "PermissionDenied",
    "QuotaExceeded",
    "RateLimited",
    "ServiceError",
]
