"""Each tenant's live calls across the cluster, for its concurrent-call quota; and how many
nodes are alive, so that each node takes its share of the tenants' API rate limits.

Every node announces its own live calls per tenant on a NATS subject (core NATS, not
JetStream: only the latest count matters) at once when a call starts or ends and every
``interval`` seconds; each node keeps the latest announcement of every other node and drops
a node's counts once it has been silent ``stale_after`` seconds (a dead node's calls no
longer count). A node admits a call when its own calls plus the others' are under the quota:
two nodes admitting at the same instant may each admit one call over it (the announcement
takes a millisecond or so).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("cloudcc.cluster")


class ClusterCalls:
    def __init__(
        self,
        connection: Any,
        subject: str,
        node: str,
        local_counts: Callable[[], dict[str, int]],
        *,
        interval: float = 1.0,
        stale_after: float = 5.0,
    ) -> None:
        self.nc = connection
        self.subject = subject
        self.node = node
        self.local_counts = local_counts
        self.interval = interval
        self.stale_after = stale_after
        self._remote: dict[str, tuple[float, dict[str, int]]] = {}
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._soon: asyncio.TimerHandle | None = None
        self._sends: set[asyncio.Task[None]] = set()
        #: Called every ``interval`` with the number of live nodes (this one included).
        self.on_nodes: Callable[[int], None] | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subject, cb=self._on_message)
        self._task = asyncio.create_task(self._run(), name="cluster-calls")

    async def stop(self) -> None:
        if self._soon is not None:
            self._soon.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    def remote(self, tenant_id: str) -> int:
        """Live calls of ``tenant_id`` on the other nodes, as last announced."""
        now = time.monotonic()
        return sum(
            counts.get(tenant_id, 0)
            for at, counts in self._remote.values()
            if now - at < self.stale_after
        )

    def nodes(self) -> int:
        """Live nodes: this one and those heard from within ``stale_after`` seconds."""
        now = time.monotonic()
        return 1 + sum(1 for at, _ in self._remote.values() if now - at < self.stale_after)

    def heard_within(self, node: str, seconds: float) -> bool:
        """Whether ``node`` announced itself within ``seconds``: alive, whatever the store
        says of its heartbeat."""
        seen = self._remote.get(node)
        return seen is not None and time.monotonic() - seen[0] < seconds

    def changed(self) -> None:
        """A call started or ended here: announce soon (announcements close together merge)."""
        if self._soon is None:
            self._soon = asyncio.get_running_loop().call_later(0.02, self._announce_now)

    def _announce_now(self) -> None:
        self._soon = None
        task = asyncio.get_running_loop().create_task(self._announce())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _announce(self) -> None:
        counts = {t: n for t, n in self.local_counts().items() if n}
        body = orjson.dumps({"node": self.node, "counts": counts})
        try:
            await self.nc.publish(self.subject, body)
        except Exception as exc:  # NATS away: the next announcement will do
            log.debug("announcing live calls failed: %s", exc)

    async def _run(self) -> None:
        while True:
            await self._announce()
            if self.on_nodes is not None:
                self.on_nodes(self.nodes())
            await asyncio.sleep(self.interval)

    async def _on_message(self, msg: Any) -> None:
        try:
            body = orjson.loads(msg.data)
            node, counts = str(body["node"]), {str(k): int(v) for k, v in body["counts"].items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return
        if node != self.node:
            self._remote[node] = (time.monotonic(), counts)
