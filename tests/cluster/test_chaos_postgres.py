"""Chaos: PostgreSQL restarts under calls. Three nodes behind Kamailio on a PostgreSQL server of
the test's own (never the machine's shared one) and NATS; agents' phones answer SIPp callers
through the edge; the server is stopped (every session ended, as a service restart does) for
longer than ``recovery.dead_after_seconds`` and started again.

What must hold: calls in progress go on and end as their callers meant; the API answers 503
with Retry-After while the database is away (never a 500); what the nodes wrote meanwhile (the
records of calls that ended, their recordings' metadata) reaches the database once it is
back: 0 lost CDRs, 0 unreadable recordings; no node closes another live node's calls as if it
had died; the routing lease is taken again, by one node at a time."""

from __future__ import annotations

import hashlib
import threading
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.chaos import (
    call_records,
    create_agents,
    lease_overlaps,
    recording_rows,
    routing_events,
)
from tests.cluster.edge import Kamailio, kamailio_binary, start_callers, start_cluster, wait_for
from tests.cluster.postgres import PrivatePostgres
from tests.cluster.routing import contact_rows, routing_owner
from tests.conftest import require_peer
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group

pytestmark = [pytest.mark.peer, pytest.mark.slow]

OUTAGE_S = 8.0  # longer than the nodes' dead_after (4 s, tests/cluster/edge.py)
LONG_CALLS = 3  # still talking when the database is back
SHORT_CALLS = 3  # hang up while it is away
# API reads and writes probed on every node while the database is away.
PROBES = (
    ("GET", "/agents", None),
    ("GET", "/contacts?limit=5", None),
    ("GET", "/queues", None),
    ("POST", "/queues", {"name": "chaos-outage"}),
)


def probe_api(nodes: list[Any], headers: dict[str, str], stop: threading.Event,
              seen: list[tuple[str, str, int, str | None, float]]) -> None:  # fmt: skip
    """Call the API on every node until ``stop``: (node, request, status, Retry-After,
    seconds). One connection per request: a kept-alive connection that the server closes
    when idle (uvicorn, 5 s) races the next request, whatever the database does."""
    headers = {**headers, "Connection": "close"}
    with httpx.Client(headers=headers, timeout=10) as client:
        while not stop.is_set():
            for node in nodes:
                for method, path, body in PROBES:
                    t0 = time.monotonic()
                    try:
                        r = client.request(method, node.base + "/api/v1" + path, json=body)
                    except httpx.HTTPError as exc:
                        seen.append((node.name, f"{method} {path}", -1, repr(exc), 0.0))
                        continue
                    seen.append((node.name, f"{method} {path}", r.status_code,
                                 r.headers.get("retry-after"), time.monotonic() - t0))  # fmt: skip
            time.sleep(0.3)


def test_postgres_restart_under_calls_loses_nothing(
    tmp_path: Path, nats_url: str, stream_name: str
) -> None:
    require_peer(kamailio_binary() is not None, "kamailio (Debian package kamailio)")
    pg = PrivatePostgres()
    nodes: list[Any] = []
    edge = None
    phone = None
    callers: list[Any] = []
    try:
        pg.start()
        db = pg.create_database("cloudcc")
        nodes = start_cluster(tmp_path, db, nats_url, stream_name)
        edge = Kamailio(tmp_path / "kamailio", nodes)
        phone = SippAgentPhone(tmp_path / "phones", calls=50).start()
        api = Api(nodes[0])
        tenant_id = nodes[0].demo["tenant_id"]
        api.provision("4100")
        api.post("/numbers", {"number": "4100", "target_type": "queue", "target": "support"})
        create_agents(api, LONG_CALLS + SHORT_CALLS + 1, phone.port)
        time.sleep(1.5)  # the first OPTIONS probes of the edge
        assert edge.proc.poll() is None, edge.log()

        started = time.time()
        callers.append(
            start_callers(
                tmp_path / "long",
                edge.port,
                number="4100",
                calls=LONG_CALLS,
                rate=5,
                talk_ms=30_000,
                timeout=90,
            )
        )
        callers.append(start_callers(tmp_path / "short", edge.port, number="4100",
                                     calls=SHORT_CALLS, rate=5, talk_ms=4_000, timeout=90))  # fmt: skip
        total = LONG_CALLS + SHORT_CALLS

        def talking() -> list[dict[str, Any]]:
            return [r for r in contact_rows(db)
                    if r["created_at"].timestamp() >= started and r["answered_at"]]  # fmt: skip

        assert wait_for(lambda: len(talking()) == total, 30), contact_rows(db)
        owner_before = routing_owner(db, tenant_id)
        assert owner_before is not None

        # The database goes away: every session is ended, the routing leases with them.
        stop_probes = threading.Event()
        seen: list[tuple[str, str, int, str | None, float]] = []
        prober = threading.Thread(
            target=probe_api, args=(nodes, api.headers, stop_probes, seen), daemon=True
        )
        pg.stop("fast")
        down_at = time.time()
        prober.start()
        time.sleep(OUTAGE_S)
        stop_probes.set()
        prober.join(30)
        pg.start()
        up_at = time.time()

        # The API said "come back later", never "broken".
        during = [s for s in seen if s[2] != 200]
        assert not [s for s in seen if s[2] >= 500 and s[2] != 503], seen
        assert not [s for s in seen if s[2] < 0], seen
        assert during, "no request met the outage"
        assert all(s[2] == 503 and s[3] for s in during), during
        assert {s[0] for s in during} == {n.name for n in nodes}, during
        assert max(s[4] for s in seen) < 5, seen  # answered at once, not after timeouts

        for proc in callers:
            proc.wait(90)
        rows = wait_for(
            lambda: (
                rs
                if len(rs := [r for r in contact_rows(db) if r["created_at"].timestamp() >= started
                              and r["state"] == "ended"]) == total
                else None
            ),
            30,
        )  # fmt: skip
        assert rows, contact_rows(db)
        # Every call went on through the outage and ended as its caller meant: answered, the
        # customer hung up; none was closed as if its node had died.
        full = {r["id"]: r for r in call_records(db)}
        for row in rows:
            record = full[row["id"]]
            assert record["disposition"] == "answered", record
            assert record["end_cause"] == "customer_hangup", record
            assert record["ended_at"] is not None and record["talk_seconds"] >= 3, record
        short = [full[r["id"]] for r in rows if full[r["id"]]["ended_at"].timestamp() < up_at]
        assert len(short) >= SHORT_CALLS - 1, "the short calls did not end during the outage"
        assert all(r["ended_at"].timestamp() > down_at for r in short)

        # 0 unreadable recordings: each call's recording complete, its file whole.
        recordings = recording_rows(db)
        by_contact = {r["contact_id"]: r for r in recordings}
        for row in rows:
            rec = by_contact.get(row["id"])
            assert rec is not None, (row, recordings)
            assert rec["state"] == "complete", rec
            owner = next(n for n in nodes if n.name == row["node"])
            path = owner.data_dir / "recordings" / rec["path"]
            data = path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == rec["sha256"], rec
            with wave.open(str(path), "rb") as w:
                seconds = w.getnframes() / w.getframerate()
            assert abs(seconds - rec["duration_seconds"]) < 0.5, (seconds, rec)
            assert seconds >= 3, rec

        # The lease is held again, and never by two nodes at once.
        assert wait_for(lambda: routing_owner(db, tenant_id), 20)
        events = routing_events([n.data_dir / "logs" / "cloudcc.log" for n in nodes], tenant_id)
        assert lease_overlaps(events) == [], events

        # Routing works again: a new call through the edge reaches an agent.
        seen_ids = {r["id"] for r in contact_rows(db)}
        after = start_callers(tmp_path / "after", edge.port, number="4100", talk_ms=2000,
                              timeout=60)  # fmt: skip
        callers.append(after)
        new = wait_for(
            lambda: [r for r in contact_rows(db) if r["id"] not in seen_ids and r["answered_at"]],
            30,
        )
        assert new, contact_rows(db)
        after.wait(60)
    finally:
        for proc in callers:
            kill_group(proc)
        if phone is not None:
            phone.stop()
        if edge is not None:
            edge.stop()
        for node in nodes:
            node.stop()
        pg.destroy()
