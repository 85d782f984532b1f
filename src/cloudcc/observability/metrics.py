"""Prometheus metrics of one node (prometheus_client), read from the live state at scrape time.

Counters and histograms that need an event (a contact ended, an API request served, an event
arrived from another node) are fed as things happen; everything that is a level (live calls,
legs, RTP quality of the live legs, queue depths, agents by state) is read when Prometheus
scrapes, from the objects that hold it, so nothing is counted twice or drifts.

Every metric is labelled with the tenant id where one tenant's figures mean something on
their own; node-wide figures (media legs, bus lag, API latency) carry no tenant label.
Metrics are served on a port of their own (``metrics.port``), outside the API's caps and
never on the public API: see docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from cloudcc import __version__

log = logging.getLogger("cloudcc.metrics")

#: API latency buckets, seconds: most requests take a few milliseconds.
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Bus lag buckets, seconds: an event from another node should arrive within milliseconds.
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class NodeMetrics:
    """One registry per node (several nodes may share a process in tests)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.registry = CollectorRegistry(auto_describe=True)
        self.contacts_started = Counter(
            "cloudcc_contacts_started",
            "Contacts created on this node",
            ["tenant", "channel", "direction"],
            registry=self.registry,
        )
        self.contacts_ended = Counter(
            "cloudcc_contacts_ended",
            "Contacts ended on this node, by disposition",
            ["tenant", "channel", "disposition"],
            registry=self.registry,
        )
        self.api_latency = Histogram(
            "cloudcc_api_request_duration_seconds",
            "Time to serve an API request, by route template",
            ["method", "route", "status"],
            buckets=API_BUCKETS,
            registry=self.registry,
        )
        self.bus_lag = Histogram(
            "cloudcc_bus_lag_seconds",
            "Time from an event's publication on one node to its arrival on this one",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.bus_published = Counter(
            "cloudcc_bus_events_published",
            "Events published by this node",
            ["tenant"],
            registry=self.registry,
        )
        self.info = Gauge(
            "cloudcc_node_info",
            "This node (value 1)",
            ["node", "version"],
            registry=self.registry,
        )
        self.info.labels(node, __version__).set(1)
        self.live = LiveCollector()
        self.registry.register(self.live)

    def watch_bus(self, bus: Any) -> None:
        """Count this node's contacts and events from the bus."""

        def on_event(event: Any) -> None:
            if event.origin not in ("", self.node):
                return  # published by another node (a cluster bus): counted there
            self.bus_published.labels(event.tenant_id).inc()
            if event.type == "contact.created":
                d = event.data
                self.contacts_started.labels(
                    event.tenant_id, d.get("channel", ""), d.get("direction", "")
                ).inc()
            elif event.type == "contact.ended":
                d = event.data
                self.contacts_ended.labels(
                    event.tenant_id, d.get("channel", ""), d.get("disposition") or ""
                ).inc()

        bus.on(lambda e: True, on_event)
        if hasattr(bus, "lag_observer"):
            bus.lag_observer = self.bus_lag.observe

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LiveCollector(Collector):
    """Levels read at scrape time from the sources that are set (None: not on this node)."""

    def __init__(self) -> None:
        self.voice: Any = None  # cloudcc.contacts.voice.VoiceService
        self.media: Any = None  # cloudcc.media.engine.MediaEngine
        self.acd: Any = None  # cloudcc.contacts.acd.Acd
        self.events: Any = None  # cloudcc.events.EventsService
        self.extra: list[Callable[[], Iterable[Metric]]] = []

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.voice is not None:
            yield from self._calls()
        if self.media is not None:
            legs = GaugeMetricFamily("cloudcc_media_legs", "Media legs open on this node")
            legs.add_metric([], len(getattr(self.media, "_legs", {})))
            yield legs
        if self.acd is not None:
            yield from self._routing()
        if self.events is not None:
            streams = GaugeMetricFamily(
                "cloudcc_event_streams", "Event streams open on this node", labels=["tenant"]
            )
            for tenant, n in dict(self.events._streams).items():
                streams.add_metric([tenant], n)
            yield streams
        for extra in self.extra:
            yield from extra()

    def _calls(self) -> Iterator[Metric]:
        calls: dict[str, int] = defaultdict(int)
        legs: dict[str, int] = defaultdict(int)
        received: dict[str, int] = defaultdict(int)
        lost: dict[str, int] = defaultdict(int)
        jitter_sum: dict[str, float] = defaultdict(float)
        jitter_max: dict[str, float] = defaultdict(float)
        for session in list(self.voice.sessions.values()):
            tenant = session.contact.tenant_id
            calls[tenant] += 1
            for party in _parties(session):
                legs[tenant] += 1
                try:
                    stats = party.media.stats()
                except Exception:  # a leg closing under our feet: skip it this time
                    continue
                received[tenant] += stats.packets_received
                lost[tenant] += stats.packets_lost
                jitter_sum[tenant] += stats.jitter_ms
                jitter_max[tenant] = max(jitter_max[tenant], stats.jitter_ms)
        yield _family("cloudcc_calls_active", "Live contacts anchored on this node", calls)
        yield _family("cloudcc_call_legs_active", "Live call legs (parties)", legs)
        yield _family(
            "cloudcc_rtp_packets_received", "RTP packets received on the live legs", received
        )
        yield _family(
            "cloudcc_rtp_packets_lost", "RTP packets lost on the live legs (RFC 3550 A.3)", lost
        )
        mean = {t: jitter_sum[t] / legs[t] for t in jitter_sum if legs[t]}
        yield _family(
            "cloudcc_rtp_jitter_mean_ms", "Mean interarrival jitter of the live legs", mean
        )
        yield _family(
            "cloudcc_rtp_jitter_max_ms", "Largest interarrival jitter of a live leg", jitter_max
        )

    def _routing(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "cloudcc_queue_waiting", "Contacts waiting in a queue", labels=["tenant", "queue"]
        )
        longest = GaugeMetricFamily(
            "cloudcc_queue_longest_wait_seconds",
            "Wait of the oldest contact in a queue",
            labels=["tenant", "queue"],
        )
        agents = GaugeMetricFamily(
            "cloudcc_agents", "Agents by reported state", labels=["tenant", "state"]
        )
        now = time.time()
        for tenant, engine in list(self.acd._engines.items()):
            for queue_id in list(engine.queue_ids()):
                stats = engine.queue_stats(queue_id, now)
                name = self.acd.queue_name(tenant, queue_id)
                waiting.add_metric([tenant, name], stats.waiting)
                longest.add_metric([tenant, name], stats.longest_wait)
            by_state: dict[str, int] = defaultdict(int)
            for agent_id in list(engine.agent_ids()):
                by_state[str(engine.agent_stats(agent_id, now).state)] += 1
            for state, n in by_state.items():
                agents.add_metric([tenant, state], n)
        yield waiting
        yield longest
        yield agents


def _parties(session: Any) -> Iterator[Any]:
    seen: set[int] = set()
    for party in [*session.parties, session.agent, session.consult, session.supervisor]:
        if party is not None and id(party) not in seen:
            seen.add(id(party))
            yield party


def _family(name: str, doc: str, values: dict[str, Any]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["tenant"])
    for tenant, value in values.items():
        family.add_metric([tenant], value)
    return family


class ApiLatency:
    """Pure ASGI middleware: observe each HTTP request's duration by its route template.

    The histogram's children are kept by (method, template, status): ``labels()`` takes a
    lock and checks its arguments on every call, a dict lookup does not."""

    def __init__(self, app: Any, metrics: NodeMetrics) -> None:
        self.app = app
        self.histogram = metrics.api_latency
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            key = (scope["method"], route_template(scope), status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.histogram.labels(key[0], key[1], str(status))
            child.observe(elapsed)


def route_template(scope: Any) -> str:
    """The path with each path parameter put back as ``{name}`` (one series for every id);
    ``unmatched`` when no route matched (404s must not make a series per path)."""
    if "endpoint" not in scope:
        return "unmatched"
    params = {str(v): k for k, v in scope.get("path_params", {}).items()}
    if not params:
        return str(scope["path"])
    return "/".join(
        "{" + params[part] + "}" if part in params else part for part in scope["path"].split("/")
    )


class MetricsServer:
    """``GET /metrics`` on a port of its own (asyncio; the scrape runs in the node's loop)."""

    def __init__(self, metrics: NodeMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request = await reader.readline()
                while await reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
            parts = request.split()
            if len(parts) < 2 or parts[0] not in (b"GET", b"HEAD"):
                writer.write(_response(405, b"text/plain", b"GET /metrics only\n"))
            elif parts[1].split(b"?")[0] != b"/metrics":
                writer.write(_response(404, b"text/plain", b"see /metrics\n"))
            else:
                body = self.metrics.render()
                writer.write(
                    _response(
                        200, CONTENT_TYPE_LATEST.encode(), b"" if parts[0] == b"HEAD" else body
                    )
                )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("metrics scrape failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _response(status: int, content_type: bytes, body: bytes) -> bytes:
    reason = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed"}[status]
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (status, reason, content_type, len(body))
    ) + body
