"""The node's event surface: resumable stream cursors for clients and outgoing webhooks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cloudcc.bus import Event, LocalBus
from cloudcc.errors import RateLimited
from cloudcc.events.audience import ContactAudience
from cloudcc.events.delivery import WebhookDispatcher
from cloudcc.events.model import Scope, Selection, WireText
from cloudcc.events.retry import RetryPolicy
from cloudcc.events.stream import Feed, poll
from cloudcc.events.targets import Resolver, TargetPolicy, system_resolver
from cloudcc.events.webhooks import WebhookResource
from cloudcc.store.db import Database


class EventsService:
    """Built once per node (before events flow, so that agent audiences are complete)."""

    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        *,
        allowed_networks: Iterable[str] = (),
        resolver: Resolver = system_resolver,
        retry: RetryPolicy | None = None,
        webhook_timeout: float = 10.0,
        max_webhooks_per_tenant: int = 100,
        heartbeat_seconds: float = 15.0,
        revalidate_seconds: float = 60.0,
        send_timeout: float = 30.0,
        auth_timeout: float = 10.0,
        stream_buffer: int = 1000,
        max_streams_per_tenant: int = 1000,
        streams_per_seat: float = 2.0,
        max_streams_per_principal: int = 16,
        audience_bytes: int = 16 * 1024 * 1024,
        **dispatcher_options: Any,
    ) -> None:
        self.db = db
        self.bus = bus
        # The WebSocket side: idle time before a heartbeat, how often a token is checked again
        # (revoked or expired: the stream ends), how long one send may block (the peer stopped
        # reading) and how long a handshake without credentials waits for the auth message.
        self.heartbeat_seconds = heartbeat_seconds
        self.revalidate_seconds = revalidate_seconds
        self.send_timeout = send_timeout
        self.auth_timeout = auth_timeout
        self.stream_buffer = stream_buffer
        self.encode = WireText()  # what the streams send, each event encoded once
        # A tenant's streams: the larger of max_streams_per_tenant and streams_per_seat times
        # its seats, so that a tenant of 1,000 agents is not refused its wallboards.
        self.max_streams_per_tenant = max_streams_per_tenant
        self.streams_per_seat = streams_per_seat
        self.max_streams_per_principal = max_streams_per_principal
        self.audience = ContactAudience(audience_bytes)
        self.audience.install(bus)
        # An agent's stream is found from the event's audience, not by asking every stream.
        bus.route_by(self.audience)
        self.policy = TargetPolicy(allowed_networks, resolver)
        self.webhooks = WebhookResource(db, bus, self.policy, max_webhooks_per_tenant)
        self.dispatcher = WebhookDispatcher(
            db, bus, self.policy, retry=retry, timeout=webhook_timeout, **dispatcher_options
        )
        self._streams: dict[str, int] = {}
        self._principal_streams: dict[str, int] = {}
        self._feed_principal: dict[int, str] = {}

    async def start(self) -> None:
        await self.dispatcher.start()

    async def stop(self) -> None:
        await self.dispatcher.stop()

    def accept(self, selection: Selection) -> Any:
        audience = self.audience

        def accept(event: Event) -> bool:
            return selection.accepts(event, audience)

        return accept

    def open(
        self,
        tenant_id: str,
        selection: Selection,
        since: int | None,
        principal: str | None = None,
        seats: int | None = None,
    ) -> Feed:
        """A stream cursor; RateLimited when the tenant (with ``seats``, its max_seats), or
        the principal (a user or key id), has too many streams open."""
        cap = self.tenant_cap(seats)
        if self._streams.get(tenant_id, 0) >= cap:
            raise RateLimited(
                f"the tenant has {cap} event streams open, its most"
                + (f" for {seats} seats" if seats else "")
                + "; close some",
                5.0,
            )
        who = f"{tenant_id}/{principal}" if principal else None
        if who and self._principal_streams.get(who, 0) >= self.max_streams_per_principal:
            raise RateLimited(
                f"you have {self.max_streams_per_principal} event streams open; close one", 5.0
            )
        feed = Feed(
            self.bus,
            tenant_id,
            self.accept(selection),
            since,
            maxsize=self.stream_buffer,
            key=_key(selection),
        )
        self._streams[tenant_id] = self._streams.get(tenant_id, 0) + 1
        if who:
            self._principal_streams[who] = self._principal_streams.get(who, 0) + 1
            self._feed_principal[id(feed)] = who
        return feed

    def release(self, feed: Feed) -> None:
        feed.close()
        left = self._streams.get(feed.tenant_id, 1) - 1
        if left > 0:
            self._streams[feed.tenant_id] = left
        else:
            self._streams.pop(feed.tenant_id, None)
        who = self._feed_principal.pop(id(feed), None)
        if who:
            left = self._principal_streams.get(who, 1) - 1
            if left > 0:
                self._principal_streams[who] = left
            else:
                self._principal_streams.pop(who, None)

    def tenant_cap(self, seats: int | None) -> int:
        """How many streams a tenant with ``seats`` (its max_seats; None: unknown) may hold."""
        by_seats = int(self.streams_per_seat * seats) if seats else 0
        return max(self.max_streams_per_tenant, by_seats)

    def streams_open(self, tenant_id: str) -> int:
        return self._streams.get(tenant_id, 0)

    async def poll(
        self,
        tenant_id: str,
        selection: Selection,
        since: int | None,
        *,
        wait: float = 0.0,
        limit: int = 100,
    ) -> tuple[list[Any], int]:
        return await poll(
            self.bus,
            tenant_id,
            self.accept(selection),
            since,
            wait=wait,
            limit=limit,
            key=_key(selection),
        )


def _key(selection: Selection) -> str | None:
    """The bus key of a selection: its agent's id for an agent's stream (see route_by)."""
    return selection.agent_id if selection.scope is Scope.AGENT else None


def install(ctx: Any, **options: Any) -> EventsService:
    """Build the service for ``ctx`` (an ApiContext) and keep it in ``ctx.extra``."""
    service = EventsService(ctx.db, ctx.bus, **options)
    ctx.extra["events"] = service
    ctx.extra["webhooks"] = service.webhooks
    return service
