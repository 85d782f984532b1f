"""Errors become RFC 9457 problem responses here, and only here."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

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
from cloudcc.routing.exceptions import RoutingUnavailable
from cloudcc.store.db import DATABASE_ERRORS, is_unavailable

security_log = logging.getLogger("cloudcc.security")
log = logging.getLogger("cloudcc.api")

DATABASE_RETRY_AFTER = 5  # seconds

PROBLEM_JSON = "application/problem+json"

_STATUS: dict[type[ServiceError], tuple[int, str]] = {
    NotFound: (404, "Not Found"),
    Conflict: (409, "Conflict"),
    Invalid: (422, "Unprocessable Content"),
    AuthenticationError: (401, "Unauthorized"),
    PermissionDenied: (403, "Forbidden"),
    QuotaExceeded: (403, "Quota Exceeded"),
    RateLimited: (429, "Too Many Requests"),
}


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    type_: str = "about:blank",
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status, title = next(
        (v for k, v in _STATUS.items() if isinstance(exc, k)), (400, "Bad Request")
    )
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    elif isinstance(exc, AuthenticationError):
        headers = {"WWW-Authenticate": 'Bearer realm="cloudcc"'}
        source = request.client.host if request.client else None
        security_log.info(
            "API authentication failed: %s %s from %s: %s",
            request.method,
            request.url.path,
            source,
            exc.detail,
            extra={"source": source},
        )
    return problem(status, title, exc.detail, exc.errors, headers, f"urn:cloudcc:{exc.code}")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": ".".join(str(p) for p in err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"location": "", "message": "invalid request"}
    return problem(
        422,
        "Unprocessable Content",
        f"{first['location']}: {first['message']}",
        errors,
        type_="urn:cloudcc:validation",
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        # Starlette names only the first route's methods; RFC 9110 §15.5.6 wants them all.
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem(exc.status_code, _title(exc.status_code), str(exc.detail), headers=headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left before sending its whole body: nobody reads an answer, nothing to log
    (a traceback per disconnect would let anyone flood the error log)."""
    log.debug("client left mid-body on %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RoutingUnavailable):  # a cluster's routing is moving between nodes
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return problem(
            503,
            "Service Unavailable",
            "the tenant's routing is unreachable just now; retry after the time in Retry-After",
            headers={"Retry-After": "2"},
            type_="urn:cloudcc:routing_unavailable",
        )
    if is_unavailable(exc):  # the database is down or restarting: come back later
        log.warning(
            "%s %s: the database is unavailable (%r)", request.method, request.url.path, exc
        )
        return problem(
            503,
            "Service Unavailable",
            "the database does not answer just now; retry after the time in Retry-After",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
            type_="urn:cloudcc:database_unavailable",
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal Server Error", "an unexpected error was logged")


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for this path."""
    path = request.url.path
    literal: set[str] = set()
    templated: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            (templated if "{" in template else literal).update(m.upper() for m in operations)
    # A literal path (/contacts/live) is what the request means, not /contacts/{id}.
    return sorted(literal or templated)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RoutingUnavailable, _unexpected)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # Handled here rather than by the catch-all (which re-raises to the server): errors of
    # the database layer are a 503 while it is unreachable.
    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _unexpected)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
