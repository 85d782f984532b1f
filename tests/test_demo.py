"""The demo tenant tells the truth: its closed-hours prompt names its own hours, and its
passwords can be passed on a command line (none starts with '-')."""

from __future__ import annotations

from typing import Any

from cloudcc.demo import _password, describe_hours
from tests.api.helpers import demo_admin


async def test_the_closed_hours_prompt_names_the_demo_hotlines_hours(
    client: Any, node: Any
) -> None:
    admin = await demo_admin(client, node)
    numbers = (await client.get("/api/v1/numbers?number=4000", headers=admin)).json()["items"]
    flows = (await client.get("/api/v1/flows", headers=admin)).json()["items"]
    demo = next(f for f in flows if f["name"] == numbers[0]["target"])
    version = (
        await client.get(
            f"/api/v1/flows/{demo['id']}/versions/{demo['published_version']}", headers=admin
        )
    ).json()
    nodes = {n["id"]: n for n in version["document"]["nodes"]}
    check = next(n for n in nodes.values() if n["type"] == "check_hours")
    closed = nodes[check["outputs"]["closed"]]["prompt"]["text"]
    listed = (await client.get("/api/v1/business-hours", headers=admin)).json()["items"]
    hours = next(h for h in listed if h["name"] == check["schedule"])
    assert closed == "We are closed now. " + describe_hours(hours["weekly"])
    assert closed == "We are closed now. We are open every day, around the clock."


def test_describe_hours_reads_a_week() -> None:
    weekly = {"mon": [["09:00", "18:00"]], "sat": [["10:00", "12:00"], ["13:00", "14:00"]]}
    assert describe_hours(weekly) == (
        "Our hours are Monday 09:00 to 18:00, Saturday 10:00 to 12:00 and 13:00 to 14:00."
    )


def test_demo_passwords_never_start_with_a_dash(node: Any) -> None:
    samples = [_password() for _ in range(5000)] + [_password(12) for _ in range(5000)]
    assert not [p for p in samples if not p[0].isalnum()]
    assert {len(p) for p in samples} == {16, 12}
    demo = node.demo
    shown = [demo["admin"]["password"], demo["platform"]["password"]]
    shown += [a["sip_password"] for a in demo["agents"]]
    assert all(p[0].isalnum() for p in shown)
