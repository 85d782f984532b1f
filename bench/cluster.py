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

- cluster_scale_ratio (``--only scale``): the concurrent recorded calls three nodes take
  against one node, the same setup otherwise (behind Kamailio, on PostgreSQL and NATS, one
  SIPp UAS as every agent's phone, SIPp callers through the edge to a queue). Capacity is
  the largest step of a ladder of concurrent calls (each step: N callers started within
  4 s, talking 8 s at once, every call answered by an agent and recorded) that passes:
  lost calls < 2 % (a call is lost unless its record says answered and customer_hangup
  and its recording is complete and within 1 s of the record's talk time) and setup p99
  (the call's record created to answered by an agent: queue, offer, the agent's phone
  ringing 0.3 s) < 3 s. The two ladders run interleaved (one step of each in turn, both
  setups up), so that the machine's other load weighs on both alike; each step prints the
  nodes' CPU (% of one core) and the machine's: on 2 cores shared by SIPp, Kamailio,
  PostgreSQL and NATS, three nodes cannot take three times one node once one node uses a
  core. ``--quick``: a ladder of 4, 8 and 12 calls, a smoke run (both pass every step; its
  ratio says nothing). The full ladder is 20, 70, 110, 160, 220 and 300 calls: on a quiet
  machine both setups passed 110 (one node at 74 % of a core), so the steps above it find
  where each gives out. Time: starting both setups (four nodes, 300 agents each) and the
  ladder take about 5-7 minutes on a quiet machine, longer at load: over the 5 minutes of
  bench/_bench.py, said here rather than cut.

Run from the repo root in the venv: ``python bench/cluster.py [--quick] [--only WHAT]``
(WHAT: events, failover or scale; all by default). Needs kamailio, sipp, nats-server (the
local one on 4222) and PostgreSQL (CCTEST_PG).
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

from _bench import ROOT, Report, cpu_seconds, parse_args, percentile

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


# --------------------------------------------------------------------------- scale ratio

SCALE_TALK_MS = 6000  # + 2 s of key press and pause in the caller's scenario: 8 s of talk
SCALE_RAMP_S = 4.0  # each step's callers start within this (all talk at once for ~4 s)
SCALE_MAX_LOSS = 0.02
SCALE_MAX_SETUP_P99 = 3.0


class Setup:
    """Nodes behind their own Kamailio on their own database, with agents on one SIPp UAS."""

    def __init__(self, name: str, work: Path, db: str, nats_url: str, count: int,
                 agents: int, cl: Any) -> None:  # fmt: skip
        self.name, self.db, self.cl = name, db, cl
        self.work = work
        self.stream = f"BENCH_{uuid.uuid4().hex[:8].upper()}"
        work.mkdir(parents=True, exist_ok=True)
        self.nodes = cl.start_cluster(
            work, db, nats_url, self.stream, count=count, ready_timeout=300
        )
        self.edge = cl.Kamailio(work / "kamailio", self.nodes)
        self.phone: Any = None
        try:
            self._prepare(agents)
        except BaseException:
            self.stop()
            raise
        self.steps: list[tuple[int, bool, str]] = []

    def _prepare(self, agents: int) -> None:
        import subprocess

        from tests.cluster.chaos import create_agents
        from tests.conftest import free_port
        from tests.voice.conftest import Api
        from tests.voice.peers import VOICE_DATA

        work = self.work
        self.phone_port = free_port("both")
        (work / "phone").mkdir(parents=True, exist_ok=True)
        self.phone = subprocess.Popen(
            ["timeout", "-k", "2", "900", "sipp", "-sf", str(VOICE_DATA / "agent_uas.xml"),
             "-i", "127.0.0.1", "-p", str(self.phone_port), "-mi", "127.0.0.1",
             "-mp", str(free_port("both")), "-nostdin", "-trace_err"],
            cwd=work / "phone", stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        api = Api(self.nodes[0])
        r = httpx_patch(
            api.base + f"/tenants/{self.nodes[0].demo['tenant_id']}",
            {"max_seats": 2000, "max_concurrent_calls": 5000},
            api.operator(),
        )
        assert r.status_code == 200, r.text
        api.provision("4100")
        api.post("/numbers", {"number": "4100", "target_type": "queue", "target": "support"})
        create_agents(api, agents, self.phone_port)

    def step(self, calls: int) -> bool:
        """``calls`` callers at once; whether the step passed (printed with why)."""

        from tests.cluster.chaos import call_records, recording_rows

        cl = self.cl
        started = time.time()
        cpu0 = {n.name: cpu_seconds(n.proc.pid) for n in self.nodes}
        machine0 = _cpu_totals()
        t0 = time.monotonic()
        result = cl.run_callers(
            self.work / f"step-{calls}", self.edge.port, number="4100", calls=calls,
            rate=max(2.0, calls / SCALE_RAMP_S), talk_ms=SCALE_TALK_MS, limit=calls,
            timeout=SCALE_RAMP_S + SCALE_TALK_MS / 1000 + 60,
        )  # fmt: skip
        wall = time.monotonic() - t0
        cpu = {n.name: (cpu_seconds(n.proc.pid) - cpu0[n.name]) / wall * 100 for n in self.nodes}
        machine = _busy(machine0, _cpu_totals())

        def settled() -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
            """The step's records and recordings once all are closed (written in batches)."""
            rows = [r for r in call_records(self.db) if r["created_at"].timestamp() >= started]
            recs = {r["contact_id"]: r for r in recording_rows(self.db)}
            if all(r["state"] == "ended" for r in rows) and all(
                recs[r["id"]]["state"] != "recording" for r in rows if r["id"] in recs
            ):
                return rows, recs
            return None

        found = cl.wait_for(settled, 30, 0.5)
        rows, recs = found or settled_anyway(self.db, started)
        good = 0
        setups = []
        why_lost: dict[str, int] = {}
        for r in rows:
            if r["answered_at"] is not None:
                setups.append((r["answered_at"] - r["created_at"]).total_seconds())
            rec = recs.get(r["id"])
            reason = (
                "not ended" if r["state"] != "ended"
                else f"{r['disposition']}/{r['end_cause']}"
                if (r["disposition"], r["end_cause"]) != ("answered", "customer_hangup")
                else "no recording" if rec is None
                else f"recording {rec['state']}" if rec["state"] != "complete"
                else "recording short"
                if rec["duration_seconds"] < r["talk_seconds"] - 1.0
                else None
            )  # fmt: skip
            if reason is None:
                good += 1
            else:
                why_lost[reason] = why_lost.get(reason, 0) + 1
        lost = calls - good
        if len(rows) < calls:
            why_lost["no record"] = calls - len(rows)
        p99 = percentile(setups, 99) if setups else float("inf")
        ok = lost <= SCALE_MAX_LOSS * calls and p99 < SCALE_MAX_SETUP_P99 and result.returncode == 0
        why = (
            f"{self.name}: {calls} calls: {'pass' if ok else 'FAIL'}; lost {lost} {why_lost}, "
            f"setup p50 {percentile(setups, 50):.2f} s p99 {p99:.2f} s, "
            f"sipp exit {result.returncode}; "
            f"node CPU "
            + ", ".join(f"{k} {v:.0f}%" for k, v in cpu.items())
            + f"; machine {machine * 100:.0f}% of 2 cores"
        )
        print(why, flush=True)
        self.steps.append((calls, ok, why))
        return ok

    def capacity(self) -> int:
        passed = [calls for calls, ok, _ in self.steps if ok]
        return max(passed) if passed else 0

    def stop(self) -> None:
        from tests.voice.peers import kill_group

        if self.phone is not None:
            kill_group(self.phone)
        self.edge.stop()
        for node in self.nodes:
            node.stop()


def settled_anyway(db: str, started: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from tests.cluster.chaos import call_records, recording_rows

    rows = [r for r in call_records(db) if r["created_at"].timestamp() >= started]
    return rows, {r["contact_id"]: r for r in recording_rows(db)}


def httpx_patch(url: str, body: Any, headers: dict[str, str]) -> Any:
    import httpx

    return httpx.patch(url, json=body, headers=headers, timeout=30)


def _cpu_totals() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v)


def _busy(a: tuple[int, int], b: tuple[int, int]) -> float:
    return 1 - (b[0] - a[0]) / max(1, b[1] - a[1])


def scale_ratio(args: Any, report: Report, nats_url: str, cl: Any) -> None:
    """Both ladders, interleaved; cluster_scale_ratio = 3-node capacity / 1-node capacity."""
    from tests.conftest import fresh_pg_database

    ladder = [4, 8, 12] if args.quick else [20, 70, 110, 160, 220, 300]
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    began = time.monotonic()
    with fresh_pg_database("cloudcc_bench1") as db1, fresh_pg_database("cloudcc_bench3") as db3:
        setups: list[Setup] = []
        try:
            setups.append(Setup("1 node", work / "one", db1, nats_url, 1, ladder[-1], cl))
            setups.append(Setup("3 nodes", work / "three", db3, nats_url, 3, ladder[-1], cl))
            print(f"scale: both setups up in {time.monotonic() - began:.0f} s", flush=True)
            time.sleep(2)  # the edges' first OPTIONS probes
            going = list(setups)
            for calls in ladder:
                for setup in list(going):
                    if not setup.step(calls):
                        going.remove(setup)
                if not going:
                    break
        finally:
            for setup in setups:
                setup.stop()
            shutil.rmtree(work, ignore_errors=True)
    one, three = (s.capacity() for s in setups)
    top = "" if any(not ok for _, ok, _ in setups[1].steps) else " (the ladder's top: at least)"
    print(f"scale: capacity 1 node {one} calls, 3 nodes {three} calls{top}; "
          f"{time.monotonic() - began:.0f} s", flush=True)  # fmt: skip
    report.add("cluster_capacity_1_node", one, "calls")
    report.add("cluster_capacity_3_nodes", three, "calls")
    report.add("cluster_scale_ratio", round(three / one, 2) if one else 0.0, "x", ">=", 2.5)


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


def failover(args: Any, report: Report, nats_url: str, cl: Any) -> None:
    """Kill -9 of one node of three under calls: failover, lost CDRs, dropped calls, then
    the routing resuming on the survivors."""
    from tests.conftest import fresh_pg_database

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


def main() -> None:
    args = parse_args(
        __doc__ or "",
        [("--only", {"choices": ["events", "failover", "scale"], "help": "one part only"})],
    )
    from tests.cluster import edge as cl
    from tests.cluster.conftest import LOCAL_NATS, _reachable
    from tests.conftest import pg_available

    report = Report()
    if not _reachable(*LOCAL_NATS):
        sys.exit("NATS is not running on 127.0.0.1:4222 (start-stop-daemon ... nats-server -js)")
    nats_url = "nats://127.0.0.1:4222"

    if args.only in (None, "events"):
        seconds = 3.0 if args.quick else 10.0
        lat = asyncio.run(event_latency(nats_url, 1000, seconds))
        print(f"events: {len(lat)} at 1000/s, p50 {percentile(lat, 50):.2f} ms, "
              f"p99 {percentile(lat, 99):.2f} ms, max {max(lat):.2f} ms", flush=True)  # fmt: skip
        report.add("cluster_event_p99_ms", round(percentile(lat, 99), 2), "ms", "<=", 50)

    if args.only == "events":
        report.print()
        return
    if cl.kamailio_binary() is None or shutil.which("sipp") is None or not pg_available():
        report.print()
        sys.exit("kamailio, sipp and PostgreSQL are needed for the failover and scale figures")
    if args.only in (None, "failover"):
        failover(args, report, nats_url, cl)
    if args.only in (None, "scale"):
        scale_ratio(args, report, nats_url, cl)
    report.print()


if __name__ == "__main__":
    main()
