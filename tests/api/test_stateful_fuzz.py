"""Stateful fuzzing with the tenant's **real ids**: no 5xx at all, no traceback in the log.

The schema-only fuzz (test_openapi_fuzz.py) invents ids, so it never reaches the engine with a
real agent, queue or contact: it could not find a ready-while-offline 500 or a queue that
breaks its tenant's routing. Here every path parameter is, most of the time, an id the tenant
really holds (learnt from its own listings and from what the run itself creates), and the
operations run in random order, so state-dependent refusals (log in twice, ready while
offline, force a signed-out agent, delete what is in use) are all reached.
"""

from __future__ import annotations

import random
import re
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

# The session's own sign-in and sign-out (fuzzing them only logs the fuzzer out), and the
# long-poll that waits up to 30 s by design.
EXCLUDED = {"login", "logout", "poll_events"}
PARAM = re.compile(r"\{([^}]+)\}")


def _resource(path: str, param: str) -> str:
    """The collection a path parameter names: ``/api/v1/agents/{agent_id}/login`` -> agents."""
    before = path.split("{" + param + "}")[0].rstrip("/")
    return before.rsplit("/", 1)[-1]


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return [i for i in body["items"] if isinstance(i, dict)]
    if isinstance(body, list):
        return [i for i in body if isinstance(i, dict)]
    return []


def _key(item: dict[str, Any]) -> str | None:
    for field in ("id", "name"):
        if isinstance(item.get(field), (str, int)):
            return str(item[field])
    return None


class Tenant:
    """The fuzzer's view of one tenant: a session and the ids it really holds."""

    def __init__(self, base: str, tenant: str, username: str, password: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.credentials = {"tenant": tenant, "username": username, "password": password}
        self.headers: dict[str, str] = {}
        self.ids: dict[str, set[str]] = {}
        self.protected: set[str] = set()
        self.failures: list[str] = []
        self.statuses: dict[int, int] = {}
        self.login()

    def login(self) -> None:
        r = self.client.post("/api/v1/auth/login", json=self.credentials)
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def learn(self, resource: str, items: list[dict[str, Any]]) -> None:
        for item in items:
            key = _key(item)
            if key is None:
                continue
            # Never fuzz the fuzzer's own user out of existence (or out of its password).
            if item.get("username") == self.credentials["username"]:
                self.protected.add(key)
                continue
            self.ids.setdefault(resource, set()).add(key)

    def discover(self, operations: list[Any]) -> None:
        for op in operations:
            if op.method.upper() != "GET" or PARAM.search(op.path):
                continue
            r = self.client.get(op.path, headers=self.headers)
            if r.status_code == 200:
                self.learn(op.path.rstrip("/").rsplit("/", 1)[-1], _items(r.json()))

    def send(self, op: Any, case: Any, rnd: random.Random) -> None:
        path_parameters = dict(case.path_parameters or {})
        for name in PARAM.findall(op.path):
            known = sorted(self.ids.get(_resource(op.path, name), ()))
            if known and rnd.random() < 0.9:
                path_parameters[name] = rnd.choice(known)
        path = op.path
        for name, value in path_parameters.items():
            path = path.replace("{" + name + "}", str(value))
        kwargs: dict[str, Any] = {"params": case.query or None}
        if case.body is not None and op.method.upper() in {"POST", "PUT", "PATCH"}:
            if isinstance(case.body, (dict, list)):
                kwargs["json"] = case.body
            else:
                # Non-JSON bodies (uploads) go as the schema's media type.
                kwargs["content"] = case.body if isinstance(case.body, bytes) else str(case.body)
                kwargs["headers"] = {"Content-Type": case.media_type or "application/octet-stream"}
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            r = self.client.request(op.method.upper(), path, headers=headers, **kwargs)
        except httpx.TransportError as e:
            self.failures.append(f"{op.method.upper()} {path} {kwargs!r}: {e!r}")
            self.client.close()
            self.client = httpx.Client(base_url=self.client.base_url, timeout=30)
            return
        if r.status_code == 401:
            self.login()
            return
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        if r.status_code >= 500:
            self.failures.append(
                f"{op.method.upper()} {path} {kwargs.get('json')!r} -> {r.status_code} {r.text[:300]}"
            )
            return
        if (
            r.status_code in (200, 201)
            and op.method.upper() == "POST"
            and not PARAM.search(op.path)
        ):
            try:
                body = r.json()
            except ValueError:
                return
            if isinstance(body, dict):
                self.learn(op.path.rstrip("/").rsplit("/", 1)[-1], [body])
        if r.status_code == 204 and op.method.upper() == "DELETE":
            for name, value in path_parameters.items():
                self.ids.get(_resource(op.path, name), set()).discard(str(value))


def _operations(base: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(base + "/api/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.definition.raw.get("operationId") not in EXCLUDED:
            operations.append(op)
    return operations


def _fuzz(tenant: Tenant, operations: list[Any], examples: int, steps: int) -> None:
    strategies = [op.as_strategy() for op in operations]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        # The node's state moves on between examples: replaying to shrink would not reproduce.
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        rnd = random.Random(data.draw(st.integers(0, 2**32 - 1)))
        for _ in range(steps):
            i = data.draw(st.integers(0, len(operations) - 1))
            tenant.send(operations[i], data.draw(strategies[i]), rnd)

    run()


def test_stateful_fuzz_with_real_ids_never_answers_5xx(live_node):
    demo = live_node.demo
    operations = _operations(live_node.base)
    admin = Tenant(live_node.base, "demo", demo["admin"]["username"], demo["admin"]["password"])
    admin.discover(operations)
    assert admin.ids.get("agents") and admin.ids.get("queues"), admin.ids

    # First an agent's own token (before the admin's run may change or delete that agent):
    # it reaches the engine through the agent's own id.
    agent = demo["agents"][0]
    me = Tenant(live_node.base, "demo", agent["web_username"], agent["web_password"])
    me.ids = {k: set(v) for k, v in admin.ids.items()}
    _fuzz(me, operations, examples=25, steps=20)
    _fuzz(admin, operations, examples=60, steps=25)

    admin.client.close()
    me.client.close()
    failures = admin.failures + me.failures
    print("statuses:", sorted(admin.statuses.items()), sorted(me.statuses.items()))
    assert not failures, "\n".join(failures[:40])
    # The run must have reached past validation, or it proves nothing.
    assert sum(n for s, n in admin.statuses.items() if s < 300) > 100, admin.statuses
    assert "Traceback" not in live_node.log()
