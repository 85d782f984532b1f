"""What the API needs from the node: the services it calls. Built by ``cloudcc.app``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudcc.bus import LocalBus
from cloudcc.config import Settings
from cloudcc.directory.codes import DispositionCodeResource, ReasonCodeResource
from cloudcc.directory.flows import FlowService
from cloudcc.directory.pool import NumberPool
from cloudcc.directory.resources import (
    AgentResource,
    BusinessHoursResource,
    NumberResource,
    QueueResource,
    TrunkResource,
)
from cloudcc.store.db import Database
from cloudcc.tenancy.audit import AuditLog
from cloudcc.tenancy.auth import AuthService
from cloudcc.tenancy.iam import ApiKeyResource, RoleResource, UserResource
from cloudcc.tenancy.ratelimit import RateLimiter
from cloudcc.tenancy.tenants import TenantService


@dataclass
class ApiContext:
    settings: Settings
    db: Database
    bus: LocalBus
    auth: AuthService
    tenants: TenantService
    audit: AuditLog
    agents: AgentResource
    queues: QueueResource
    numbers: NumberResource
    number_pool: NumberPool
    trunks: TrunkResource
    hours: BusinessHoursResource
    reason_codes: ReasonCodeResource
    dispositions: DispositionCodeResource
    flows: FlowService
    users: UserResource
    roles: RoleResource
    api_keys: ApiKeyResource
    tenant_limiter: RateLimiter
    key_limiter: RateLimiter
    extra: dict[str, Any] = field(default_factory=dict)
