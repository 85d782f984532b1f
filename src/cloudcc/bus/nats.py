"""The event bus between the nodes of a cluster: NATS JetStream (``cluster.nats_url``).

Every event is published to one JetStream stream (subject ``<stream>.<tenant id>``), and
every node reads the whole stream back with an ordered consumer: subscribers on any node
(the WebSocket event stream, webhooks, wallboards) see the whole tenant, whichever node
published. An event's ``seq`` is its stream sequence: assigned by the NATS server, the same on
every node, increasing; so a client that reconnects to another node resumes where it was.
Unlike the in-process bus the numbers of one tenant are not consecutive (other tenants'
events take the numbers between).

Publishing stays synchronous for the callers: the event is queued, and one task sends the
queue in order (pipelined, a message id per event so that a resend after a reconnection is
deduplicated by the server). Hooks and subscribers, this node's included, get every event
when it comes back from the stream with its sequence number, so that all nodes see one order;
``origin_only`` hooks (webhook intake: once per event in the cluster) run only on the node
that published it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import nats
import orjson
from nats.js import api

from cloudcc.bus.local import Event, LocalBus

log = logging.getLogger("cloudcc.bus")

#: JetStream's duplicate window: a resend within it is dropped by the server (Nats-Msg-Id).
DUPLICATE_WINDOW = 120.0


class BusUnavailable(RuntimeError):
    """NATS could not be reached at start."""


class NatsBus(LocalBus):
    def __init__(
        self,
        url: str,
        node: str,
        *,
        stream: str = "CLOUDCC_EVENTS",
        history: int = 10_000,
        max_age: float = 24 * 3600.0,
        max_per_tenant: int = 100_000,
        max_pending: int = 100_000,
        history_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        super().__init__(history, history_bytes)
        self.url = url
        self.node = node
        self.stream = stream
        self.prefix = f"{stream}."  # subjects: one per tenant, under the stream's own name
        self.max_age = max_age
        self.max_per_tenant = max_per_tenant
        self.max_pending = max_pending
        self.lag_observer: Callable[[float], None] | None = None
        self.dropped = 0  # events not sent because the outgoing queue was full (NATS away)
        self._ids = itertools.count(1)
        self._run = f"{node}-{time.time_ns():x}"
        self._out: deque[tuple[str, bytes, str]] = deque()  # tenant, body, message id
        self._floor = 1  # the first stream sequence this node has read
        self._trimmed: dict[str, int] = {}  # tenant -> last seq pushed out of its history
        self._wake = asyncio.Event()
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._sender: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._replay_to = 0
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self, connect_timeout: float = 10.0) -> None:
        """Connect, make sure the stream exists, replay the recent history, then go live."""
        try:
            self._nc = await nats.connect(
                self.url,
                name=f"cloudcc-{self.node}",
                connect_timeout=connect_timeout,
                reconnect_time_wait=0.5,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except Exception as exc:
            raise BusUnavailable(f"cannot reach NATS at {self.url}: {exc}") from exc
        self._js = self._nc.jetstream()
        config = api.StreamConfig(
            name=self.stream,
            subjects=[self.prefix + "*"],
            storage=api.StorageType.FILE,
            max_age=self.max_age,
            max_msgs_per_subject=self.max_per_tenant,
            duplicate_window=DUPLICATE_WINDOW,
        )
        try:
            await self._js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await self._js.update_stream(config)  # created before with other limits
        info = await self._js.stream_info(self.stream)
        last = info.state.last_seq
        self._replay_to = last
        if last == 0:
            self._caught_up.set()
        start = max(info.state.first_seq, last - self._history_size + 1, 1)
        self._floor = start
        self._sub = await self._js.subscribe(
            self.prefix + "*",
            stream=self.stream,
            cb=self._on_message,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=start),
            idle_heartbeat=2.0,
            pending_msgs_limit=1_000_000,
        )
        async with asyncio.timeout(connect_timeout):
            await self._caught_up.wait()
        self._sender = asyncio.create_task(self._send_loop(), name="nats-bus-sender")

    async def stop(self, flush_timeout: float = 5.0) -> None:
        """Send what is queued (up to ``flush_timeout`` s), then disconnect."""
        self._stopping = True
        if self._sender is not None:
            deadline = time.monotonic() + flush_timeout
            while self._out and time.monotonic() < deadline and self._nc.is_connected:  # noqa: ASYNC110 - a short flush at shutdown
                await asyncio.sleep(0.01)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    @property
    def connected(self) -> bool:
        return bool(self._nc is not None and self._nc.is_connected)

    @property
    def connection(self) -> Any:
        """The NATS connection (for other cluster messages than events)."""
        return self._nc

    @property
    def pending(self) -> int:
        return len(self._out)

    # ------------------------------------------------------------------ publishing

    def publish(self, tenant_id: str, type: str, data: dict[str, Any]) -> Event:
        event = Event(tenant_id, type, data, 0, origin=self.node)
        if len(self._out) >= self.max_pending:
            self.dropped += 1
            log.error("event bus queue full (NATS unreachable?): %s dropped", type)
            return event
        body = orjson.dumps(
            {"type": type, "data": data, "at": event.at, "origin": self.node},
            default=str,
        )
        self._out.append((tenant_id, body, f"{self._run}-{next(self._ids)}"))
        self._wake.set()
        return event

    async def _send_loop(self) -> None:
        while True:
            if not self._out:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._out[i] for i in range(min(len(self._out), 256))]
            try:
                futures = [
                    await self._js.publish_async(
                        self.prefix + tenant,
                        body,
                        stream=self.stream,
                        headers={"Nats-Msg-Id": msg_id},
                    )
                    for tenant, body, msg_id in batch
                ]
                await asyncio.wait_for(asyncio.gather(*futures), 5.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Resent with the same ids next time round: the server drops what it already has.
                log.warning("event bus: publishing failed (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            for _ in batch:
                self._out.popleft()

    # ------------------------------------------------------------------ receiving

    async def _on_message(self, msg: Any) -> None:
        seq = msg.metadata.sequence.stream
        tenant_id = msg.subject[len(self.prefix) :]
        try:
            body = orjson.loads(msg.data)
            event = Event(tenant_id, body["type"], body["data"], seq, body["at"], body["origin"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("event bus: unreadable message %d on %s skipped", seq, msg.subject)
        else:
            self._deliver(event, live=self._caught_up.is_set())
        if not self._caught_up.is_set() and seq >= self._replay_to:
            self._caught_up.set()

    def _deliver(self, event: Event, live: bool) -> None:
        tenant_id = event.tenant_id
        if event.seq <= self._seq.get(tenant_id, 0):
            return  # already seen (a consumer reset redelivers)
        self._seq[tenant_id] = event.seq
        self._keep(event)
        if not live:
            return  # history replayed at start: no hook, nobody subscribed yet
        if self.lag_observer is not None:
            self.lag_observer(max(0.0, time.time() - event.at))
        mine = event.origin == self.node
        for accept, hook, origin_only in self._hooks:
            if (mine or not origin_only) and accept(event):
                hook(event)
        self._fan_out(event)

    def _trim(self, tenant_id: str, event: Event) -> None:
        self._trimmed[tenant_id] = event.seq

    def since(self, tenant_id: str, seq: int) -> tuple[list[Event], bool]:
        """Events after ``seq`` kept in history, and whether nothing was lost in between.

        Sequences are the stream's, shared by all tenants: the history is complete unless an
        event after ``seq`` was pushed out of it, or ``seq`` is older than what this node read
        from the stream at start.
        """
        hist = self._history.get(tenant_id, deque())
        events = [e for e in hist if e.seq > seq]
        complete = seq >= self._trimmed.get(tenant_id, 0) and seq + 1 >= self._floor
        # Nothing kept after ``seq``: complete unless the budget pushed it out (``_trimmed``).
        return events, complete or (not events and seq >= self._trimmed.get(tenant_id, 0))

    # ------------------------------------------------------------------ connection

    async def _on_error(self, exc: Exception) -> None:
        log.warning("event bus: %s", exc)

    async def _on_disconnected(self) -> None:
        if self._stopping:
            return
        log.warning("event bus: disconnected from NATS; events are queued")

    async def _on_reconnected(self) -> None:
        log.warning("event bus: reconnected to NATS; %d queued events to send", len(self._out))
        self._wake.set()
