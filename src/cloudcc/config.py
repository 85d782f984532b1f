"""Node configuration: defaults, an optional TOML file, then CLOUDCC_* environment variables.

Precedence (lowest to highest): built-in defaults < config file < environment < command-line
flags. Nested keys use a double underscore in the environment, e.g.
``CLOUDCC_LIMITS__TENANT_RPS=200``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsSettings(_Section):
    """Flow control for the HTTP API (token buckets and a global in-flight cap)."""

    tenant_rps: float = 500.0
    tenant_burst: int = 1000
    api_key_rps: float = 100.0
    api_key_burst: int = 200
    max_in_flight: int = 512  # ordinary requests being served, node-wide
    max_body_bytes: int = 1_048_576
    # Admission (see cloudcc.api.admission): no tenant, principal or address takes it all.
    tenant_max_in_flight: int = 128  # ordinary requests of one tenant at a time
    waiting_per_tenant: int = 200  # long-polls (GET /events?wait=) held by one tenant
    waiting_per_principal: int = 8  # ... by one user or API key
    max_waiting: int = 4096  # ... on the node
    anonymous_per_source: int = 16  # requests without credentials from one address
    max_anonymous: int = 128  # ... on the node
    anonymous_body_bytes: int = 65_536
    uploads_per_tenant: int = 2  # bodies above max_body_bytes (prompts) at a time
    header_timeout: float = 10.0  # seconds to send a request's headers (slowloris)
    body_timeout: float = 60.0  # seconds to send a whole body, with credentials
    anonymous_timeout: float = 10.0  # ... without credentials
    # Login throttling (see cloudcc.tenancy.login_guard).
    login_failures_per_minute: float = 30.0  # failed logins from one address
    login_free_failures: int = 5  # failures of one account before each next waits 2^n s
    login_lock_after: int = 20  # failures of one account within an hour that lock it
    login_lock_seconds: float = 3600.0
    # Memory: what grows with traffic is capped by approximate size (docs/operations.md).
    # event_history_bytes: events kept for resumes; audience_bytes: whom recent events concern.
    event_history_bytes: int = Field(default=32 * 1024 * 1024, ge=65_536)
    audience_bytes: int = Field(default=16 * 1024 * 1024, ge=65_536)
    # Event streams (WebSocket /events/ws) open at a time. A tenant may hold the larger of
    # streams_per_tenant and streams_per_seat x its max_seats (an agent's tab, its takeover
    # tab, the supervisors' wallboards); one user or API key streams_per_principal.
    streams_per_tenant: int = Field(default=1000, ge=1)
    streams_per_seat: float = Field(default=2.0, ge=0)
    streams_per_principal: int = Field(default=16, ge=1)


class SipSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 5060
    tls_port: int | None = None  # SIP over TLS (needs tls_cert and tls_key)
    ws_port: int | None = None  # SIP over WebSocket (RFC 7118); WSS when tls_cert is set
    tls_cert: Path | None = None  # PEM certificate chain
    tls_key: Path | None = None  # PEM private key
    max_calls: int = 1000
    max_cps: float = 200.0
    messages_per_second: float = 200.0  # per source address; floods beyond are dropped
    exempt_sources: list[str] = []  # e.g. the Kamailio edge in front of the nodes
    # new requests/s from a source that has not authenticated (no digest success, no
    # trunk call) lately: scans beyond are dropped; 0 disables the limit
    unauthenticated_per_second: float = 20.0
    flood_ban_after: int = 200  # dropped requests within a minute that ban the source
    ban_seconds: float = 600.0  # how long a flooding or password-guessing source is banned
    default_tenant: str | None = "demo"  # the tenant of requests addressed to an IP
    public_host: str | None = None  # the address written in Via/Contact/SDP (NAT)


class MediaSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port_min: int = 20000
    port_max: int = 29999
    jitter_ms: int = 40
    inactivity_timeout: float = 60.0  # seconds without RTP before a call is cleared; 0: never
    # seconds without media from a browser (WebRTC) agent leg before the agent is lost (a
    # closed tab, a crashed browser): the customer goes back to the front of its queue;
    # 0: as inactivity_timeout. Longer than a short network drop the page restarts ICE for.
    browser_lost_after: float = 10.0


class RecoverySettings(_Section):
    """What a node keeps so that a crash loses little (recovery/)."""

    checkpoint_seconds: float = 2.0  # heartbeat and live contacts' times written this often
    dead_after_seconds: float = 30.0  # another node silent this long is closed by this one
    restore_agents: bool = True  # agents' sign-ins and presence survive a restart
    drain_seconds: float = 30.0  # on SIGTERM, live calls get this long to end by themselves


class MetricsSettings(_Section):
    """Prometheus ``/metrics`` on a port of its own, never on the public API (deployment.md)."""

    port: int | None = None  # None: no metrics endpoint
    host: str = "127.0.0.1"  # bind to a private/management interface


class ClusterSettings(_Section):
    """How a node joins others (docs/deployment.md). Without ``nats_url`` a node is alone."""

    nats_url: str | None = None  # e.g. nats://127.0.0.1:4222: events between nodes (JetStream)
    stream: str = "CLOUDCC_EVENTS"  # the JetStream stream holding every tenant's events
    max_age_seconds: float = 24 * 3600.0  # how long the stream keeps events for resumes
    max_events_per_tenant: int = 100_000  # events kept per tenant for resumes


class AiSettings(_Section):
    tts: dict[str, str] = {"engine": "espeak-ng"}
    asr: dict[str, str] = {"engine": "pocketsphinx"}
    asr_enabled: bool = True
    webhooks_allow_private: bool = False  # IVR webhooks to loopback/private addresses


class Settings(_Section):
    data_dir: Path = Path("./cloudcc-data")
    host: str = "127.0.0.1"
    http_port: int = 8080
    https_cert: Path | None = Field(
        default=None, description="PEM certificate chain: the API is served over HTTPS"
    )
    https_key: Path | None = Field(default=None, description="PEM private key of https_cert")
    https_reload_seconds: float = 30.0  # how often the certificate files are looked at
    hsts_seconds: int = 31_536_000  # Strict-Transport-Security max-age over HTTPS; 0: none
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/cloudcc.db",
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs access tokens; generated and kept in <data_dir>/secret.key if unset",
    )
    token_ttl_seconds: int = 8 * 3600
    signature_window_seconds: int = 300
    demo: bool = True
    node_name: str | None = Field(
        default=None,
        description="this node's name in a cluster; generated once into <data_dir>/node-id",
    )
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, ids as fields
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=4096)  # <data_dir>/logs rotation
    log_backups: int = Field(default=5, ge=1)
    gc_young_threshold: int = 50_000  # allocations between young collections; 0: Python's 700
    webhook_allowed_networks: list[str] = Field(
        default=[],
        description="networks outgoing webhooks may reach although private (SSRF guard)",
    )
    limits: LimitsSettings = LimitsSettings()
    sip: SipSettings = SipSettings()
    media: MediaSettings = MediaSettings()
    ai: AiSettings = AiSettings()
    recovery: RecoverySettings = RecoverySettings()
    metrics: MetricsSettings = MetricsSettings()
    cluster: ClusterSettings = ClusterSettings()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'cloudcc.db').resolve()}"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


ENV_PREFIX = "CLOUDCC_"


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Merge defaults, the TOML file, the environment and explicit overrides."""
    data: dict[str, Any] = {}
    env = os.environ if environ is None else environ
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        with open(path, "rb") as f:
            _merge(data, tomllib.load(f))
    _merge(data, _from_environ(env))
    _merge(data, {k: v for k, v in (overrides or {}).items() if v is not None})
    return Settings.model_validate(data)


def _from_environ(env: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _parse_env_value(value)
    return out


def _parse_env_value(value: str) -> Any:
    """Lists and tables are JSON in the environment: CLOUDCC_SIP__EXEMPT_SOURCES='["10.0.0.1"]'."""
    if value.strip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
