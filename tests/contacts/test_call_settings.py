"""Settings the API stores that a call reads on its way: the tenant's time zone and business
hours (open, closed, holiday, as a flow's check-hours step decides), and which trunks a call
out goes through and how (outbound, transport, priority). The voice side runs in-process."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cloudcc.ivr.hours import HoursStatus, evaluate_hours
from tests.agents.conftest import Desk


def _at(tz: str, *parts: int) -> float:
    return datetime(*parts, tzinfo=ZoneInfo(tz)).timestamp()  # type: ignore[misc]


async def _status(node: Any, tid: str, name: str, instant: float) -> HoursStatus:
    """Open, closed or holiday, as a call's check-hours step decides it for this tenant."""
    voice = node.voice_node.voice
    schedule = (await voice.schedules(tid))[name]
    return evaluate_hours(schedule, instant, await voice.tenant_timezone(tid)).status


async def test_the_tenants_time_zone_decides_when_a_flows_own_hours_are_open(desk: Desk) -> None:
    node, client, admin = desk.node, desk.client, desk.admin
    tid = (await client.get("/api/v1/tenant", headers=admin)).json()["id"]
    document = {
        "format": "cloudcc.flow/1",
        "id": "local-hours",
        "name": "local-hours",
        "start": "hours",
        "schedules": {"local": {"weekly": {"mon": ["09:00-17:00"]}}},  # no zone of its own
        "nodes": [
            {"id": "hours", "type": "check_hours", "schedule": "local",
             "outputs": {"open": "open", "closed": "closed"}},
            {"id": "open", "type": "hangup"},
            {"id": "closed", "type": "hangup"},
        ],
    }  # fmt: skip
    r = await client.post("/api/v1/flows", json={"document": document}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/flows/{r.json()['id']}/publish", json={}, headers=admin)
    assert r.status_code == 200, r.text
    schedule = (await node.ctx.flows.published_flow(tid, "local-hours")).schedules["local"]
    voice_side = node.voice_node.voice
    monday_02_utc = _at("UTC", 2026, 11, 30, 2, 0)  # 10:00 in Shanghai, Sunday 21:00 in New York
    for zone, status in (
        ("Asia/Shanghai", HoursStatus.OPEN),
        ("America/New_York", HoursStatus.CLOSED),
    ):
        r = await client.patch("/api/v1/tenant", json={"timezone": zone}, headers=admin)
        assert r.status_code == 200, r.text
        decided = evaluate_hours(schedule, monday_02_utc, await voice_side.tenant_timezone(tid))
        assert decided.status is status, zone


async def test_business_hours_zone_weekly_hours_holidays_and_name_decide_the_call(
    desk: Desk,
) -> None:
    node, client, admin = desk.node, desk.client, desk.admin
    tid = (await client.get("/api/v1/tenant", headers=admin)).json()["id"]
    r = await client.post(
        "/api/v1/business-hours",
        json={"name": "desk-hours", "timezone": "Asia/Shanghai",
              "weekly": {"mon": [["09:00", "17:00"]]}},
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    item = f"/api/v1/business-hours/{r.json()['id']}"
    monday_02_utc = _at("UTC", 2026, 11, 30, 2, 0)  # 10:00 Monday in Shanghai

    async def change(body: dict[str, Any], name: str = "desk-hours") -> HoursStatus:
        r = await client.patch(item, json=body, headers=admin)
        assert r.status_code == 200, r.text
        return await _status(node, tid, name, monday_02_utc)

    assert await _status(node, tid, "desk-hours", monday_02_utc) is HoursStatus.OPEN
    # 21:00 on Sunday in New York: closed...
    assert await change({"timezone": "America/New_York"}) is HoursStatus.CLOSED
    # ...until Sunday evenings are open hours...
    assert await change({"weekly": {"sun": [["20:00", "22:00"]]}}) is HoursStatus.OPEN
    # ...unless that Sunday is a holiday.
    holiday = {"holidays": [{"date": "2026-11-29", "name": "Closed for a move"}]}
    assert await change(holiday) is HoursStatus.HOLIDAY
    # A flow finds the hours by their name.
    assert await change({"name": "front-desk"}, "front-desk") is HoursStatus.HOLIDAY
    assert "desk-hours" not in await node.voice_node.voice.schedules(tid)


async def test_calls_out_take_the_outbound_trunks_by_priority_over_their_transport(
    desk: Desk,
) -> None:
    node, client, admin = desk.node, desk.client, desk.admin
    tid = (await client.get("/api/v1/tenant", headers=admin)).json()["id"]
    existing = (await client.get("/api/v1/trunks", headers=admin)).json()["items"]
    for trunk in existing:  # the demo's own trunk
        r = await client.patch(
            f"/api/v1/trunks/{trunk['id']}", json={"outbound": False}, headers=admin
        )
        assert r.status_code == 200, r.text
    for body in (
        {"name": "second", "host": "192.0.2.2", "port": 5070, "priority": 20},
        {"name": "first", "host": "192.0.2.1", "transport": "tcp", "priority": 10},
        {"name": "in-only", "host": "192.0.2.3", "priority": 1, "outbound": False},
    ):
        r = await client.post("/api/v1/trunks", json=body, headers=admin)
        assert r.status_code == 201, r.text
    routes = await node.voice_node.voice.routes(tid, "15551234")
    assert [(r.trunk.name, r.uri) for r in routes] == [
        ("first", "sip:15551234@192.0.2.1:5060;transport=tcp"),
        ("second", "sip:15551234@192.0.2.2:5070"),
    ]
