"""Call control across nodes (cluster/operations.py): a call held by node A is put on hold and
taken off it through node B's API; B answers with A's answer, errors included."""

from __future__ import annotations

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
