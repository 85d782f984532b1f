"""Wire shapes of the admin API (pydantic v2). Unknown fields are refused everywhere."""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from cloudcc.contacts.destinations import DEFAULT_BLOCKED, SipDestination
from cloudcc.contacts.exceptions import BadTarget

# The default of a PATCH field that may be left out but not set to null: pydantic does not
# validate defaults, and an explicit null fails the field's type (422).
UNSET: Any = None


class Strict(BaseModel):
    """Query parameters: unknown ones are refused; text is converted to the field's type."""

    model_config = ConfigDict(extra="forbid")


class Body(BaseModel):
    """JSON bodies: unknown fields are refused and no type is coerced (0 is not false)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _iso_only(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("use an ISO 8601 date-time, e.g. 2026-11-27T09:00:00Z")
    return value


# Text on the wire, never numbers: strict mode would refuse the text, lax mode takes 0.
IsoDateTime = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_iso_only)]
IsoDate = Annotated[date, Field(strict=False), BeforeValidator(_iso_only)]


Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Slug = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
SipPassword = Annotated[str, StringConstraints(min_length=6, max_length=128)]
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9]{2,16}$")]
SkillName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Level = Annotated[int, Field(ge=1, le=10)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,253}$", max_length=254)]
Description = Annotated[str, StringConstraints(max_length=500)]
Status = Literal["active", "disabled"]
Id = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
PhoneUri = Annotated[str, StringConstraints(pattern=r"^sips?:[^\s]{3,200}$")]
PhoneNumberText = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{2,20}$")]
Hostname = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
]

T = TypeVar("T")
MAX_INT = 2**31 - 1  # the largest a 32-bit INTEGER column stores; a larger number is a 422


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class Paging(Strict):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)
    q: str | None = Field(None, max_length=100, description="text search")


# --- auth ---------------------------------------------------------------------------------


class LoginIn(Body):
    tenant: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    tenant_id: str
    user_id: str
    agent_id: str | None
    role: str
    permissions: list[str]


class MeOut(BaseModel):
    tenant_id: str
    kind: str
    id: str | None
    name: str
    role: str
    agent_id: str | None
    permissions: list[str]


# --- tenants ------------------------------------------------------------------------------


class TenantCreate(Body):
    slug: Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")]
    name: Name
    admin_username: Username = "admin"
    admin_password: Password
    timezone: str = Field("UTC", max_length=64)
    sip_domain: Hostname | None = None
    max_seats: int = Field(50, ge=1, le=100_000)
    max_concurrent_calls: int = Field(100, ge=1, le=1_000_000)


Prefix = Annotated[str, StringConstraints(pattern=r"^\+?[0-9*#]{1,32}$")]
CountryPrefix = Annotated[str, StringConstraints(pattern=r"^\+[0-9]{0,15}$")]


def _check_sip_destination(value: str) -> str:
    try:
        return str(SipDestination.parse(value))
    except BadTarget as exc:
        raise ValueError(exc.detail) from exc


class DialPlan(Body):
    """Which outside numbers the tenant's calls may dial (through its trunks)."""

    national: bool = Field(True, description="numbers dialed without + or 00")
    international: Annotated[list[CountryPrefix], Field(max_length=300)] = Field(
        default_factory=list,
        description="E.164 prefixes allowed abroad (+44, +4930); + alone allows every country",
    )
    blocked: Annotated[list[Prefix], Field(max_length=300)] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED),
        description="prefixes never dialed, as dialed or in + form (premium, satellite)",
    )


SipDestinationText = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9*.:\[\]/-]{1,260}$"),
    AfterValidator(_check_sip_destination),
]


class TenantUpdate(Body):
    name: Name = UNSET
    timezone: str = Field(UNSET, max_length=64)
    recording_retention_days: int = Field(UNSET, ge=1, le=3650)
    status: Status = UNSET
    max_seats: int = Field(UNSET, ge=1, le=100_000)
    max_concurrent_calls: int = Field(UNSET, ge=1, le=1_000_000)
    rate_limit_rps: float | None = Field(None, ge=0.1, le=100_000)
    dial_plan: DialPlan = Field(UNSET, description="the outside numbers calls may dial")
    sip_destinations: Annotated[list[SipDestinationText], Field(max_length=200)] = Field(
        UNSET,
        description="SIP addresses calls may go to directly: host, host:port, *.domain or a "
        "network (private and loopback addresses included: phones on premises)",
    )
    srtp_policy: Literal["off", "optional", "required"] = Field(
        UNSET,
        description="SRTP on SIP legs, keyed by SDES over SIP/TLS: off (plain RTP), optional "
        "(when the phone or carrier offers or accepts it over TLS), required (every SIP leg; "
        "others are refused). Browser legs are always DTLS-SRTP.",
    )


class TenantOut(Out):
    id: str
    slug: str
    name: str
    sip_domain: str
    timezone: str
    status: str
    max_seats: int
    max_concurrent_calls: int
    rate_limit_rps: float | None
    recording_retention_days: int
    dial_plan: DialPlan
    sip_destinations: list[str]
    srtp_policy: str
    created_at: datetime
    updated_at: datetime


class WebhookSecretOut(BaseModel):
    webhook_secret: str


# --- users, roles, API keys ---------------------------------------------------------------


class UserCreate(Body):
    username: Username
    password: Password
    display_name: Annotated[str, StringConstraints(max_length=200)] = ""
    email: Email | None = None
    role: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "agent"
    status: Status = "active"


class UserUpdate(Body):
    username: Username = UNSET
    password: Password = UNSET
    display_name: Annotated[str, StringConstraints(max_length=200)] = UNSET
    email: Email | None = None
    role: Annotated[str, StringConstraints(min_length=1, max_length=64)] = UNSET
    status: Status = UNSET


class UnlockOut(Out):
    id: str
    was_locked: bool = Field(description="whether the account was locked when unlocked")


class UserOut(Out):
    id: str
    username: str
    display_name: str
    email: str | None
    role: str
    role_id: str
    status: str
    created_at: datetime
    updated_at: datetime


class UserFilter(Paging):
    status: Status | None = None
    username: Username | None = None


class RoleCreate(Body):
    name: Slug
    description: Description = ""
    permissions: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=100
    )


class RoleUpdate(Body):
    name: Slug = UNSET
    description: Description = UNSET
    permissions: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        UNSET, max_length=100
    )


class RoleOut(Out):
    id: str
    name: str
    description: str
    permissions: list[str]
    builtin: bool
    created_at: datetime
    updated_at: datetime


class RoleFilter(Paging):
    name: Slug | None = None
    builtin: bool | None = None


class ApiKeyCreate(Body):
    name: Name
    role: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "admin"
    rate_limit_rps: float | None = Field(None, ge=0.1, le=100_000)
    expires_at: IsoDateTime | None = None


class ApiKeyUpdate(Body):
    name: Name = UNSET
    role: Annotated[str, StringConstraints(min_length=1, max_length=64)] = UNSET
    status: Status = UNSET
    rate_limit_rps: float | None = Field(None, ge=0.1, le=100_000)
    expires_at: IsoDateTime | None = None


class ApiKeyOut(Out):
    id: str
    name: str
    access_key: str
    role: str
    role_id: str
    status: str
    rate_limit_rps: float | None
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="shown once; sign requests with it")


class ApiKeyFilter(Paging):
    status: Status | None = None


# --- agents -------------------------------------------------------------------------------

Skills = Annotated[dict[SkillName, Level], Field(max_length=50)]


class AgentCreate(Body):
    name: Name
    extension: Extension
    sip_password: SipPassword
    skills: Skills = Field(default_factory=dict)
    role: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "agent"
    username: Username | None = None
    password: Password | None = Field(None, description="web login; the SIP password if unset")
    email: Email | None = None
    status: Status = "active"
    device: PhoneUri | None = Field(
        None, description="a phone the agent may sign in with (needs agents:device)"
    )


class AgentUpdate(Body):
    name: Name = UNSET
    extension: Extension = UNSET
    sip_password: SipPassword = UNSET
    skills: Skills = UNSET
    role: Annotated[str, StringConstraints(min_length=1, max_length=64)] = UNSET
    username: Username = UNSET
    password: Password = UNSET
    email: Email | None = None
    status: Status = UNSET
    device: PhoneUri | None = Field(
        UNSET, description="a phone the agent may sign in with (needs agents:device); null: none"
    )


class AgentOut(Out):
    id: str
    user_id: str
    username: str
    email: str | None = None
    name: str
    extension: str
    role: str
    skills: dict[str, int]
    status: str
    device: str | None
    created_at: datetime
    updated_at: datetime


class AgentFilter(Paging):
    extension: Extension | None = None
    status: Status | None = None
    name: Name | None = None


# --- queues -------------------------------------------------------------------------------

#: The engine's strategies (cloudcc.routing.model.Strategy). A preferred agent is not a
#: strategy: it is the engine's per-contact overlay on any of these (docs/routing.md).
Strategy = Literal["longest_idle", "most_skilled", "least_occupied", "round_robin", "ring_all"]


MusicOnHold = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"),
    Field(
        description="what the queue's callers hear while waiting, on hold and while a "
        "transfer rings: 'default' (the built-in music, tracks in "
        "turn) or the name of one of the tenant's uploaded prompts (PUT /prompts/{name}), "
        "played in a loop"
    ),
]


class OverflowAction(Body):
    action: Literal["queue", "flow", "voicemail", "callback", "disconnect"]
    target: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    message: Annotated[str, StringConstraints(max_length=500)] | None = None

    @model_validator(mode="after")
    def _target(self) -> OverflowAction:
        if self.action in ("queue", "flow") and not self.target:
            raise ValueError(f"action {self.action} needs a target")
        return self


class Relaxation(Body):
    after_seconds: int = Field(ge=1, le=86_400)
    min_level_drop: int = Field(1, ge=0, le=9, description="lower every minimum level by this")
    drop_skills: list[SkillName] = Field(default_factory=list, max_length=50)


class Overflow(Body):
    no_agents: OverflowAction | None = None
    queue_full: OverflowAction | None = None
    wait_timeout: OverflowAction | None = None
    relax: list[Relaxation] = Field(default_factory=list, max_length=10)


class QueueCreate(Body):
    name: Slug
    description: Description = ""
    required_skills: Skills = Field(default_factory=dict)
    strategy: Strategy = "longest_idle"
    ring_timeout_seconds: int = Field(20, ge=5, le=300)
    wrapup_seconds: int = Field(30, ge=0, le=3600)
    max_wait_seconds: int = Field(600, ge=10, le=86_400)
    capacity: int = Field(100, ge=1, le=100_000)
    service_level_seconds: int = Field(20, ge=1, le=3600)
    priority: int = Field(
        5,
        ge=1,
        le=10,
        description="among the queues an agent serves, contacts of a higher-priority queue "
        "are offered first (10 highest); equal priority: the longest waiting first",
    )
    overflow: Overflow = Field(default_factory=Overflow)
    music_on_hold: MusicOnHold = "default"
    announce_position: bool = True
    announce_interval_seconds: int = Field(30, ge=10, le=3600)


class QueueUpdate(Body):
    name: Slug = UNSET
    description: Description = UNSET
    required_skills: Skills = UNSET
    strategy: Strategy = UNSET
    ring_timeout_seconds: int = Field(UNSET, ge=5, le=300)
    wrapup_seconds: int = Field(UNSET, ge=0, le=3600)
    max_wait_seconds: int = Field(UNSET, ge=10, le=86_400)
    capacity: int = Field(UNSET, ge=1, le=100_000)
    service_level_seconds: int = Field(UNSET, ge=1, le=3600)
    priority: int = Field(UNSET, ge=1, le=10)
    overflow: Overflow = UNSET
    music_on_hold: MusicOnHold = UNSET
    announce_position: bool = UNSET
    announce_interval_seconds: int = Field(UNSET, ge=10, le=3600)


class QueueOut(Out):
    id: str
    name: str
    description: str
    required_skills: dict[str, int]
    strategy: str
    ring_timeout_seconds: int
    wrapup_seconds: int
    max_wait_seconds: int
    capacity: int
    service_level_seconds: int
    priority: int
    overflow: dict[str, Any]
    music_on_hold: str
    announce_position: bool
    announce_interval_seconds: int
    created_at: datetime
    updated_at: datetime


class QueueFilter(Paging):
    name: Slug | None = None
    strategy: Strategy | None = None


# --- business hours -----------------------------------------------------------------------

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


def _check_ranges(ranges: list[list[str]]) -> list[list[str]]:
    for start, end in ranges:
        if not _HHMM.match(start) or not _HHMM.match(end):
            raise ValueError("times are HH:MM (00:00 to 24:00)")
        if start >= end:
            raise ValueError(f"range {start}-{end} ends before it starts")
    return ranges


Range = Annotated[list[str], Field(min_length=2, max_length=2, description="[start, end] HH:MM")]
Ranges = Annotated[list[Range], AfterValidator(_check_ranges), Field(max_length=24)]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Holiday(Body):
    date: IsoDate
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    open: Ranges = Field(default_factory=list, description="opening ranges that day; [] = closed")


class HoursCreate(Body):
    name: Slug
    timezone: str = Field(
        UNSET, max_length=64, description="IANA time zone of the ranges; the tenant's if omitted"
    )
    weekly: dict[Day, Ranges] = Field(default_factory=dict)
    holidays: list[Holiday] = Field(default_factory=list, max_length=1000)


class HoursUpdate(Body):
    name: Slug = UNSET
    timezone: str = Field(UNSET, max_length=64)
    weekly: dict[Day, Ranges] = UNSET
    holidays: list[Holiday] = Field(UNSET, max_length=1000)


class HoursOut(Out):
    id: str
    name: str
    timezone: str
    weekly: dict[str, list[list[str]]]
    holidays: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class HoursFilter(Paging):
    name: Slug | None = None


# --- trunks and numbers -------------------------------------------------------------------


def _check_networks(values: list[str]) -> list[str]:
    for value in values:
        ipaddress.ip_network(value, strict=False)
    return values


# The user part of a SIP URI (RFC 3261 §25.1 unreserved and user-unreserved, unescaped).
TrunkUsername = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.!~*'()&=+$,-]{1,128}$")]
TrunkPassword = Annotated[str, StringConstraints(max_length=128)]
Networks = Annotated[list[str], AfterValidator(_check_networks), Field(max_length=100)]


class TrunkCreate(Body):
    name: Slug
    host: Hostname = Field(description="where calls out and the registration go")
    port: int = Field(5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    username: TrunkUsername | None = Field(
        None, description="digest username (calls out, registration, inbound_auth)"
    )
    password: TrunkPassword | None = None
    allowed_ips: Networks = Field(
        default_factory=list, description="networks whose calls in are this trunk's"
    )
    registration: bool = Field(
        False, description="register to the trunk's host (needs username and password)"
    )
    inbound_auth: bool = Field(
        False,
        description="the peer (a PBX) authenticates to the node with username and password "
        "and may register; its calls are then this trunk's",
    )
    max_channels: int = Field(30, ge=1, le=100_000, description="concurrent calls in and out")
    caller_id: PhoneNumberText | None = Field(None, description="the From user of calls out")
    priority: int = Field(100, ge=0, le=10_000, description="calls out try lower first")
    outbound: bool = Field(True, description="carries calls out (false: calls in only)")


class TrunkUpdate(Body):
    name: Slug = UNSET
    host: Hostname = UNSET
    port: int = Field(UNSET, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = UNSET
    username: TrunkUsername | None = None
    password: TrunkPassword | None = None
    allowed_ips: Networks = UNSET
    registration: bool = UNSET
    inbound_auth: bool = UNSET
    max_channels: int = Field(UNSET, ge=1, le=100_000)
    caller_id: PhoneNumberText | None = None
    priority: int = Field(UNSET, ge=0, le=10_000)
    outbound: bool = UNSET


class TrunkOut(Out):
    id: str
    name: str
    host: str
    port: int
    transport: str
    username: str | None
    has_password: bool
    allowed_ips: list[str]
    registration: bool
    inbound_auth: bool
    max_channels: int
    caller_id: str | None
    priority: int
    outbound: bool
    registration_state: Literal["registering", "registered", "failed", "stopped"] | None = Field(
        description="this node's registration at the trunk (null: none)"
    )
    registration_error: str | None = Field(description="why the last registration failed")
    registered_until: datetime | None
    channels_in_use: int = Field(description="calls in and out on this node now")
    created_at: datetime
    updated_at: datetime


class TrunkFilter(Paging):
    name: Slug | None = None
    host: Hostname | None = None


class NumberCreate(Body):
    number: PhoneNumberText
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    trunk_id: Id | None = Field(
        None,
        description="answer calls from this trunk only; a number the platform did not "
        "provision to the tenant needs it (bring your own number)",
    )
    target_type: Literal["flow", "queue", "agent"] = "queue"
    target: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class NumberUpdate(Body):
    number: PhoneNumberText = UNSET
    name: Annotated[str, StringConstraints(max_length=200)] = UNSET
    trunk_id: Id | None = None
    target_type: Literal["flow", "queue", "agent"] = UNSET
    target: Annotated[str, StringConstraints(min_length=1, max_length=64)] = UNSET


class NumberOut(Out):
    id: str
    number: str
    name: str
    trunk_id: str | None
    provisioned: bool = Field(description="the platform operator provisioned it to the tenant")
    target_type: str
    target: str | None
    created_at: datetime
    updated_at: datetime


class NumberFilter(Paging):
    number: PhoneNumberText | None = None
    target_type: Literal["flow", "queue", "agent"] | None = None
    trunk_id: Id | None = None


class ProvisionIn(Body):
    number: PhoneNumberText
    tenant_id: Id


class ProvisionedOut(BaseModel):
    id: str
    number: str
    tenant_id: str
    in_use: bool = Field(description="the tenant has configured it (GET /numbers)")
    created_at: datetime


class PoolFilter(Paging):
    tenant_id: Id | None = None
    number: PhoneNumberText | None = None


# --- audit --------------------------------------------------------------------------------


class AuditFilter(Paging):
    resource_type: Annotated[str, StringConstraints(max_length=32)] | None = None
    resource_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    actor_id: Annotated[str, StringConstraints(max_length=32)] | None = None
    action: Annotated[str, StringConstraints(max_length=32)] | None = None
    since: IsoDateTime | None = None
    until: IsoDateTime | None = None

    @field_validator("q")
    @classmethod
    def _no_text_search(cls, v: str | None) -> str | None:
        if v is not None:
            raise ValueError("the audit log is filtered by fields, not searched")
        return v


class AuditOut(Out):
    id: str
    at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str
    action: str
    resource_type: str
    resource_id: str | None
    changes: dict[str, Any]
    ip: str | None
    user_agent: str | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)


# --- IVR flows ----------------------------------------------------------------------------


class FlowSummary(Out):
    id: str
    name: str
    published_version: int | None
    has_draft: bool
    draft_revision: int
    draft_saved_at: datetime | None
    draft_saved_by: str | None
    created_at: datetime
    updated_at: datetime


class FlowDetail(FlowSummary):
    draft: dict[str, Any] | None
    published: dict[str, Any] | None


class FlowCreate(Body):
    document: dict[str, Any] = Field(description="a flow document (format cloudcc.flow/1)")


class DraftSave(Body):
    document: dict[str, Any]
    expected_revision: int | None = Field(
        None, ge=0, le=MAX_INT, description="the draft revision you edited; 409 if it moved on"
    )


class PublishIn(Body):
    expected_revision: int | None = Field(None, ge=0, le=MAX_INT)


class RollbackIn(Body):
    to_version: int | None = Field(
        None, ge=1, le=MAX_INT, description="default: the version before"
    )


class FlowVersionOut(Out):
    number: int
    state: str
    content_hash: str
    created_at: datetime
    published_at: datetime | None
    retired_at: datetime | None
    published_by: str | None
    restored_from: int | None


class FlowVersionDetail(FlowVersionOut):
    document: dict[str, Any]


class FlowProblemOut(BaseModel):
    rule: str
    node: str | None
    field: str | None
    message: str


class ValidateIn(Body):
    document: dict[str, Any]


class ValidationOut(BaseModel):
    valid: bool
    problems: list[FlowProblemOut]
