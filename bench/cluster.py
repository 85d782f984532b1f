"""A cluster on this machine: three nodes (127.0.0.11-13) on PostgreSQL and NATS behind
Kamailio (127.0.0.10), loaded with SIPp callers through the edge; one node is killed (-9).

Figures:
- cluster_event_p99_ms: an event published on one node until it reaches a subscriber on
  another, through NATS JetStream, at 1,000 events/s;
- cluster_failover_s: from the kill until a new call through the edge is answered again;
- cluster_lost_cdrs: calls of the load with no closed record once the survivors recovered
  the dead node's calls;
- cluster_dropped_calls: calls of the load on the surviving nodes that did not end as the
  caller meant (the caller hangs up at the end of its talk time);
- cluster_routing_resume_s: then, on the two survivors, an agent signed in (its phone a SIPp
  UAS), the node holding the tenant's routing lease is killed (-9) and a new call goes
  straight to a queue on the other: from the kill until an agent answered it (the lease
  taken over, the engine rebuilt from the store, the call placed, queued, offered, rung).

Not measured yet: cluster_scale_ratio (3 nodes against 1 on the same machine; on 2 shared
cores it is bounded by the cores, not by the nodes).

Run from the repo root in the venv: ``python bench/cluster.py [--quick]``. Needs kamailio,
sipp, nats-server (the local one on 4222 or started here) and PostgreSQL (CCTEST_PG).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _bench import ROOT, Report, parse_args, percentile

sys.path.insert(0, ROOT)


def routing_resume(work: Path, db: str, alive: list, cl: Any) -> float | None:
    """Kill the node running the demo tenant's routing; seconds until a new call on the
    other reached an agent (None: not within 30 s)."""
    import httpx

    from tests.cluster.routing import contact_rows, routing_owner
    from tests.voice.conftest import Api
    from tests.voice.peers import SippAgentPhone

    phone = SippAgentPhone(work / "routing-phone", calls=5).start()
    try:
        api = Api(alive[0])
        tenant_id = alive[0].demo["tenant_id"]
        api.provision("4100")
        api.post("/numbers", {"number": "4100", "target_type": "queue", "target": "support"})
        agent = api.agents["1001"]["id"]
        r = httpx.post(
            alive[-1].base + f"/api/v1/agents/{agent}/login",
            json={"device": phone.uri, "ready": True},
            headers=api.headers,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        owner = routing_owner(db, tenant_id)
        victim = next(n for n in alive if n.name == owner)
        other = next(n for n in alive if n is not victim)
        seen = {row["id"] for row in contact_rows(db)}
        victim.kill()
        killed = time.time()
        call = cl.start_callers(
            work / "routing-call", 0, number="4100", talk_ms=3000, timeout=40,
            target=f"{other.host}:{other.sip_port}",
        )  # fmt: skip
        try:
            row = cl.wait_for(
                lambda: next(
                    (r for r in contact_rows(db) if r["id"] not in seen and r["answered_at"]), None
                ),
                30,
                0.05,
            )
        finally:
            call.wait(60)
        new_owner = routing_owner(db, tenant_id)
        print(f"routing: {victim.name} killed, {new_owner} runs the tenant, the call on "
              f"{other.name} reached agent {row and row['agent_id']}", flush=True)  # fmt: skip
        return None if row is None else row["answered_at"].timestamp() - killed
    finally:
        phone.stop()


async def event_latency(nats_url: str, rate: int, seconds: float) -> list[float]:
    """Publish ``rate`` events/s on node a; the time until node b's subscriber has each."""
    import nats

    from cloudcc.bus.nats import NatsBus

    stream = f"BENCH_{uuid.uuid4().hex[:8].upper()}"
    a = NatsBus(nats_url, "a", stream=stream)
    b = NatsBus(nats_url, "b", stream=stream)
    await a.start()
    await b.start()
    latencies: list[float] = []
    try:
        sub = b.subscribe("tenant-1")
        total = int(rate * seconds)

        async def consume() -> None:
            for _ in range(total):
                event = await sub.get()
                assert event is not None
                latencies.append((time.time() - event.data["sent"]) * 1000.0)

        consumer = asyncio.create_task(consume())
        start = time.monotonic()
        for i in range(total):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            a.publish("tenant-1", "bench.tick", {"i": i, "sent": time.time()})
        await asyncio.wait_for(consumer, 30)
    finally:
        await a.stop()
        await b.stop()
        nc = await nats.connect(nats_url)
        await nc.jetstream().delete_stream(stream)
        await nc.close()
    return latencies


def main() -> None:
    args = parse_args(__doc__ or "")
    from tests.cluster import edge as cl
    from tests.cluster.conftest import LOCAL_NATS, _reachable
    from tests.conftest import fresh_pg_database, pg_available

    report = Report()
    if not _reachable(*LOCAL_NATS):
        sys.exit("NATS is not running on 127.0.0.1:4222 (start-stop-daemon ... nats-server -js)")
    nats_url = "nats://127.0.0.1:4222"

    seconds = 3.0 if args.quick else 10.0
    lat = asyncio.run(event_latency(nats_url, 1000, seconds))
    print(f"events: {len(lat)} at 1000/s, p50 {percentile(lat, 50):.2f} ms, "
          f"p99 {percentile(lat, 99):.2f} ms, max {max(lat):.2f} ms", flush=True)  # fmt: skip
    report.add("cluster_event_p99_ms", round(percentile(lat, 99), 2), "ms", "<=", 50)

    if cl.kamailio_binary() is None or shutil.which("sipp") is None or not pg_available():
        report.print()
        sys.exit("kamailio, sipp and PostgreSQL are needed for the failover figures")
    load_calls = 9 if args.quick else 30
    talk_ms = 12_000 if args.quick else 45_000
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    stream = f"BENCH_{uuid.uuid4().hex[:8].upper()}"
    with fresh_pg_database("cloudcc_bench") as db:
        nodes = cl.start_cluster(work, db, nats_url, stream)
        edge = cl.Kamailio(work / "kamailio", nodes)
        load = None
        try:
            time.sleep(2)
            load_start = time.time()
            load = cl.start_callers(
                work / "load", edge.port, calls=load_calls, rate=10, talk_ms=talk_ms,
                timeout=talk_ms / 1000 + 60,
            )  # fmt: skip
            live = cl.wait_for(
                lambda: (
                    len([r for r in cl.contacts_now(db) if r["state"] != "ended"]) >= load_calls
                ),
                30,
            )
            rows = [r for r in cl.contacts_now(db) if r["created_at"].timestamp() >= load_start]
            per_node: dict[str, int] = {}
            for r in rows:
                per_node[r["node"]] = per_node.get(r["node"], 0) + 1
            print(f"load: {len(rows)} calls up ({live}), per node {per_node}", flush=True)
            victim = max(nodes, key=lambda n: per_node.get(n.name, 0))
            victim.kill()
            killed = time.monotonic()
            attempts = 0
            failover = None
            while time.monotonic() - killed < 30:
                attempts += 1
                r = cl.run_callers(work / f"probe-{attempts}", edge.port, talk_ms=300, timeout=15)
                if r.returncode == 0:
                    failover = time.monotonic() - killed
                    break
            print(f"failover: {attempts} probe calls, killed {victim.name}", flush=True)
            report.add("cluster_failover_s", round(failover or 30.0, 2), "s", "<=", 5)
            # The load ends; the survivors close the dead node's calls (recovery).
            assert load is not None
            load.wait(talk_ms / 1000 + 90)
            load_ids = {r["id"] for r in rows}

            def closed() -> list[dict]:
                rows = cl.contacts_now(db)
                return [r for r in rows if r["id"] in load_ids and r["state"] == "ended"]

            cl.wait_for(lambda: len(closed()) == len(load_ids), 30)
            done = closed()
            lost = len(load_ids) - len(done) + max(0, load_calls - len(load_ids))
            on_survivors = [r for r in done if r["node"] != victim.name]
            dropped = [r for r in on_survivors if r["end_cause"] != "customer_hangup"]
            failed = [r for r in done if r["node"] == victim.name]
            print(
                f"records: {len(done)}/{len(load_ids)} closed; dead node's: "
                f"{sorted({r['disposition'] for r in failed})}; survivors' end causes: "
                f"{sorted({r['end_cause'] for r in on_survivors})}",
                flush=True,
            )
            report.add("cluster_lost_cdrs", lost, "CDRs", "<=", 0)
            report.add("cluster_dropped_calls", len(dropped), "calls", "<=", 0)
            alive = [n for n in nodes if n is not victim]
            resume = routing_resume(work, db, alive, cl)
            report.add(
                "cluster_routing_resume_s", round(resume if resume is not None else 30.0, 2),
                "s", "<=", 5,
            )  # fmt: skip
        finally:
            if load is not None and load.poll() is None:
                os.killpg(load.pid, 9)
            edge.stop()
            for node in nodes:
                node.stop()
            shutil.rmtree(work, ignore_errors=True)
    print("not measured: cluster_scale_ratio", flush=True)
    report.print()


if __name__ == "__main__":
    main()
