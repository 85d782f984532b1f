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
    check_nonce,
    hash_password_off_loop,
    new_secret,
    sign_request,
    verify_password_off_loop,
)
from cloudcc.tenancy.exceptions import AuthenticationError, NotFound, PermissionDenied
from cloudcc.tenancy.iam import check_control
from cloudcc.tenancy.login_guard import LoginGuard, LoginPolicy
from cloudcc.tenancy.model import Actor, Permission, Principal, PrincipalKind
from cloudcc.tenancy.replay import SeenRequests

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
        self,
        db: Database,
        signer: TokenSigner,
        box: SecretBox,
        window_seconds: int = 300,
        login_policy: LoginPolicy | None = None,
    ) -> None:
        self.db = db
        self.signer = signer
        self.box = box
        self.replays = ReplayGuard(window_seconds)
        self.seen = SeenRequests(db)
        self.login_guard = LoginGuard(box, login_policy)
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
        """A token for a right password; see ``login_guard`` for throttling and lockout.

        An unknown user costs the same password hash as a known one (a dummy), so the time
        of the answer tells nothing; so do its words and status.
        """
        guard = self.login_guard
        guard.check_source(ip, time.monotonic())
        account = guard.account(tenant_slug, username)
        now = utcnow()
        async with self.db.session() as s:
            await guard.check_account(s, account, now)
            row = (
                await s.execute(
                    select(User, Tenant)
                    .join(Tenant, Tenant.id == User.tenant_id)
                    .where(Tenant.slug == tenant_slug, User.username == username)
                )
            ).first()
        user, tenant = (row[0], row[1]) if row else (None, None)
        stored = user.password_hash if user is not None else await _dummy_hash()
        good_password = await verify_password_off_loop(password, stored)
        ok = (
            good_password
            and user is not None
            and tenant is not None
            and user.status == "active"
            and tenant.status == "active"
        )
        async with self.db.transaction() as s:
            actor = None
            if user is not None and tenant is not None:
                principal = Principal(
                    tenant.id, PrincipalKind.USER, user.id, user.username, frozenset()
                )
                actor = Actor(principal, ip, user_agent)
            if ok and actor is not None and user is not None:
                failures = await guard.succeeded(s, account)
                audit.record(
                    s,
                    actor,
                    "login",
                    "user",
                    user.id,
                    {"failed_before": failures} if failures else None,
                )
            else:
                guard.source_failed(ip, time.monotonic())
                failure = await guard.failed(s, account, now)
                if actor is not None and user is not None and (failure.first or failure.locked):
                    audit.record(
                        s,
                        actor,
                        "login_locked" if failure.locked else "login_failed",
                        "user",
                        user.id,
                        {"failures": failure.failures},
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

    async def unlock(self, actor: Actor, user_id: str) -> dict[str, object]:
        """Clear a user's failed logins and lock (``users:write`` and every permission of
        the user's role, as for any change to a user)."""
        if not actor.principal.can(Permission.USERS_WRITE):
            raise PermissionDenied("this needs the permission users:write")
        async with self.db.transaction() as s:
            row = (
                await s.execute(
                    select(User, Tenant.slug)
                    .join(Tenant, Tenant.id == User.tenant_id)
                    .where(User.tenant_id == actor.tenant_id, User.id == user_id)
                )
            ).first()
            if row is None:
                raise NotFound(f"user {user_id} not found")
            user, slug = row
            await check_control(s, actor, "user", user.role_id)
            account = self.login_guard.account(slug, user.username)
            was_locked = await self.login_guard.locked_until(s, account, utcnow()) is not None
            await self.login_guard.unlock(s, account)
            audit.record(s, actor, "unlock", "user", user.id, {"was_locked": was_locked})
        return {"id": user_id, "was_locked": was_locked}

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
                        select(
                            User,
                            Role,
                            Tenant.status,
                            Tenant.rate_limit_rps,
                            Tenant.max_seats,
                            Agent.id,
                        )
                        .join(Role, Role.id == User.role_id)
                        .join(Tenant, Tenant.id == User.tenant_id)
                        .outerjoin(Agent, Agent.user_id == User.id)
                        .where(User.tenant_id == tenant_id, User.id == user_id)
                    )
                ).first()
            if row is None:
                raise AuthenticationError("the token's user no longer exists")
            user, role, tenant_status, tenant_rps, seats, agent_id = row
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
                tenant_seats=seats,
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
        nonce: str | None = None,
    ) -> Principal:
        """Verify an HMAC-signed request (see ``credentials.canonical_request``).

        A replay is refused on any node and after a restart: the nonce (or, without one,
        the signature) is remembered in the database until the timestamp window has passed.
        """
        now = time.time() if now is None else now
        ts = self.replays.check_window(timestamp, now)
        if nonce is not None:
            check_nonce(nonce)
        key = await self._live_key(access_key, now)
        expected = sign_request(key.secret, method, path_and_query, timestamp, body, nonce)
        # Bytes, not str: compare_digest raises TypeError on a non-ASCII str.
        given = signature.lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given):
            raise AuthenticationError("bad request signature")
        replay_key = f"n:{nonce}" if nonce is not None else expected
        self.replays.check(timestamp, f"{access_key}|{replay_key}", now)
        await self.seen.remember(access_key, replay_key, ts + self.replays.window)
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
                    select(ApiKey, Role, Tenant.status, Tenant.rate_limit_rps, Tenant.max_seats)
                    .join(Role, Role.id == ApiKey.role_id)
                    .join(Tenant, Tenant.id == ApiKey.tenant_id)
                    .where(ApiKey.access_key == access_key)
                )
            ).first()
        if row is None:
            raise AuthenticationError("unknown API key")
        key, role, tenant_status, tenant_rps, seats = row
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
            tenant_seats=seats,
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


_DUMMY: list[str] = []


async def _dummy_hash() -> str:
    """A hash of nothing anyone knows, checked for unknown users (same cost as a real one)."""
    if not _DUMMY:
        _DUMMY.append(await hash_password_off_loop(new_secret()))
    return _DUMMY[0]


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
