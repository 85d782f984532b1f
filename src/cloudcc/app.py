"""Composition: build a node's components from its settings and run them in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import signal
import socket
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from cloudcc.api.context import ApiContext
from cloudcc.bus import LocalBus
from cloudcc.bus.nats import NatsBus
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
from cloudcc.events import install as install_events
from cloudcc.health import HealthEndpoints, Readiness
from cloudcc.logs import CALL_EVENTS, log_call_event
from cloudcc.observability.metrics import ApiLatency, MetricsServer, NodeMetrics
from cloudcc.recovery import systemd
from cloudcc.runtime import tune_gc
from cloudcc.serving import Hsts, ReloadingCertificate, header_deadline_protocol
from cloudcc.store.db import Database
from cloudcc.tenancy.audit import AuditLog
from cloudcc.tenancy.auth import AuthService
from cloudcc.tenancy.credentials import SecretBox, TokenSigner
from cloudcc.tenancy.iam import ApiKeyResource, RoleResource, UserResource
from cloudcc.tenancy.login_guard import LoginPolicy
from cloudcc.tenancy.ratelimit import RateLimiter
from cloudcc.tenancy.tenants import TenantService
from cloudcc.voicemail.service import VoicemailService

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("cloudcc")

_IAM_EVENTS = ("user.", "role.", "api_key.", "agent.", "tenant.")


class RedactTokens(logging.Filter):
    """Blank ``access_token`` query values in log records: uvicorn logs every WebSocket
    handshake with its query string, where a browser may carry its token."""

    _token = re.compile(r"(access_token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._token.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and "access_token=" in record.msg:
            record.msg = self._token.sub(r"\1[redacted]", record.msg)
        return True


def node_key(settings: Settings) -> bytes:
    """The node's secret: from settings, or generated once and kept in the data dir."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_dir / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def build_context(settings: Settings, db: Database, bus: LocalBus) -> ApiContext:
    key = node_key(settings)
    box = SecretBox(key)
    limits = settings.limits
    return ApiContext(
        settings=settings,
        db=db,
        bus=bus,
        auth=AuthService(
            db,
            TokenSigner(key, settings.token_ttl_seconds),
            box,
            settings.signature_window_seconds,
            LoginPolicy(
                source_per_minute=limits.login_failures_per_minute,
                source_burst=max(1, int(limits.login_failures_per_minute)),
                free_failures=limits.login_free_failures,
                lock_after=limits.login_lock_after,
                lock_seconds=limits.login_lock_seconds,
            ),
        ),
        tenants=TenantService(db, bus),
        audit=AuditLog(db),
        agents=AgentResource(db, bus, box),
        queues=QueueResource(db, bus, prompts_dir=Path(settings.data_dir) / "prompts"),
        numbers=NumberResource(db, bus),
        number_pool=NumberPool(db, bus),
        trunks=TrunkResource(db, bus, box),
        hours=BusinessHoursResource(db, bus),
        reason_codes=ReasonCodeResource(db, bus),
        dispositions=DispositionCodeResource(db, bus),
        flows=FlowService(db, bus),
        users=UserResource(db, bus),
        roles=RoleResource(db, bus),
        api_keys=ApiKeyResource(db, bus, box),
        tenant_limiter=RateLimiter(limits.tenant_rps, limits.tenant_burst),
        key_limiter=RateLimiter(limits.api_key_rps, limits.api_key_burst),
        extra={"voicemail": VoicemailService(db, bus, Path(settings.recordings_dir).resolve())},
    )


def make_bus(settings: Settings, node: str) -> LocalBus:
    """The in-process bus, or NATS JetStream when the node is part of a cluster."""
    cluster = settings.cluster
    history_bytes = settings.limits.event_history_bytes
    if not cluster.nats_url:
        return LocalBus(history_bytes=history_bytes)
    return NatsBus(
        cluster.nats_url,
        node,
        stream=cluster.stream,
        max_age=cluster.max_age_seconds,
        max_per_tenant=cluster.max_events_per_tenant,
        history_bytes=history_bytes,
    )


class Node:
    """One cloudcc process: store, bus, services, API; SIP and media where configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        from cloudcc.recovery.early import node_name

        self.name = node_name(settings)
        self.db = Database(settings.resolved_database_url)
        self.bus = make_bus(settings, self.name)
        self.ctx = build_context(settings, self.db, self.bus)
        # Before anything publishes: the event layer follows who holds which contact.
        self.events = install_events(
            self.ctx,
            allowed_networks=settings.webhook_allowed_networks,
            audience_bytes=settings.limits.audience_bytes,
            max_streams_per_tenant=settings.limits.streams_per_tenant,
            streams_per_seat=settings.limits.streams_per_seat,
            max_streams_per_principal=settings.limits.streams_per_principal,
        )
        self.metrics = NodeMetrics(self.name)
        self.metrics.watch_bus(self.bus)
        self.metrics.live.events = self.events
        self.cluster_calls: Any = None
        self.routing: Any = None  # cloudcc.cluster.routing.ClusterRouting on a cluster
        self.operations: Any = None  # cloudcc.cluster.operations.ContactOperations
        self.registrations: Any = None  # cloudcc.cluster.registrations.SharedRegistrations
        self.ready = False
        self.draining = False
        self.readiness = Readiness(
            started=lambda: self.ready,
            draining=lambda: self.draining,
            database=self.db.ping,
            storage=settings.recordings_dir,
            sip_bound=self._sip_bound,
        )
        self.metrics_server: MetricsServer | None = None
        self.demo: dict[str, Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._server: uvicorn.Server | None = None
        self.voice_node: Any = None
        # Every call leaves INFO lines (tenant and contact ids) in the node's log.
        self.bus.on(
            lambda e: e.type in CALL_EVENTS, lambda e: log_call_event(e.tenant_id, e.type, e.data)
        )
        # A change to users, roles or keys takes effect on this node at once.
        self.bus.on(lambda e: e.type.startswith(_IAM_EVENTS), lambda e: self.ctx.auth.forget())

    @cached_property
    def app(self) -> FastAPI:
        """The HTTP API, built on first use: ``serve`` starts SIP before it loads the API's
        modules (seconds of imports on a loaded machine), so a restarted node takes calls
        sooner."""
        from cloudcc.api.app import create_app

        app = create_app(self.ctx)
        app.add_middleware(ApiLatency, metrics=self.metrics)
        # Outermost (added last): health and readiness answer whatever the API's caps say.
        app.add_middleware(HealthEndpoints, readiness=self.readiness)
        return app

    def _sip_bound(self) -> bool | None:
        if not self.settings.sip.enabled:
            return None
        return self.voice_node is not None and bool(self.voice_node.sip.listening)

    async def prepare(self) -> None:
        """Create the data dir, migrate the schema, seed the demo tenant on first start."""
        for path in (self.settings.data_dir, self.settings.recordings_dir, self.settings.logs_dir):
            Path(path).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start
        if isinstance(self.bus, NatsBus):
            await self.bus.start()
        await self.db.migrate()
        await self.events.start()
        if self.settings.demo:
            from cloudcc.demo import ensure_demo

            self.demo = await ensure_demo(self.ctx, self.settings)

    async def start_voice(self, *, warm_up: bool = True) -> None:
        """Start SIP and media and the contact layer that joins them (``self.voice``);
        ``warm_up=False``: the speech workers wait for ``voice_node.warm_up()``."""
        from cloudcc.voice_node import VoiceNode

        self.voice_node = VoiceNode(self.settings, self.ctx)
        await self.start_routing()  # before the node signs agents in or takes calls
        await self.voice_node.start(warm_up=warm_up)
        self.ctx.extra["voice"] = self.voice_node.voice
        live = self.metrics.live
        live.voice, live.media, live.acd = (
            self.voice_node.voice,
            self.voice_node.media,
            self.voice_node.acd,
        )

    async def start_routing(self) -> None:
        """On a cluster on PostgreSQL: one node at a time runs a tenant's routing engine,
        under a lease (cluster/lease.py); the others send it their routing work over NATS
        (cluster/routing.py)."""
        from cloudcc.cluster.lease import RoutingLeases, asyncpg_dsn
        from cloudcc.cluster.routing import ClusterRouting

        node = self.voice_node
        dsn = asyncpg_dsn(self.settings.resolved_database_url)
        if not isinstance(self.bus, NatsBus) or node is None:
            return
        if dsn is None:
            log.warning("a cluster on SQLite: every node runs its own routing engines")
            return
        routing = ClusterRouting(
            self.bus.connection, self.bus.stream, self.name, RoutingLeases(dsn, self.name)
        )
        node.acd.attach(routing)
        routing.on_moved = node.voice.resubmit_routing
        if node.sign_ins is not None:
            node.sign_ins.cluster()
        await self.share_registrations()
        await routing.start()
        self.routing = routing
        from cloudcc.cluster.operations import ContactOperations

        self.operations = ContactOperations(
            self.bus.connection, self.bus.stream, self.name, node.voice
        )
        await self.operations.start()

    async def share_registrations(self) -> None:
        """Agents' phones registered with another node (through the SIP edge, with a Path)
        are rung from this one (cluster/registrations.py)."""
        from cloudcc.cluster.registrations import SharedRegistrations

        node = self.voice_node
        assert node is not None
        voice = node.voice
        registrations = SharedRegistrations(voice.db, self.name, voice.sip)
        await registrations.start()
        self.registrations = registrations
        signed_in_with = voice.shared_device

        async def shared_device(tenant_id: str, agent_id: str) -> str | None:
            found = None
            if signed_in_with is not None:
                found = await signed_in_with(tenant_id, agent_id)
            return found or await registrations.device(tenant_id, agent_id)

        voice.shared_device = shared_device
        voice.shared_registration = registrations.device

    async def share_limits(self) -> None:
        """On a cluster: tenants' call quotas count every node's calls, and each node admits
        its share of the API rate limits (cluster/calls.py)."""
        from collections import Counter

        from cloudcc.cluster.calls import ClusterCalls

        if not isinstance(self.bus, NatsBus):
            return
        node = self.voice_node

        def counts() -> dict[str, int]:
            if node is None:
                return {}
            return dict(Counter(s.tenant_id for s in node.voice.sessions.values()))

        calls = ClusterCalls(
            self.bus.connection,
            f"cloudcc.calls.{self.bus.stream}",  # outside the event stream's subjects
            self.name,
            counts,
        )

        def on_nodes(n: int) -> None:
            self.ctx.tenant_limiter.share = self.ctx.key_limiter.share = 1.0 / n

        calls.on_nodes = on_nodes
        await calls.start()
        if node is not None:
            node.voice.remote_calls = calls.remote
            # A node still announcing itself is alive, however old its heartbeat in the store.
            dead_after = self.settings.recovery.dead_after_seconds
            node.node_recovery.still_heard = lambda name: calls.heard_within(name, dead_after)
        self.bus.on(
            lambda e: e.type in ("contact.created", "contact.ended"),
            lambda e: calls.changed(),
            origin_only=True,
        )
        self.cluster_calls = calls

    async def start_metrics(self) -> None:
        """Serve ``/metrics`` on ``metrics.port`` when one is set."""
        if self.settings.metrics.port is None:
            return
        self.metrics_server = MetricsServer(
            self.metrics, self.settings.metrics.host, self.settings.metrics.port
        )
        await self.metrics_server.start()

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set (or SIGINT/SIGTERM), then shut down cleanly."""
        await self.prepare()
        if self.settings.sip.enabled:
            await self.start_voice(warm_up=False)  # once ready, below
        await self.share_limits()
        await self.start_metrics()
        settings = self.settings
        certificate = None
        # SIP listens already: load and build the API off the event loop, which meanwhile
        # answers SIP (seconds of imports on a loaded machine would otherwise stall it).
        app: Any = await asyncio.to_thread(lambda: self.app)
        # Once the API is built, so that its modules are part of the frozen started state.
        tune_gc(self.settings.gc_young_threshold)
        if settings.https_cert or settings.https_key:
            if not (settings.https_cert and settings.https_key):
                raise ValueError("HTTPS needs both https_cert and https_key")
            certificate = ReloadingCertificate(settings.https_cert, settings.https_key)
            if settings.hsts_seconds > 0:
                app = Hsts(app, settings.hsts_seconds)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.http_port,
            log_level=settings.log_level,
            access_log=False,
            lifespan="off",
            http=header_deadline_protocol(settings.limits.header_timeout),
        )
        config.load()
        if certificate is not None:
            config.ssl = certificate.context  # uvicorn listens with TLS; reloads go to it
            self._tasks.append(
                asyncio.create_task(certificate.watch(settings.https_reload_seconds))
            )
        self._server = uvicorn.Server(config)
        uvicorn_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, RedactTokens) for f in uvicorn_log.filters):
            uvicorn_log.addFilter(RedactTokens())
        # The node owns SIGINT/SIGTERM (it stops SIP and media too), not uvicorn.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        stop = stop or asyncio.Event()
        hurry = asyncio.Event()  # a second signal: end the drain at once

        def on_signal() -> None:
            if stop.is_set():
                hurry.set()
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
        if certificate is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, certificate.reload)
        # Bind here so that a taken port is a clear OSError, not uvicorn's sys.exit().
        sock = socket.create_server((self.settings.host, self.settings.http_port), backlog=2048)
        sock.setblocking(False)
        server_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started and not server_task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if server_task.done():
            await server_task  # re-raise why it could not start (port taken, ...)
            raise RuntimeError("the HTTP server stopped at start")
        self.ready = True
        if self.voice_node is not None:
            self.voice_node.warm_up()
        self.announce()
        systemd.notify("READY=1\nSTATUS=serving")
        watchdog = systemd.start_watchdog()
        await stop.wait()
        systemd.notify("STOPPING=1\nSTATUS=draining")
        await self.drain(hurry)
        log.info("stopping")
        self.ready = False
        await systemd.stop_watchdog(watchdog)
        self._server.should_exit = True
        await server_task
        await self.close()

    async def drain(self, hurry: asyncio.Event | None = None) -> None:
        """Stop taking calls (503 with Retry-After, not ready) and give the live ones up to
        ``recovery.drain_seconds`` to end by themselves; ``hurry`` cuts it short."""
        self.draining = True
        if self.voice_node is None:
            return
        voice = self.voice_node.voice
        seconds = self.settings.recovery.drain_seconds
        live = len(voice.sessions)
        if live:
            log.info("draining: no new calls; %d live calls get up to %.0f s", live, seconds)
        drain = asyncio.create_task(voice.drain(seconds))
        waits = [drain]
        if hurry is not None:
            waits.append(asyncio.create_task(hurry.wait()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)

    def announce(self) -> None:
        scheme = "https" if self.settings.https_cert else "http"
        base = f"{scheme}://{self.settings.host}:{self.settings.http_port}"
        print(f"cloudcc is ready: {base}/  (API docs: {base}/api/docs)", flush=True)
        if self.demo:
            d = self.demo
            print(
                f"demo tenant '{d['tenant']}': admin {d['admin']['username']} / "
                f"{d['admin']['password']}; agents "
                + ", ".join(f"{a['extension']}/{a['sip_password']}" for a in d["agents"])
                + f"; call number {d['number']}",
                flush=True,
            )
            print(f"credentials written to {d['file']}", flush=True)

    async def close(self) -> None:
        if self.cluster_calls is not None:
            await self.cluster_calls.stop()
            self.cluster_calls = None
        if self.metrics_server is not None:
            await self.metrics_server.stop()
            self.metrics_server = None
        if self.voice_node is not None:
            await self.voice_node.stop()
            self.voice_node = None
        if self.operations is not None:
            await self.operations.stop()
            self.operations = None
        if self.routing is not None:  # its leases go at once to the other nodes
            await self.routing.stop()
            self.routing = None
        if self.registrations is not None:
            await self.registrations.stop()
            self.registrations = None
        await self.events.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if isinstance(self.bus, NatsBus):
            await self.bus.stop()
        await self.db.close()
