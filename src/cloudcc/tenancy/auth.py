"""Authentication: password login, bearer tokens and HMAC-signed API keys to a ``Principal``."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from cloudcc.store.db import Database
from cloudcc.store.tables import Agent, ApiKey, Role, Tenant, User, utcnow
from cloudcc.tenancy import audit
from cloudcc.tenancy.credentials import (
    ReplayGuard,
    SecretBox,
    TokenSigner,
    sign_request,
    verify_password_off_loop,
)
from cloudcc.tenancy.exceptions import AuthenticationError
from cloudcc.tenancy.model import Actor, Principal, PrincipalKind

_CACHE_SECONDS = 5.0  # a revoked token or key stops working within this time on every node

log = logging.getLogger("cloudcc.security")


@dataclass(slots=True)
class _CachedKey:
    principal: Principal
    secret: str
    expires_at: float | None
    fetched: float


class AuthService:
    def __init__(
        self, db: Database, signer: TokenSigner, box: SecretBox, window_seconds: int = 300
    ) -> None:
        self.db = db
        self.signer = signer
        self.box = box
        self.replays = ReplayGuard(window_seconds)
        self._users: dict[tuple[str, str], tuple[Principal, int, float]] = {}
        self._keys: dict[str, _CachedKey] = {}

    async def login(
        self,
        tenant_slug: str,
        username: str,
        password: str,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> dict[str, object]:
        async with self.db.transaction() as s:
            row = (
                await s.execute(
                    select(User, Tenant)
                    .join(Tenant, Tenant.id == User.tenant_id)
                    .where(Tenant.slug == tenant_slug, User.username == username)
                )
            ).first()
            user, tenant = (row[0], row[1]) if row else (None, None)
            ok = (
                user is not None
                and tenant is not None
                and await verify_password_off_loop(password, user.password_hash)
                and user.status == "active"
                and tenant.status == "active"
            )
            if user is not None and tenant is not None:
                principal = Principal(
                    tenant.id, PrincipalKind.USER, user.id, user.username, frozenset()
                )
                audit.record(
                    s,
                    Actor(principal, ip, user_agent),
                    "login" if ok else "login_failed",
                    "user",
                    user.id,
                )
        if not ok or user is None or tenant is None:
            log.info(
                "login failed: user %r of tenant %r from %s",
                username,
                tenant_slug,
                ip,
                extra={"tenant_id": tenant.id if tenant else None, "username": username},
            )
            raise AuthenticationError("wrong tenant, username or password")
        token = self.signer.issue(tenant.id, user.id, user.token_version)
        principal = await self._user_principal(tenant.id, user.id, user.token_version)
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.signer.ttl_seconds,
            "tenant_id": tenant.id,
            "user_id": user.id,
            "agent_id": principal.agent_id,
            "role": principal.role,
            "permissions": sorted(principal.permissions),
        }

    async def from_token(self, token: str, now: float | None = None) -> Principal:
        now = time.time() if now is None else now
        claims = self.signer.verify(token, now)
        return await self._user_principal(claims.tenant_id, claims.user_id, claims.version, now)

    async def _user_principal(
        self, tenant_id: str, user_id: str, version: int, now: float | None = None
    ) -> Principal:
        now = time.time() if now is None else now
        cached = self._users.get((tenant_id, user_id))
        if cached and now - cached[2] < _CACHE_SECONDS:
            principal, current_version, _ = cached
        else:
            async with self.db.session() as s:
                row = (
                    await s.execute(
                        select(User, Role, Tenant.status, Tenant.rate_limit_rps, Agent.id)
                        .join(Role, Role.id == User.role_id)
                        .join(Tenant, Tenant.id == User.tenant_id)
                        .outerjoin(Agent, Agent.user_id == User.id)
                        .where(User.tenant_id == tenant_id, User.id == user_id)
                    )
                ).first()
            if row is None:
                raise AuthenticationError("the token's user no longer exists")
            user, role, tenant_status, tenant_rps, agent_id = row
            if user.status != "active" or tenant_status != "active":
                raise AuthenticationError("the account is disabled")
            principal = Principal(
                tenant_id=tenant_id,
                kind=PrincipalKind.USER,
                id=user.id,
                name=user.username,
                permissions=frozenset(role.permissions),
                role=role.name,
                agent_id=agent_id,
                tenant_rps=tenant_rps,
            )
            current_version = user.token_version
            self._users[(tenant_id, user_id)] = (principal, current_version, now)
        if version != current_version:
            raise AuthenticationError("the token was revoked")
        return principal

    async def from_signature(
        self,
        access_key: str,
        timestamp: str,
        signature: str,
        method: str,
        path_and_query: str,
        body: bytes,
        now: float | None = None,
    ) -> Principal:
        """Verify an HMAC-signed request (see ``credentials.canonical_request``)."""
        now = time.time() if now is None else now
        key = await self._live_key(access_key, now)
        expected = sign_request(key.secret, method, path_and_query, timestamp, body)
        if not hmac.compare_digest(expected, signature.lower()):
            raise AuthenticationError("bad request signature")
        self.replays.check(timestamp, signature.lower(), now)
        return key.principal

    async def from_access_key(self, access_key: str, now: float | None = None) -> Principal:
        """The principal of an API key that is still active and unexpired: what a long-lived
        stream, opened by one signed request, asks again while it lasts."""
        now = time.time() if now is None else now
        return (await self._live_key(access_key, now)).principal

    async def _live_key(self, access_key: str, now: float) -> _CachedKey:
        key = await self._key(access_key, now)
        if key.expires_at is not None and key.expires_at < now:
            raise AuthenticationError("the API key has expired")
        return key

    async def _key(self, access_key: str, now: float) -> _CachedKey:
        cached = self._keys.get(access_key)
        if cached and now - cached.fetched < _CACHE_SECONDS:
            return cached
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(ApiKey, Role, Tenant.status, Tenant.rate_limit_rps)
                    .join(Role, Role.id == ApiKey.role_id)
                    .join(Tenant, Tenant.id == ApiKey.tenant_id)
                    .where(ApiKey.access_key == access_key)
                )
            ).first()
        if row is None:
            raise AuthenticationError("unknown API key")
        key, role, tenant_status, tenant_rps = row
        if key.status != "active" or tenant_status != "active":
            raise AuthenticationError("the API key is disabled")
        principal = Principal(
            tenant_id=key.tenant_id,
            kind=PrincipalKind.API_KEY,
            id=key.id,
            name=key.name,
            permissions=frozenset(role.permissions),
            role=role.name,
            rate_limit_rps=key.rate_limit_rps,
            tenant_rps=tenant_rps,
        )
        cached = _CachedKey(
            principal,
            self.box.open(key.secret_enc),
            key.expires_at.timestamp() if key.expires_at else None,
            now,
        )
        self._keys[access_key] = cached
        if key.last_used_at is None or (utcnow() - _aware(key.last_used_at)).total_seconds() > 60:
            async with self.db.transaction() as s:
                await s.execute(
                    update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=utcnow())
                )
        return cached

    def forget(self) -> None:
        """Drop cached principals (tests; a change on this node is seen at once)."""
        self._users.clear()
        self._keys.clear()


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
