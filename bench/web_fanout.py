"""Event fan-out to signed-in agents on one node (issue 19): a real node, one principal per agent.

* ``web_event_fanout_p99_ms``: 1,000 agents (200 with ``--quick``), each its own web user,
  signed in (``POST /auth/login`` then ``POST /agents/{id}/login``) and holding its own
  WebSocket event stream (scope agent, as the agent workspace opens it). The tenant admin then
  changes every agent's state ``ROUNDS`` times (``PUT /agents/{id}/state``, ``RATE`` changes
  a second across the agents); each change is an ``agent.state_changed`` event that the node
  matches against every open stream and delivers to that agent's stream. Figure: p99 over all
  receipts of receive time minus the event's own time (``at``, ISO 8601 to the millisecond,
  stamped when published).
* ``web_agents_rss_mb``: the node's RSS growth from before the streams (agents created and
  signed in) to with them open (the larger of: just opened, and after the events).

The agents are created through the API (``POST /agents`` with a web password: one scrypt hash
each, in the node's worker threads). Setup uses both cores; while the streams are opened and
the events flow, the node is pinned to core 0 and this client to core 1, and the client's own
CPU share is printed so one can see it was not the bottleneck.

Run from the repo root in the venv: ``python bench/web_fanout.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _bench import ROOT, Report, cpu_seconds, parse_args, percentile, rss_bytes

sys.path.insert(0, ROOT)

from tests.conftest import LiveNode
from tests.voice.conftest import Api

ROUNDS = 3  # state changes per agent
RATE = 200.0  # state changes a second across all agents
PASSWORD = "fanout-bench-pw-1"


def pin(pid: int, core: int) -> None:
    """Pin every thread of ``pid`` to ``core`` (no-op on a one-core machine)."""
    if (os.cpu_count() or 1) < 2:
        return
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), {core})


async def gather_limited(n: int, jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(n)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


async def create_agents(api: Api, count: int) -> list[dict[str, Any]]:
    """``count`` agents with web users and a device each, through the API; then signed in."""
    import httpx

    async with httpx.AsyncClient(base_url=api.base, headers=api.headers, timeout=60) as admin:

        async def create(i: int) -> dict[str, Any]:
            ext = str(7000 + i)
            body = {
                "name": f"Fanout {i}",
                "extension": ext,
                "sip_password": f"sip-{PASSWORD}-{i}",
                "username": f"fanout{i}",
                "password": PASSWORD,
                "device": f"sip:desk-{ext}@127.0.0.1:5999",
            }
            r = await admin.post("/agents", json=body)
            assert r.status_code == 201, (r.status_code, r.text)
            return {"id": r.json()["id"], "username": f"fanout{i}"}

        started = time.perf_counter()
        agents = await gather_limited(8, [create(i) for i in range(count)])
        print(f"{count} agents created in {time.perf_counter() - started:.1f} s", flush=True)

    async with httpx.AsyncClient(base_url=api.base, timeout=60) as client:

        async def sign_in(agent: dict[str, Any]) -> None:
            r = await client.post(
                "/auth/login",
                json={"tenant": "demo", "username": agent["username"], "password": PASSWORD},
            )
            assert r.status_code == 200, (r.status_code, r.text)
            agent["token"] = r.json()["access_token"]
            headers = {"Authorization": f"Bearer {agent['token']}"}
            r = await client.post(
                f"/agents/{agent['id']}/login", json={"ready": False}, headers=headers
            )
            assert r.status_code == 200, (r.status_code, r.text)

        started = time.perf_counter()
        await gather_limited(8, [sign_in(a) for a in agents])
        print(f"{count} agents signed in in {time.perf_counter() - started:.1f} s", flush=True)
    return agents


async def open_stream(url: str, agent: dict[str, Any]) -> Any:
    import websockets

    ws = await asyncio.wait_for(websockets.connect(url, max_size=None, ping_interval=None), 30)
    await ws.send(json.dumps({"type": "auth", "access_token": agent["token"]}))
    hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert hello["type"] == "stream.hello", hello
    assert hello["data"]["agent_id"] == agent["id"], hello
    return ws


async def fanout(node: LiveNode, api: Api, agents: list[dict[str, Any]]) -> dict[str, float]:
    import httpx

    url = node.base.replace("http://", "ws://") + "/api/v1/events/ws"
    pid = node.proc.pid
    rss_before = rss_bytes(pid)
    conns = await gather_limited(32, [open_stream(url, a) for a in agents])
    print(f"{len(conns)} streams open, one per agent", flush=True)
    await asyncio.sleep(2)
    rss_open = rss_bytes(pid)

    delays: list[float] = []
    deadline = time.monotonic() + ROUNDS * len(agents) / RATE + 60

    async def read(ws: Any) -> None:
        got = 0
        try:
            while got < ROUNDS:
                left = deadline - time.monotonic()
                msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, left)))
                if msg["type"] == "agent.state_changed":
                    delays.append(time.time() - datetime.fromisoformat(msg["at"]).timestamp())
                    got += 1
        except TimeoutError:
            return

    readers = [asyncio.create_task(read(ws)) for ws in conns]
    node_cpu, client_cpu, wall = cpu_seconds(pid), cpu_seconds(), time.perf_counter()
    refused = 0
    async with httpx.AsyncClient(base_url=api.base, headers=api.headers, timeout=60) as admin:

        async def change(agent_id: str, i: int) -> None:
            nonlocal refused
            # Signed in not ready: ready, then not ready, ready, ... each one a change.
            body = {"state": "not_ready", "reason": "rest"} if i % 2 else {"state": "ready"}
            r = await admin.put(f"/agents/{agent_id}/state", json=body)
            if r.status_code != 200:
                refused += 1
                if refused <= 3:
                    print(f"state change refused: {r.status_code} {r.text}", flush=True)

        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for n, (i, agent) in enumerate((i, a) for i in range(ROUNDS) for a in agents):
            delay = start + n / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(change(agent["id"], i))
            pending.add(task)
            task.add_done_callback(pending.discard)
        sent = time.perf_counter() - start
        await asyncio.gather(*pending)
    print(f"{ROUNDS * len(agents)} state changes sent in {sent:.1f} s ({refused} refused)")
    accepted = ROUNDS * len(agents) - refused
    while len(delays) < accepted and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    missing = accepted - len(delays)
    wall = time.perf_counter() - wall
    node_share = (cpu_seconds(pid) - node_cpu) / wall
    client_share = (cpu_seconds() - client_cpu) / wall
    rss_after = rss_bytes(pid)
    for task in readers:
        task.cancel()
    await gather_limited(64, [ws.close() for ws in conns])
    print(
        f"receipts: {len(delays)} of {ROUNDS * len(agents) - refused} accepted changes "
        f"({missing} missing); "
        f"p50 {percentile(delays, 50) * 1000:.1f} ms, max {max(delays, default=0) * 1000:.1f} ms; "
        f"CPU share during the events: node {node_share:.0%}, client {client_share:.0%}; "
        f"node RSS {rss_before / 2**20:.0f} MB before the streams, {rss_open / 2**20:.0f} MB "
        f"with them, {rss_after / 2**20:.0f} MB after the events",
        flush=True,
    )
    return {
        "p99": percentile(delays, 99) * 1000 if missing <= 0 else float("inf"),
        "rss": (max(rss_open, rss_after) - rss_before) / 2**20,
    }


async def run(node: LiveNode, count: int) -> dict[str, float]:
    import httpx

    api = Api(node)
    # The demo tenant has 50 seats: the platform operator gives it room for the agents.
    r = httpx.patch(
        f"{api.base}/tenants/{node.demo['tenant_id']}",
        json={"max_seats": count + 100},
        headers=api.operator(),
    )
    assert r.status_code == 200, (r.status_code, r.text)
    agents = await create_agents(api, count)
    pin(node.proc.pid, 0)
    pin(os.getpid(), 1)
    return await fanout(node, api, agents)


def main() -> int:
    args = parse_args("event fan-out to signed-in agents, one principal and stream each")
    count = 200 if args.quick else 1000
    report = Report()
    work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    node = LiveNode(work / "data")
    try:
        node.wait_ready()
        result = asyncio.run(run(node, count))
        report.add("web_event_fanout_p99_ms", result["p99"], "ms", "<=", 200)
        report.add("web_agents_rss_mb", result["rss"], "MB", "<=", 200)
    except Exception:
        print(f"node exit code {node.proc.poll()}; its log ends:\n{node.log()}", flush=True)
        raise
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
