"""Event fan-out to signed-in agents on one node (issue 19): a real node, one principal per agent.

* ``web_event_fanout_p99_ms``: 1,000 agents (100 with ``--quick``; ``--agents N``), each its
  own web user, signed in (``POST /auth/login`` then ``POST /agents/{id}/login``) and holding
  its own WebSocket event stream (scope agent, as the agent workspace opens it), and beside
  them a supervisor's wallboard stream (scope supervisor). The tenant admin then changes every
  agent's state ``ROUNDS`` times (``PUT /agents/{id}/state``, ``RATE`` changes a second across
  the agents, from ``SENDERS`` connections); each change is an ``agent.state_changed`` event
  that the bus routes to that agent's stream (by the event's audience) and to the wallboard.
  Figure: p99 over the agents' receipts of receive time minus the event's own time (``at``,
  ISO 8601 to the millisecond, stamped when published); the wallboard's p99 is printed.
* ``web_agents_rss_mb``: the node's RSS growth from before the streams (agents created and
  signed in) to with them open (the larger of: just opened, and after the events).

The agents are created through the API (``POST /agents`` with a web password: one scrypt hash
each, in the node's worker threads), and each sign-in verifies one: that is most of the run's
time. Setup uses both cores; while the streams are opened and the events flow, the node is
pinned to core 0 and this client to core 1. Printed beside the figures: how busy the cores
were before the events (other processes), the CPU share of the node and of this client, and
how long the node's threads waited for a CPU (others' load on a shared machine).

Run from the repo root in the venv: ``python bench/web_fanout.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from datetime import datetime
from typing import Any

from _bench import (
    Report,
    core_busy,
    cpu_seconds,
    cpu_wait_seconds,
    live_node,
    parse_args,
    percentile,
    rss_bytes,
)
from tests.conftest import LiveNode
from tests.voice.conftest import Api

ROUNDS = 3  # state changes per agent
RATE = 200.0  # state changes a second across all agents
SENDERS = 8  # admin connections sending them (a node behind the pace is not flooded)
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


async def open_stream(url: str, token: str, **options: str) -> tuple[Any, dict[str, Any]]:
    """A stream authenticated by its first message; the socket and its hello."""
    import websockets

    ws = await asyncio.wait_for(websockets.connect(url, max_size=None, ping_interval=None), 30)
    await ws.send(json.dumps({"type": "auth", "access_token": token, **options}))
    hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert hello["type"] == "stream.hello", hello
    return ws, hello


async def open_agent_stream(url: str, agent: dict[str, Any]) -> Any:
    ws, hello = await open_stream(url, agent["token"])
    assert hello["data"]["agent_id"] == agent["id"], hello
    return ws


async def fanout(node: LiveNode, api: Api, agents: list[dict[str, Any]]) -> dict[str, float]:
    import httpx
    import websockets

    url = node.base.replace("http://", "ws://") + "/api/v1/events/ws"
    pid = node.proc.pid
    rss_before = rss_bytes(pid)
    conns = await gather_limited(32, [open_agent_stream(url, a) for a in agents])
    # The supervisor's wallboard beside them: a tenant of 1,000 agents has room for it too.
    token = api.headers["Authorization"].removeprefix("Bearer ")
    board, _ = await open_stream(url, token, scope="supervisor", types="agent.state_changed")
    print(f"{len(conns)} streams open, one per agent, and a supervisor's", flush=True)
    await asyncio.sleep(2)
    rss_open = rss_bytes(pid)

    delays: list[float] = []
    board_delays: list[float] = []
    # Until 30 s after the last change was answered (the node may fall behind the pace).
    deadline = time.monotonic() + 3600.0

    async def read(ws: Any, expect: int, into: list[float]) -> None:
        got = 0
        try:
            while got < expect:
                left = deadline - time.monotonic()
                msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, left)))
                if msg["type"] == "agent.state_changed":
                    into.append(time.time() - datetime.fromisoformat(msg["at"]).timestamp())
                    got += 1
        except (TimeoutError, websockets.ConnectionClosed):
            return

    busy = core_busy()
    print(f"cores busy before the events: {', '.join(f'{b:.0%}' for b in busy)}", flush=True)
    readers = [asyncio.create_task(read(ws, ROUNDS, delays)) for ws in conns]
    readers.append(asyncio.create_task(read(board, ROUNDS * len(agents), board_delays)))
    node_cpu, client_cpu, wall = cpu_seconds(pid), cpu_seconds(), time.perf_counter()
    node_wait = cpu_wait_seconds(pid)
    refused = resent = 0
    limits = httpx.Limits(max_connections=SENDERS)
    async with httpx.AsyncClient(
        base_url=api.base, headers=api.headers, timeout=60, limits=limits
    ) as admin:
        # One change of an agent at a time: behind the pace, its next could overtake it.
        locks = {a["id"]: asyncio.Lock() for a in agents}

        async def change(agent_id: str, i: int) -> None:
            nonlocal refused
            # Signed in not ready: ready, then not ready, ready, ... each one a change.
            body = {"state": "not_ready", "reason": "rest"} if i % 2 else {"state": "ready"}
            async with locks[agent_id]:
                try:
                    r = await admin.put(f"/agents/{agent_id}/state", json=body)
                except httpx.TransportError:
                    # A kept-alive connection the node closed as idle (uvicorn, 5 s) just as
                    # it was reused: the request never reached it; send it once more.
                    nonlocal resent
                    resent += 1
                    r = await admin.put(f"/agents/{agent_id}/state", json=body)
            if r.status_code != 200:
                refused += 1
                if refused <= 3:
                    print(f"state change refused: {r.status_code} {r.text}", flush=True)

        # A fixed set of senders, each on its own connection, keeps the pace: one task per
        # change queued thousands of requests in httpx's pool, whose every step scans its whole
        # queue (quadratic: at 1,000 agents this client stalled at 100 % CPU, the node idle).
        schedule = [(i, a["id"]) for i in range(ROUNDS) for a in agents]
        position = 0
        start = time.perf_counter()
        late = 0.0

        async def sender() -> None:
            nonlocal position, late
            while position < len(schedule):
                n = position
                position += 1
                delay = start + n / RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                late = max(late, -delay)
                i, agent_id = schedule[n]
                await change(agent_id, i)

        await asyncio.gather(*(sender() for _ in range(SENDERS)))
        sent = time.perf_counter() - start
        deadline = time.monotonic() + 30
    print(f"the senders were at most {late * 1000:.0f} ms behind the {RATE:g}/s pace")
    print(
        f"{ROUNDS * len(agents)} state changes sent in {sent:.1f} s "
        f"({refused} refused, {resent} sent again)"
    )
    accepted = ROUNDS * len(agents) - refused
    while len(delays) < accepted and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    missing = accepted - len(delays)
    wall = time.perf_counter() - wall
    node_share = (cpu_seconds(pid) - node_cpu) / wall
    wait_share = (cpu_wait_seconds(pid) - node_wait) / wall
    client_share = (cpu_seconds() - client_cpu) / wall
    rss_after = rss_bytes(pid)
    for task in readers:
        task.cancel()
    await gather_limited(64, [ws.close() for ws in [*conns, board]])
    print(
        f"receipts: {len(delays)} of {ROUNDS * len(agents) - refused} accepted changes "
        f"({missing} missing); "
        f"p50 {percentile(delays, 50) * 1000:.1f} ms, max {max(delays, default=0) * 1000:.1f} ms; "
        f"the supervisor's stream: {len(board_delays)} receipts, "
        f"p99 {percentile(board_delays, 99) * 1000:.1f} ms; "
        f"CPU share during the events: node {node_share:.0%}, client {client_share:.0%}; "
        f"the node's threads waited for a CPU {wait_share:.0%} of the time; "
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
    args = parse_args(
        "event fan-out to signed-in agents, one principal and stream each",
        [("--agents", {"type": int, "help": "how many (default 1,000; 100 with --quick)"})],
    )
    count = args.agents or (100 if args.quick else 1000)
    report = Report()
    with live_node("bench-fanout-") as (node, _):
        result = asyncio.run(run(node, count))
    report.add("web_event_fanout_p99_ms", result["p99"], "ms", "<=", 200)
    report.add("web_agents_rss_mb", result["rss"], "MB", "<=", 200)
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
