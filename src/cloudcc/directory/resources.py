"""The tenant's contact-center directory: agents, skill queues, numbers, trunks, hours.

These are configuration objects; the routing engine, the SIP registrar and the IVR read them
(and follow the ``<kind>.created/updated/deleted`` events to pick changes up at run time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.bus import LocalBus
from cloudcc.directory.pool import held_as_provisioned
from cloudcc.store.db import Database
from cloudcc.store.tables import (
    Agent,
    BusinessHours,
    FlowRecord,
    PhoneNumber,
    ProvisionedNumber,
    Role,
    SkillQueue,
    Tenant,
    Trunk,
    User,
)
from cloudcc.tenancy import audit
from cloudcc.tenancy.credentials import SecretBox, hash_password_off_loop, sip_ha1
from cloudcc.tenancy.crud import RELATED_CHANGES, Resource
from cloudcc.tenancy.exceptions import Conflict, Invalid, PermissionDenied, QuotaExceeded
from cloudcc.tenancy.iam import check_control, check_grant, resolve_role
from cloudcc.tenancy.model import Actor, Page, Permission
from cloudcc.tenancy.tenants import validate_timezone


async def _tenant(s: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await s.get(Tenant, tenant_id)
    assert tenant is not None, "an actor's tenant always exists"
    return tenant


def _assigned_device(actor: Actor, data: dict[str, Any]) -> str | None:
    """The phone an agent may sign in with: assigning one lets the node ring that address,
    so it needs the permission to sign in with any phone (agents:device)."""
    device: str | None = data.get("device")
    if device is not None and not actor.principal.can(Permission.AGENTS_DEVICE):
        raise PermissionDenied("assigning an agent a device needs agents:device")
    return device


class AgentResource(Resource):
    """An agent is a user (web login, role) with a seat: extension, SIP phone, skills."""

    kind = "agent"
    model = Agent
    read_permission = Permission.AGENTS_READ
    write_permission = Permission.AGENTS_WRITE
    search_columns = ("name", "extension")
    filter_columns = ("extension", "status", "name")
    private_columns = frozenset({"tenant_id", "sip_ha1_md5", "sip_ha1_sha256", "sip_password_enc"})
    secret_inputs = frozenset({"password", "sip_password"})
    invalidated_by = ("user.", "role.")

    def __init__(self, db: Database, bus: LocalBus, box: SecretBox) -> None:
        super().__init__(db, bus)
        self.box = box

    def listing(self, tenant_id: str) -> Select[Any]:
        return (
            select(self.table, User.username, User.email, Role.name.label("role"))
            .join(User, User.id == Agent.user_id)
            .join(Role, Role.id == User.role_id)
            .where(Agent.tenant_id == tenant_id)
        )

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        tenant = await _tenant(s, actor.tenant_id)
        seats = await s.scalar(
            select(func.count()).select_from(Agent).where(Agent.tenant_id == tenant.id)
        )
        if (seats or 0) >= tenant.max_seats:
            raise QuotaExceeded(f"the tenant's {tenant.max_seats} seats are all taken")
        await self.ensure_unique(s, tenant.id, ["extension"], data)
        username = data.get("username") or data["extension"]
        if await s.scalar(
            select(User.id).where(User.tenant_id == tenant.id, User.username == username)
        ):
            raise Conflict(f"a user named {username!r} already exists")
        role = await resolve_role(s, tenant.id, data.get("role", "agent"))
        check_grant(actor, role)
        user = User(
            tenant_id=tenant.id,
            username=username,
            display_name=data["name"],
            email=data.get("email"),
            status=data.get("status", "active"),
            password_hash=await hash_password_off_loop(
                data.get("password") or data["sip_password"]
            ),
            role_id=role.id,
        )
        s.add(user)
        await s.flush()
        md5, sha256 = sip_ha1(data["extension"], tenant.sip_domain, data["sip_password"])
        return {
            "user_id": user.id,
            "name": data["name"],
            "extension": data["extension"],
            "sip_ha1_md5": md5,
            "sip_ha1_sha256": sha256,
            "sip_password_enc": self.box.seal(data["sip_password"]),
            "skills": data.get("skills", {}),
            "status": data.get("status", "active"),
            "device": _assigned_device(actor, data),
        }

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self._check_control(s, actor, row)
        await self.ensure_unique(s, actor.tenant_id, ["extension"], data, exclude_id=row.id)
        values: dict[str, Any] = {k: data[k] for k in ("name", "skills", "status") if k in data}
        if "device" in data:
            values["device"] = _assigned_device(actor, data)
        extension = data.get("extension", row.extension)
        if "extension" in data and "sip_password" not in data and extension != row.extension:
            raise Invalid(
                "changing the extension needs a new sip_password (the digest realm "
                "hash covers the user name)"
            )
        values["extension"] = extension
        if "sip_password" in data:
            tenant = await _tenant(s, actor.tenant_id)
            values["sip_ha1_md5"], values["sip_ha1_sha256"] = sip_ha1(
                extension, tenant.sip_domain, data["sip_password"]
            )
            values["sip_password_enc"] = self.box.seal(data["sip_password"])
        user_fields = {"password", "role", "email", "username", "name", "status"} & data.keys()
        if user_fields:
            user = await s.get(User, row.user_id)
            assert user is not None
            before = {"username": user.username, "role": user.role_id, "email": user.email}
            before["status"] = user.status
            if "username" in data and data["username"] != user.username:
                if await s.scalar(
                    select(User.id).where(
                        User.tenant_id == actor.tenant_id, User.username == data["username"]
                    )
                ):
                    raise Conflict(f"a user named {data['username']!r} already exists")
                user.username = data["username"]
            if "role" in data:
                role = await resolve_role(s, actor.tenant_id, data["role"])
                check_grant(actor, role)
                user.role_id = role.id
            if "password" in data:
                user.password_hash = await hash_password_off_loop(data["password"])
            if "email" in data:
                user.email = data["email"]
            if "name" in data:
                user.display_name = data["name"]
            if "status" in data:
                user.status = data["status"]
            if {"password", "role", "status"} & data.keys():
                user.token_version += 1
            after = {"username": user.username, "role": user.role_id, "email": user.email}
            after["status"] = user.status
            related = s.info.setdefault(RELATED_CHANGES, {})
            for key, old in before.items():
                if after[key] != old:
                    related[f"user.{key}"] = [old, after[key]]
            if "password" in data:
                related["user.password"] = audit.REDACTED
        return values

    async def before_delete(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        await self._check_control(s, actor, row)

    async def after_delete(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        user = await s.get(User, row.user_id)
        if user is not None:
            await s.delete(user)

    async def _check_control(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        """An agent is its user: changing or deleting it needs every permission of its role."""
        role_id = await s.scalar(select(User.role_id).where(User.id == row.user_id))
        if role_id is not None:
            await check_control(s, actor, "agent", role_id)


class QueueResource(Resource):
    kind = "queue"
    model = SkillQueue
    read_permission = Permission.QUEUES_READ
    write_permission = Permission.QUEUES_WRITE
    search_columns = ("name", "description")
    filter_columns = ("name", "strategy")

    def __init__(self, db: Database, bus: LocalBus, prompts_dir: Path | None = None) -> None:
        super().__init__(db, bus)
        #: ``<data>/prompts``: a queue's music on hold names one of the tenant's prompts.
        self.prompts_dir = prompts_dir

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["name"], data)
        await self._check_overflow(s, actor.tenant_id, data.get("overflow") or {}, data["name"])
        self._check_music(actor.tenant_id, data.get("music_on_hold"))
        return dict(data)

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["name"], data, exclude_id=row.id)
        if "overflow" in data:
            await self._check_overflow(s, actor.tenant_id, data["overflow"] or {}, row.name)
        self._check_music(actor.tenant_id, data.get("music_on_hold"))
        return dict(data)

    def _check_music(self, tenant_id: str, name: str | None) -> None:
        if name is None or name == "default" or self.prompts_dir is None:
            return
        if not (self.prompts_dir / tenant_id / f"{name}.wav").is_file():
            raise Invalid(
                f"music_on_hold {name!r} is not one of your prompts: upload it first "
                f"(PUT /prompts/{name}) or use 'default'",
                errors=[{"field": "music_on_hold"}],
            )

    async def before_delete(self, s: AsyncSession, actor: Actor, row: Any) -> None:
        used = await s.scalar(
            select(PhoneNumber.number).where(
                PhoneNumber.tenant_id == actor.tenant_id,
                PhoneNumber.target_type == "queue",
                PhoneNumber.target == row.name,
            )
        )
        if used:
            raise Conflict(f"queue {row.name!r} is the target of number {used}")

    async def _check_overflow(
        self, s: AsyncSession, tenant_id: str, overflow: dict[str, Any], own_name: str
    ) -> None:
        for condition, action in overflow.items():
            if isinstance(action, dict) and action.get("action") == "flow":
                published = await s.scalar(
                    select(FlowRecord.published_version).where(
                        FlowRecord.tenant_id == tenant_id, FlowRecord.name == action.get("target")
                    )
                )
                if published is None:
                    raise Invalid(
                        f"overflow on {condition} targets flow {action.get('target')!r}, which "
                        "does not exist or has no published version: publish it first",
                        errors=[{"field": f"overflow.{condition}.target"}],
                    )
                continue
            if not isinstance(action, dict) or action.get("action") != "queue":
                continue
            target = action.get("target")
            if target == own_name:
                raise Invalid(f"overflow on {condition} cannot target the queue itself")
            if not await self.exists(s, tenant_id, "name", target, None):
                raise Invalid(f"overflow on {condition} targets unknown queue {target!r}")


class BusinessHoursResource(Resource):
    kind = "business_hours"
    model = BusinessHours
    read_permission = Permission.HOURS_READ
    write_permission = Permission.HOURS_WRITE
    filter_columns = ("name",)

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["name"], data)
        if "timezone" in data:
            validate_timezone(data["timezone"])
            return dict(data)
        # Opening hours are read in the tenant's own time zone unless they name another.
        tenant_zone = await s.scalar(select(Tenant.timezone).where(Tenant.id == actor.tenant_id))
        return {**data, "timezone": tenant_zone or "UTC"}

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["name"], data, exclude_id=row.id)
        if "timezone" in data:
            validate_timezone(data["timezone"])
        return dict(data)


class TrunkResource(Resource):
    """A SIP trunk: a carrier or the enterprise's own PBX (bring your own number).

    Its calls come in from its allowed networks, to the Contact this node registers at the
    carrier (``registration``), or with its username and password (``inbound_auth``); calls
    out try the outbound trunks by ``priority``. The voice side adds, per node, the
    registration state and the channels in use (``live``)."""

    kind = "trunk"
    model = Trunk
    read_permission = Permission.TRUNKS_READ
    write_permission = Permission.TRUNKS_WRITE
    search_columns = ("name", "host")
    filter_columns = ("name", "host")
    private_columns = frozenset({"tenant_id", "password_enc"})

    def __init__(self, db: Database, bus: LocalBus, box: SecretBox) -> None:
        super().__init__(db, bus)
        self.box = box
        # trunk id -> what this node knows of it now (set by the voice side when it runs)
        self.live: Callable[[str], dict[str, Any]] | None = None

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["name"], data)
        await self._check(s, actor.tenant_id, data, None)
        return self._seal(data)

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["name"], data, exclude_id=row.id)
        merged = {
            "username": row.username,
            "registration": row.registration,
            "inbound_auth": row.inbound_auth,
            "has_password": bool(row.password_enc),
            **data,
        }
        await self._check(s, actor.tenant_id, merged, row.id)
        return self._seal(data)

    async def _check(
        self, s: AsyncSession, tenant_id: str, data: dict[str, Any], own_id: str | None
    ) -> None:
        password = bool(data.get("password")) or (
            "password" not in data and data.get("has_password", False)
        )
        username = data.get("username")
        for flag in ("registration", "inbound_auth"):
            if data.get(flag) and not (username and password):
                raise Invalid(
                    f"{flag} needs the trunk's username and password",
                    errors=[{"field": "username" if not username else "password"}],
                )
        if data.get("inbound_auth") and username:
            # A digest username names one principal of the tenant: an agent or this trunk.
            if await s.scalar(
                select(Agent.id).where(Agent.tenant_id == tenant_id, Agent.extension == username)
            ):
                raise Conflict(f"an agent has the extension {username!r}; use another username")
            clash = select(Trunk.id).where(
                Trunk.tenant_id == tenant_id,
                Trunk.inbound_auth.is_(True),
                Trunk.username == username,
            )
            if own_id is not None:
                clash = clash.where(Trunk.id != own_id)
            if await s.scalar(clash):
                raise Conflict(f"another trunk authenticates as {username!r}")

    def _seal(self, data: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in data.items() if k not in ("password", "has_password")}
        if "password" in data:
            values["password_enc"] = self.box.seal(data["password"]) if data["password"] else None
        return values

    def output(self, row: Any) -> dict[str, Any]:
        out = super().output(row)
        out["has_password"] = bool(row["password_enc"])
        return out

    def _with_live(self, row: dict[str, Any]) -> dict[str, Any]:
        state = self.live(row["id"]) if self.live is not None else {}
        return {**row, **LIVE_DEFAULTS, **state}

    async def list(
        self,
        actor: Actor,
        *,
        filters: Mapping[str, Any] | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        page = await super().list(actor, filters=filters, q=q, limit=limit, offset=offset)
        page.items = [self._with_live(r) for r in page.items]
        return page

    async def get(self, actor: Actor, id: str) -> dict[str, Any]:
        return self._with_live(await super().get(actor, id))

    async def create(self, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
        return self._with_live(await super().create(actor, data))

    async def update(self, actor: Actor, id: str, data: dict[str, Any]) -> dict[str, Any]:
        return self._with_live(await super().update(actor, id, data))


LIVE_DEFAULTS: dict[str, Any] = {
    "registration_state": None,
    "registration_error": None,
    "registered_until": None,
    "channels_in_use": 0,
}


class NumberResource(Resource):
    """A phone number (DID) and where its calls go: a flow, a queue or an agent.

    A tenant holds a number the platform operator provisioned to it (``/number-pool``), or a
    number it brings on one of its own trunks (``trunk_id``: calls reach it from that trunk
    only). A refusal says the same whether or not another tenant holds the digits."""

    kind = "number"
    model = PhoneNumber
    read_permission = Permission.NUMBERS_READ
    write_permission = Permission.NUMBERS_WRITE
    search_columns = ("number", "name")
    filter_columns = ("number", "target_type", "trunk_id")

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["number"], data)
        await self._check_holding(s, actor.tenant_id, data["number"], data.get("trunk_id"))
        await self._check_refs(s, actor.tenant_id, data)
        return dict(data)

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        await self.ensure_unique(s, actor.tenant_id, ["number"], data, exclude_id=row.id)
        merged = {
            "number": row.number,
            "target_type": row.target_type,
            "target": row.target,
            "trunk_id": row.trunk_id,
            **data,
        }
        if "number" in data or "trunk_id" in data:
            await self._check_holding(s, actor.tenant_id, merged["number"], merged["trunk_id"])
        await self._check_refs(s, actor.tenant_id, merged)
        return dict(data)

    async def _check_holding(
        self, s: AsyncSession, tenant_id: str, number: str, trunk_id: str | None
    ) -> None:
        """The tenant may hold ``number``: provisioned to it, or brought on its own trunk."""
        if trunk_id:
            return  # a trunk of the tenant (checked with the other references)
        holder = await s.scalar(
            select(ProvisionedNumber.tenant_id).where(ProvisionedNumber.number == number)
        )
        if holder != tenant_id:
            raise Invalid(
                f"number {number} is not provisioned to your tenant: ask the platform "
                "operator to provision it, or bring your own number by binding it to one of "
                "your trunks (trunk_id)",
                errors=[{"field": "number"}],
            )

    def output(self, row: Any) -> dict[str, Any]:
        out = super().output(row)
        out["provisioned"] = bool(row.get("provisioned"))
        return out

    def listing(self, tenant_id: str) -> Select[Any]:
        provisioned = (
            select(ProvisionedNumber.id).where(held_as_provisioned()).exists().label("provisioned")
        )
        return select(self.table, provisioned).where(PhoneNumber.tenant_id == tenant_id)

    async def _check_refs(self, s: AsyncSession, tenant_id: str, data: dict[str, Any]) -> None:
        target_type, target = data.get("target_type", "queue"), data.get("target")
        lookups: dict[str, Any] = {
            "queue": (SkillQueue, SkillQueue.name),
            "agent": (Agent, Agent.extension),
        }
        if target_type == "flow" and target is not None:
            published = await s.scalar(
                select(FlowRecord.published_version).where(
                    FlowRecord.tenant_id == tenant_id, FlowRecord.name == target
                )
            )
            if published is None:
                raise Invalid(
                    f"flow {target!r} does not exist or has no published version",
                    errors=[{"field": "target"}],
                )
        if target_type in lookups and target is not None:
            model, column = lookups[target_type]
            if not await s.scalar(
                select(model.id).where(model.tenant_id == tenant_id, column == target)
            ):
                raise Invalid(
                    f"{target_type} {target!r} does not exist", errors=[{"field": "target"}]
                )
        ref = data.get("trunk_id")
        if ref and not await s.scalar(
            select(Trunk.id).where(Trunk.tenant_id == tenant_id, Trunk.id == ref)
        ):
            raise Invalid(f"trunk_id {ref!r} does not exist", errors=[{"field": "trunk_id"}])
