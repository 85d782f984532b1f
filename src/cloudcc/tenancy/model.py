"""Permissions, built-in roles and the principal a request acts as."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    """Fine-grained permissions; roles are sets of these."""

    TENANT_READ = "tenant:read"
    TENANT_WRITE = "tenant:write"
    AGENTS_READ = "agents:read"
    AGENTS_WRITE = "agents:write"
    AGENTS_STATE = "agents:state"  # force another agent's state (supervisor)
    AGENTS_DEVICE = "agents:device"  # sign an agent in with any phone URI (admin)
    QUEUES_READ = "queues:read"
    QUEUES_WRITE = "queues:write"
    NUMBERS_READ = "numbers:read"
    NUMBERS_WRITE = "numbers:write"
    TRUNKS_READ = "trunks:read"
    TRUNKS_WRITE = "trunks:write"
    HOURS_READ = "hours:read"
    HOURS_WRITE = "hours:write"
    FLOWS_READ = "flows:read"
    FLOWS_WRITE = "flows:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    ROLES_READ = "roles:read"
    ROLES_WRITE = "roles:write"
    APIKEYS_READ = "apikeys:read"
    APIKEYS_WRITE = "apikeys:write"
    AUDIT_READ = "audit:read"
    CALLS_OWN = "calls:own"  # control one's own contacts (an agent)
    CALLS_CONTROL = "calls:control"  # control any contact of the tenant (PaaS, supervisor)
    CALLS_MONITOR = "calls:monitor"  # listen, whisper, barge, intercept, force release
    RECORDINGS_READ = "recordings:read"
    RECORDINGS_DELETE = "recordings:delete"
    REPORTS_READ = "reports:read"
    VOICEMAIL_READ = "voicemail:read"  # every mailbox of the tenant (an agent: its own)
    VOICEMAIL_WRITE = "voicemail:write"  # configure mailboxes, mark or delete any message
    EVENTS_TENANT = "events:tenant"  # the tenant-wide event stream and webhooks
    WEBHOOKS_WRITE = "webhooks:write"
    PLATFORM_TENANTS = "platform:tenants"  # create and manage tenants (platform operator only)


TENANT_PERMISSIONS = frozenset(p for p in Permission if p is not Permission.PLATFORM_TENANTS)

_READS = {p for p in Permission if p.value.endswith(":read")} - {Permission.AUDIT_READ}

BUILTIN_ROLES: dict[str, tuple[str, frozenset[Permission]]] = {
    "admin": ("Tenant administrator: everything in the tenant", TENANT_PERMISSIONS),
    "supervisor": (
        "Supervisor / QA inspector: monitors calls and agents, reads recordings and reports",
        frozenset(
            _READS
            | {
                Permission.AGENTS_STATE,
                Permission.CALLS_OWN,
                Permission.CALLS_CONTROL,
                Permission.CALLS_MONITOR,
                Permission.RECORDINGS_READ,
                Permission.REPORTS_READ,
                Permission.EVENTS_TENANT,
            }
        )
        - {Permission.APIKEYS_READ, Permission.USERS_READ, Permission.ROLES_READ},
    ),
    "agent": (
        "Agent: handles its own contacts",
        frozenset({Permission.CALLS_OWN, Permission.QUEUES_READ, Permission.AGENTS_READ}),
    ),
}

PLATFORM_ROLE = "platform-operator"


class PrincipalKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: resolved once per request from a token or a signed API key."""

    tenant_id: str
    kind: PrincipalKind
    id: str | None
    name: str
    permissions: frozenset[str]
    role: str = ""
    agent_id: str | None = None
    rate_limit_rps: float | None = None  # the API key's own limit
    tenant_rps: float | None = None  # the tenant's limit when it differs from the default
    tenant_seats: int | None = None  # the tenant's max_seats (what its event streams scale with)

    def can(self, permission: Permission) -> bool:
        return permission.value in self.permissions


@dataclass(frozen=True, slots=True)
class Actor:
    """A principal plus where the request came from: what the audit log records."""

    principal: Principal
    ip: str | None = None
    user_agent: str | None = None

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id


SYSTEM = Principal(
    tenant_id="",
    kind=PrincipalKind.SYSTEM,
    id=None,
    name="system",
    permissions=frozenset(p.value for p in Permission),
)


def system_actor(tenant_id: str) -> Actor:
    return Actor(
        Principal(
            tenant_id=tenant_id,
            kind=PrincipalKind.SYSTEM,
            id=None,
            name="system",
            permissions=SYSTEM.permissions,
        )
    )


@dataclass
class Page:
    """One page of a listing."""

    items: list[dict[str, object]] = field(default_factory=list)
    total: int = 0
    limit: int = 50
    offset: int = 0
