"""Impossible agent state changes answer 409 (or 422 for an unknown code) problems that say
what to do instead, and leave no traceback in the log."""

from __future__ import annotations

import logging

import pytest

from tests.agents.conftest import Desk

PHONE = "sip:agent@127.0.0.1:9"


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def _problem(r, status: int, *words: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    for word in words:
        assert word in body["detail"], body
    return body  # type: ignore[no-any-return]


async def test_each_impossible_change_says_what_to_do(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, aid = await desk.agent_headers(0)
    base = f"/agents/{aid}"
    # Signed out: logout, ready, not ready, forced busy/idle/rest are refused.
    _problem(await desk.call("POST", base + "/logout"), 409, "not signed in")
    for state in ("ready", "not_ready"):
        body = _problem(
            await desk.call("PUT", base + "/state", json={"state": state}), 409, "/login"
        )
        assert body["type"] == "urn:cloudcc:agent_state_conflict"
    for action in ("busy", "idle", "rest"):
        _problem(await desk.call("POST", base + "/force", json={"action": action}), 409, "/login")
    _problem(
        await desk.call("POST", base + "/force", json={"action": "sign_out"}),
        409,
        "not signed in",
    )
    # Signed in: a second login, ready while ready.
    r = await desk.call("POST", base + "/login", json={"device": PHONE})
    assert r.status_code == 200 and r.json()["state"] == "ready", r.text
    _problem(
        await desk.call("POST", base + "/login", json={"device": PHONE}),
        409,
        "already signed in",
        "/logout",
    )
    _problem(await desk.call("PUT", base + "/state", json={"state": "ready"}), 409, "already ready")
    # Unknown reason codes: 422 naming the codes that exist.
    body = _problem(
        await desk.call("PUT", base + "/state", json={"state": "not_ready", "reason": "nap"}),
        422,
        "'nap'",
        "training",
    )
    assert body["type"] == "urn:cloudcc:unknown_code"
    status = (await desk.call("GET", base + "/status")).json()
    assert status["state"] == "ready"  # nothing changed by the refusals
    # The same change done properly works.
    r = await desk.call("PUT", base + "/state", json={"state": "not_ready", "reason": "rest"})
    assert r.status_code == 200 and r.json()["reason"] == "rest", r.text
    r = await desk.call("POST", base + "/logout")
    assert r.status_code == 200 and r.json()["state"] == "offline", r.text
    _no_traceback(caplog)


async def test_login_not_ready_with_an_unknown_agent_state_is_refused_by_the_schema(
    desk: Desk,
) -> None:
    _, aid = await desk.agent_headers(0)
    r = await desk.call("PUT", f"/agents/{aid}/state", json={"state": "asleep"})
    assert r.status_code == 422
