"""Live-call counts shared between nodes over NATS (tenants' concurrent-call quotas)."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest

from cloudcc.cluster.calls import ClusterCalls
from cloudcc.tenancy.ratelimit import RateLimiter


async def test_each_node_sees_the_others_calls_and_forgets_a_silent_node(nats_url: str) -> None:
    subject = f"TEST_{uuid.uuid4().hex[:8]}.calls"
    conns = [await nats.connect(nats_url) for _ in range(3)]
    counts = {"a": {"t1": 2, "t2": 1}, "b": {"t1": 3}, "c": {}}
    nodes = {
        name: ClusterCalls(
            conn, subject, name, lambda n=name: counts[n], interval=0.2, stale_after=1.0
        )
        for name, conn in zip("abc", conns, strict=True)
    }
    try:
        for node in nodes.values():
            await node.start()
        await asyncio.sleep(0.5)
        assert nodes["c"].remote("t1") == 5 and nodes["c"].remote("t2") == 1
        assert nodes["a"].remote("t1") == 3  # its own calls are not counted twice
        assert nodes["b"].remote("t1") == 2 and nodes["b"].remote("t3") == 0
        assert [node.nodes() for node in nodes.values()] == [3, 3, 3]
        # A call ends on b: announced at once, not at the next tick.
        counts["b"]["t1"] = 1
        nodes["b"].changed()
        await asyncio.sleep(0.1)
        assert nodes["a"].remote("t1") == 1
        # a goes silent (dies): after stale_after its calls no longer count.
        await nodes["a"].stop()
        await asyncio.sleep(1.3)
        assert nodes["c"].remote("t1") == 1 and nodes["c"].remote("t2") == 0
        assert nodes["c"].nodes() == 2
    finally:
        for node in nodes.values():
            await node.stop()
        for conn in conns:
            await conn.close()


def test_a_nodes_share_of_a_rate_limit() -> None:
    limiter = RateLimiter(10.0, 10.0)
    assert sum(limiter.check("t", 0.0) == 0 for _ in range(30)) == 10
    # Three nodes: this one admits a third of the rate and of the burst.
    limiter.share = 1 / 3
    assert limiter.check("t", 3.0) == 0  # 3 s at 3.3/s refilled the (smaller) bucket
    assert sum(limiter.check("t", 3.0) == 0 for _ in range(30)) == 2
    fresh = RateLimiter(10.0, 10.0)
    fresh.share = 1 / 3
    assert sum(fresh.check("u", 0.0) == 0 for _ in range(30)) == 3
    assert fresh.check("u", 0.0) == pytest.approx(0.2, rel=0.01)  # (1 - 1/3) / (10/3)
