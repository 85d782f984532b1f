"""Who is calling: a bearer token (web) or an HMAC-signed API key (PaaS), then flow control."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from cloudcc.api.admission import PRINCIPAL_STATE, TENANT_CHARGED
from cloudcc.api.context import ApiContext
from cloudcc.errors import AuthenticationError, RateLimited
from cloudcc.tenancy.credentials import (
    KEY_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from cloudcc.tenancy.model import Actor, PrincipalKind


async def context(request: Request) -> ApiContext:
    """The node's services (async: a sync dependency would cost a thread hop per request)."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


async def authenticate(request: Request) -> Actor:
    """The caller. ``Admission`` has already found the principal from the headers (and
    charged an API key's own bucket, and a bearer token's tenant bucket); a signed request's
    signature is checked here, over the body, and only a request known good is charged to
    its tenant's bucket."""
    ctx: ApiContext = request.app.state.ctx
    headers = request.headers
    state = request.scope.get("state", {})
    admitted = state.get(PRINCIPAL_STATE)
    authorization = headers.get("authorization")
    if authorization:
        if admitted is not None:
            principal = admitted
        else:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise AuthenticationError("use 'Authorization: Bearer <token>'")
            principal = await ctx.auth.from_token(token.strip())
    elif KEY_HEADER in headers:
        timestamp = headers.get(TIMESTAMP_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if not timestamp or not signature:
            raise AuthenticationError(
                f"signed requests need {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers"
            )
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        principal = await ctx.auth.from_signature(
            headers[KEY_HEADER],
            timestamp,
            signature,
            request.method,
            path,
            await request.body(),
            nonce=headers.get(NONCE_HEADER),
        )
    else:
        raise AuthenticationError("authentication required: a bearer token or a signed API key")

    now = time.monotonic()
    limits = ctx.settings.limits
    if admitted is None and principal.kind is PrincipalKind.API_KEY and principal.id:
        wait = ctx.key_limiter.check(
            principal.id, now, principal.rate_limit_rps or limits.api_key_rps
        )
        if wait:
            raise RateLimited("this API key's request rate limit is reached", wait)
    if not state.get(TENANT_CHARGED):
        wait = ctx.tenant_limiter.check(
            principal.tenant_id, now, principal.tenant_rps or limits.tenant_rps
        )
        if wait:
            raise RateLimited("the tenant's request rate limit is reached", wait)
    client = request.client
    return Actor(principal, client.host if client else None, headers.get("user-agent"))


Authenticated = Annotated[Actor, Depends(authenticate)]
