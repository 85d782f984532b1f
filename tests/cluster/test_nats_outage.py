"""Chaos: NATS stops for 10 s under calls (a nats-server of the test's own, not the machine's):
every call leaves a closed record, and the event stream of the other node gets every call's
``cdr.written`` once NATS is back (the publishing nodes queued them)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import NatsServer
from tests.cluster.edge import start_callers, start_cluster, wait_for
from tests.cluster.routing import contact_rows
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.postgres]

CALLS_PER_NODE = 6


def test_nats_down_for_10_s_under_calls_loses_no_record(tmp_path: Path, cluster_db: str) -> None:
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    nodes: list[Any] = []
    phones = [SippAgentPhone(tmp_path / f"phone-{i}", calls=3 * CALLS_PER_NODE).start()
              for i in range(2)]  # fmt: skip
    callers: list[Any] = []
    try:
        nodes = start_cluster(tmp_path, cluster_db, nats.url, "CHAOS", count=2)
        a, b = nodes
        api = Api(a)
        api.provision("4100")
        api.post("/numbers", {"number": "4100", "target_type": "queue", "target": "support"})
        for ext, phone in zip(("1001", "1002"), phones, strict=True):
            api.login(ext, phone.uri)
        events_b = httpx.Client(base_url=b.base + "/api/v1", headers=api.headers, timeout=40)
        since = events_b.get("/events", params={"wait": 0}).json()["next"]
        started = time.time()
        for node in nodes:
            callers.append(
                start_callers(
                    tmp_path / f"load-{node.name}",
                    0,
                    number="4100",
                    calls=CALLS_PER_NODE,
                    rate=1,
                    limit=CALLS_PER_NODE,
                    talk_ms=3000,
                    timeout=120,
                    target=f"{node.host}:{node.sip_port}",
                )
            )
        time.sleep(2.5)
        nats.stop()
        time.sleep(10)
        nats.start()
        for proc in callers:
            proc.wait(120)
        ids = {r["id"] for r in contact_rows(cluster_db) if r["created_at"].timestamp() >= started}
        assert len(ids) == 2 * CALLS_PER_NODE, contact_rows(cluster_db)

        def closed() -> set[str]:
            return {
                r["id"]
                for r in contact_rows(cluster_db)
                if r["id"] in ids and r["state"] in ("ended", "wrapup")
            }

        assert wait_for(lambda: closed() == ids, 60), ids - closed()
        # Every call's record reached node B's event stream, those of node A's calls too.
        written: set[str] = set()
        deadline = time.monotonic() + 60
        while written < ids and time.monotonic() < deadline:
            page = events_b.get("/events", params={"since": since, "wait": 5}).json()
            written |= {
                e["data"]["contact_id"] for e in page["events"] if e["type"] == "cdr.written"
            }
            since = page["next"]
        assert written >= ids, ids - written
        events_b.close()
    finally:
        for proc in callers:
            kill_group(proc)
        for phone in phones:
            phone.stop()
        for node in nodes:
            node.stop()
        nats.stop()
