"""Users, roles and API keys of a tenant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.bus import LocalBus
from cloudcc.store.db import Database
from cloudcc.store.tables import Agent, ApiKey, Role, User
from cloudcc.tenancy.credentials import (
    SecretBox,
    hash_password_off_loop,
    new_access_key,
    new_secret,
)
from cloudcc.tenancy.crud import Resource
from cloudcc.tenancy.exceptions import Conflict, Invalid, NotFound, PermissionDenied
from cloudcc.tenancy.model import TENANT_PERMISSIONS, Actor, Permission


async def resolve_role(s: AsyncSession, tenant_id: str, ref: str) -> Role:
    """A role of the tenant by id or by name."""
    role = await s.scalar(
        select(Role).where(Role.tenant_id == tenant_id, (Role.id == ref) | (Role.name == ref))
    )
    if role is None:
        raise Invalid(f"role {ref!r} does not exist", errors=[{"field": "role", "value": ref}])
    return role


def check_grant(actor: Actor, role: Role) -> None:
    """Nobody hands out permissions they do not hold themselves."""
    missing = set(role.permissions) - set(actor.principal.permissions)
    if missing:
        raise PermissionDenied(
            f"cannot grant role {role.name!r}: it holds permissions you lack: "
            + ", ".join(sorted(missing))
        )


async def check_control(s: AsyncSession, actor: Actor, kind: str, role_id: str) -> None:
    """Nobody changes or deletes a principal (user, agent's user, API key) that holds
    permissions they lack: else a delegated role could set an admin's password, disable it
    or revive its key, and so become or stop the admin."""
    role = await role_by_id(s, actor.tenant_id, role_id)
    missing = set(role.permissions) - set(actor.principal.permissions)
    if missing:
        raise PermissionDenied(
            f"cannot change this {kind}: its role {role.name!r} holds permissions you lack: "
            + ", ".join(sorted(missing))
        )


class RoleResource(Resource):
    kind = "role"
    model = Role
    read_permission = Permission.ROLES_READ
    write_permission = Permission.ROLES_WRITE
    search_columns = ("name", "description")
    filter_columns = ("name", "builtin")

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["name"], data)
        values = dict(data)
        values["permissions"] = self._permissions(actor, data.get("permissions", []))
        values["builtin"] = False
        return values

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        if row.builtin:
            raise Invalid(f"built-in role {row.name!r} cannot be changed; create a custom role")
        await self.ensure_unique(s, actor.tenant_id, ["name"], data, exclude_id=row.id)
        values = dict(data)
        if "permissions" in data:
            values["permissions"] = self._permissions(actor, data["permissions"])
        return values

    async def before_delete(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        if row.builtin:
            raise Invalid(f"built-in role {row.name!r} cannot be deleted")
        in_use = await s.scalar(select(func.count()).where(User.role_id == row.id)) or 0
        in_use += await s.scalar(select(func.count()).where(ApiKey.role_id == row.id)) or 0
        if in_use:
            raise Conflict(f"role {row.name!r} is still given to {in_use} users or API keys")

    def _permissions(self, actor: Actor, perms: list[str]) -> list[str]:
        unknown = sorted(set(perms) - {p.value for p in TENANT_PERMISSIONS})
        if unknown:
            raise Invalid("unknown permissions: " + ", ".join(unknown))
        missing = set(perms) - set(actor.principal.permissions)
        if missing:
            raise PermissionDenied(
                "cannot grant permissions you lack: " + ", ".join(sorted(missing))
            )
        return sorted(set(perms))


class UserResource(Resource):
    kind = "user"
    model = User
    read_permission = Permission.USERS_READ
    write_permission = Permission.USERS_WRITE
    search_columns = ("username", "display_name", "email")
    filter_columns = ("status", "role_id", "username")
    private_columns = frozenset({"tenant_id", "password_hash", "token_version"})
    invalidated_by = ("role.", "agent.")

    def listing(self, tenant_id: str) -> Select[Any]:
        return (
            select(self.table, Role.name.label("role"))
            .join(Role, Role.id == User.role_id)
            .where(User.tenant_id == tenant_id)
        )

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["username"], data)
        role = await resolve_role(s, actor.tenant_id, data.get("role", "agent"))
        check_grant(actor, role)
        values = {k: v for k, v in data.items() if k not in ("role", "password")}
        values["role_id"] = role.id
        values["password_hash"] = await hash_password_off_loop(data["password"])
        return values

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        await check_control(s, actor, "user", row.role_id)
        await self.ensure_unique(s, actor.tenant_id, ["username"], data, exclude_id=row.id)
        values = {k: v for k, v in data.items() if k not in ("role", "password")}
        if "role" in data:
            role = await resolve_role(s, actor.tenant_id, data["role"])
            check_grant(actor, role)
            values["role_id"] = role.id
        if "password" in data:
            values["password_hash"] = await hash_password_off_loop(data["password"])
        if {"password", "status", "role"} & data.keys():
            values["token_version"] = row.token_version + 1  # revokes issued tokens
        return values

    async def before_delete(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        if actor.principal.id == row.id:
            raise Invalid("you cannot delete yourself")
        await check_control(s, actor, "user", row.role_id)
        # An agent's sign-in user goes with its agent: deleted here, the agent would vanish
        # without its own checks and its agent.deleted event (routing would keep it).
        agent = await s.scalar(select(Agent.id).where(Agent.user_id == row.id))
        if agent is not None:
            raise Conflict(
                f"this user is agent {agent}'s sign-in: delete the agent "
                f"(DELETE /agents/{agent}), which deletes its user too"
            )


class ApiKeyResource(Resource):
    kind = "api_key"
    model = ApiKey
    read_permission = Permission.APIKEYS_READ
    write_permission = Permission.APIKEYS_WRITE
    filter_columns = ("status", "role_id")
    private_columns = frozenset({"tenant_id", "secret_enc"})
    invalidated_by = ("role.",)

    def __init__(self, db: Database, bus: LocalBus, box: SecretBox) -> None:
        super().__init__(db, bus)
        self.box = box

    def listing(self, tenant_id: str) -> Select[Any]:
        return (
            select(self.table, Role.name.label("role"))
            .join(Role, Role.id == ApiKey.role_id)
            .where(ApiKey.tenant_id == tenant_id)
        )

    async def create(self, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
        """Create a key; the secret is in this answer only and cannot be read again."""
        secret = new_secret()
        created = await super().create(actor, {**data, "_secret": secret})
        return {**created, "secret": secret}

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        role = await resolve_role(s, actor.tenant_id, data.get("role", "admin"))
        check_grant(actor, role)
        values = {k: v for k, v in data.items() if k not in ("role", "_secret")}
        values.update(
            role_id=role.id, access_key=new_access_key(), secret_enc=self.box.seal(data["_secret"])
        )
        return values

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        await check_control(s, actor, "API key", row.role_id)
        values = {k: v for k, v in data.items() if k != "role"}
        if "role" in data:
            role = await resolve_role(s, actor.tenant_id, data["role"])
            check_grant(actor, role)
            values["role_id"] = role.id
        return values

    async def before_delete(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        await check_control(s, actor, "API key", row.role_id)

    def _redact(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in super()._redact(data).items() if k != "_secret"}


async def role_by_id(s: AsyncSession, tenant_id: str, role_id: str) -> Role:
    role = await s.scalar(select(Role).where(Role.tenant_id == tenant_id, Role.id == role_id))
    if role is None:
        raise NotFound(f"role {role_id} not found")
    return role
