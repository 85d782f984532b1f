"""Call control across nodes (cluster/operations.py): a call held by node A is put on hold and
taken off it through node B's API; B answers with A's answer, errors included. Node B lists
A's live call and force-releases it; a node that does not answer is named in B's live list."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.edge import start_callers, start_cluster, wait_for
from tests.cluster.routing import contact_rows
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.postgres]

_DONE = ("wrapup", "ended")  # the agent may still be in after-call work


def test_hold_on_node_b_for_a_call_on_node_a(
    tmp_path: Path, cluster_db: str, nats_url: str, stream_name: str
) -> None:
    a, b = start_cluster(tmp_path, cluster_db, nats_url, stream_name, count=2)
    phone = SippAgentPhone(tmp_path / "phone").start()
    call: Any = None
    try:
        api = Api(a)
        api.provision("4100")
        api.post("/numbers", {"number": "4100", "target_type": "queue", "target": "support"})
        api.login("1001", phone.uri)

        def on_b(path: str) -> httpx.Response:
            return httpx.post(b.base + "/api/v1" + path, headers=api.headers, timeout=70)

        call = start_callers(
            tmp_path / "caller", 0, number="4100", talk_ms=8000, timeout=40,
            target=f"{a.host}:{a.sip_port}",
        )  # fmt: skip
        row = wait_for(
            lambda: next((r for r in contact_rows(cluster_db) if r["answered_at"]), None), 15
        )
        assert row and row["node"] == a.name, contact_rows(cluster_db)
        contact_id = row["id"]
        time.sleep(0.5)
        r = on_b(f"/contacts/{contact_id}/hold")
        assert r.status_code == 200 and r.json()["held"] is True, r.text
        time.sleep(1.5)
        r = on_b(f"/contacts/{contact_id}/unhold")
        assert r.status_code == 200 and r.json()["held"] is False, r.text
        # A's refusal comes back through B as A gives it (no consultation to cancel).
        direct = httpx.post(a.base + f"/api/v1/contacts/{contact_id}/cancel-consult",
                            headers=api.headers, timeout=30)  # fmt: skip
        forwarded = on_b(f"/contacts/{contact_id}/cancel-consult")
        assert direct.status_code >= 400, direct.text
        assert (forwarded.status_code, forwarded.json()["detail"]) == (
            direct.status_code,
            direct.json()["detail"],
        )
        # A contact live nowhere is a 404 on B, as on one node.
        assert on_b("/contacts/" + "0" * 32 + "/hold").status_code == 404
        assert call.wait(40) == 0
        cdr = wait_for(
            lambda: next(
                (c for c in api.contacts() if c["id"] == contact_id and c["state"] in _DONE),
                None,
            ),
            20,
        )
        assert cdr and cdr["hold_seconds"] >= 1.0, cdr
    finally:
        if call is not None:
            kill_group(call)
        phone.stop()
        for node in (a, b):
            node.stop()


def test_node_b_lists_and_force_releases_a_call_on_node_a(
    tmp_path: Path, cluster_db: str, nats_url: str, stream_name: str
) -> None:
    a, b = start_cluster(tmp_path, cluster_db, nats_url, stream_name, count=2)
    phone = SippAgentPhone(tmp_path / "phone").start()
    call: Any = None
    try:
        api = Api(a)
        api.provision("4100")
        api.post("/numbers", {"number": "4100", "target_type": "queue", "target": "support"})
        api.login("1001", phone.uri)
        agent_id = api.agents["1001"]["id"]

        def on_b(method: str, path: str, **kw: Any) -> httpx.Response:
            url = b.base + "/api/v1" + path
            return httpx.request(method, url, headers=api.headers, timeout=70, **kw)

        assert on_b("GET", "/contacts/live").json() == []
        call = start_callers(
            tmp_path / "caller", 0, number="4100", talk_ms=30000, timeout=60,
            target=f"{a.host}:{a.sip_port}",
        )  # fmt: skip
        row = wait_for(
            lambda: next((r for r in contact_rows(cluster_db) if r["answered_at"]), None), 15
        )
        assert row and row["node"] == a.name, contact_rows(cluster_db)
        contact_id = row["id"]
        # B lists A's call, as A does (once: A does not count it twice).
        r = on_b("GET", "/contacts/live")
        assert r.status_code == 200 and "Cloudcc-Missing-Nodes" not in r.headers, r.text
        listed = [c for c in r.json() if c["contact_id"] == contact_id]
        assert len(listed) == 1 and listed[0]["agent_id"] == agent_id, r.json()
        assert [c["contact_id"] for c in api.live()] == [contact_id]
        # A force release through B ends the call on A, audited once.
        time.sleep(0.5)
        r = on_b("POST", f"/contacts/{contact_id}/force-release")
        assert r.status_code == 200, r.text
        call.wait(15)  # the caller is hung up on well before its 30 s of talk
        ended = wait_for(
            lambda: next(
                (c for c in contact_rows(cluster_db) if c["id"] == contact_id
                 and c["state"] in _DONE),
                None,
            ),
            15,
        )  # fmt: skip
        assert ended, contact_rows(cluster_db)
        audit = on_b("GET", "/audit-log", params={"resource_type": "contact",
                                                  "resource_id": contact_id}).json()  # fmt: skip
        actions = [e["action"] for e in audit["items"]]
        assert actions == ["force_release"], audit
        # A contact live nowhere is a 404 on B for supervision too.
        assert on_b("POST", "/contacts/" + "0" * 32 + "/force-release").status_code == 404
    finally:
        if call is not None:
            kill_group(call)
        phone.stop()
        for node in (a, b):
            node.stop()


def test_a_node_that_does_not_answer_is_named_in_the_live_list(
    tmp_path: Path, cluster_db: str, nats_url: str, stream_name: str
) -> None:
    a, b = start_cluster(tmp_path, cluster_db, nats_url, stream_name, count=2)
    phone = SippAgentPhone(tmp_path / "phone").start()
    call: Any = None
    stopped = False
    try:
        api = Api(a)
        api.provision("4100")
        api.post("/numbers", {"number": "4100", "target_type": "queue", "target": "support"})
        api.login("1001", phone.uri)
        call = start_callers(
            tmp_path / "caller", 0, number="4100", talk_ms=30000, timeout=60,
            target=f"{a.host}:{a.sip_port}",
        )  # fmt: skip
        row = wait_for(
            lambda: next((r for r in contact_rows(cluster_db) if r["answered_at"]), None), 15
        )
        assert row and row["node"] == a.name, contact_rows(cluster_db)
        os.kill(a.proc.pid, signal.SIGSTOP)  # A is alive to NATS, but answers nothing
        stopped = True
        started = time.monotonic()
        r = httpx.get(b.base + "/api/v1/contacts/live", headers=api.headers, timeout=30)
        waited = time.monotonic() - started
        assert r.status_code == 200 and r.json() == [], r.text
        assert r.headers["Cloudcc-Missing-Nodes"] == a.name, r.headers
        assert 1.5 < waited < 5, waited  # the 2 s timeout, not the operations' 65 s
    finally:
        if stopped:
            os.kill(a.proc.pid, signal.SIGCONT)
        if call is not None:
            kill_group(call)
        phone.stop()
        for node in (a, b):
            node.stop()
