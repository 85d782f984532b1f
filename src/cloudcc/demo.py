"""The demo tenant created on first start, so a new node can take a call at once."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cloudcc.api.context import ApiContext
from cloudcc.config import Settings
from cloudcc.ivr import flows as ivr_flows
from cloudcc.store.tables import Tenant
from cloudcc.tenancy.model import system_actor
from cloudcc.tenancy.tenants import PLATFORM_SLUG

DEMO_SLUG = "demo"
DEMO_NUMBER = "4000"
DEMO_TRUNK = "local"
log = logging.getLogger("cloudcc.demo")

# the demo hotline is open around the clock, so a first call always reaches the menu
DEMO_WEEKLY = {
    day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}

AGENTS = [("Alice Agent", "1001"), ("Bob Agent", "1002"), ("Carol Agent", "1003")]


async def ensure_demo(ctx: ApiContext, settings: Settings) -> dict[str, Any] | None:
    """Create the platform and demo tenants once; return (and keep) their credentials.

    None when the demo tenant exists but this data dir has no credentials for it (a node
    replacing another on a shared database): the node starts, the passwords stay where the
    node that created them wrote them."""
    path = settings.data_dir / "demo-credentials.json"
    async with ctx.db.session() as s:
        existing = await s.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
    if existing and path.exists():
        creds: dict[str, Any] = json.loads(path.read_text())
        creds["file"] = str(path)
        return creds
    if existing:
        log.warning(
            "the demo tenant exists but %s is not here (another node or data dir created it): "
            "its passwords are not shown",
            path,
        )
        return None

    platform_password = _password()
    await ctx.tenants.create(
        None,
        slug=PLATFORM_SLUG,
        name="Platform operator",
        admin_username="root",
        admin_password=platform_password,
    )
    admin_password = _password()
    tenant = await ctx.tenants.create(
        None,
        slug=DEMO_SLUG,
        name="Demo Company",
        admin_username="admin",
        admin_password=admin_password,
        timezone="UTC",
    )
    actor = system_actor(tenant["id"])
    await ctx.queues.create(
        actor,
        {
            "name": "support",
            "description": "Customer support",
            "required_skills": {"support": 1},
            "strategy": "longest_idle",
        },
    )
    await ctx.queues.create(
        actor,
        {
            "name": "sales",
            "description": "Sales",
            "required_skills": {"sales": 1},
            "strategy": "most_skilled",
        },
    )
    agents = []
    for i, (name, extension) in enumerate(AGENTS):
        sip_password = _password(12)
        await ctx.agents.create(
            actor,
            {
                "name": name,
                "extension": extension,
                "sip_password": sip_password,
                "skills": {"support": 5 + i, "sales": 3 + 2 * i},
                "password": sip_password,
            },
        )
        agents.append(
            {
                "name": name,
                "extension": extension,
                "sip_password": sip_password,
                "web_username": extension,
                "web_password": sip_password,
            }
        )
    await ctx.hours.create(
        actor,
        {"name": "office", "timezone": "UTC", "weekly": DEMO_WEEKLY, "holidays": []},
    )
    flow = await ctx.flows.create(actor, demo_flow_document())
    await ctx.flows.publish(actor, flow["id"], None)
    # Calls in from this machine (a softphone beside the node, SIPp) come as the demo's own
    # trunk; it carries no calls out. A carrier is another trunk (docs/voice.md).
    await ctx.trunks.create(
        actor,
        {
            "name": DEMO_TRUNK,
            "host": "127.0.0.1",
            "allowed_ips": ["127.0.0.0/8", "::1/128"],
            "outbound": False,
            "max_channels": 10_000,
        },
    )
    await ctx.number_pool.provision(actor, DEMO_NUMBER, tenant["id"])
    await ctx.numbers.create(
        actor,
        {
            "number": DEMO_NUMBER,
            "name": "Demo hotline",
            "target_type": "flow",
            "target": flow["name"],
        },
    )
    base = f"http://{settings.host}:{settings.http_port}"
    creds = {
        "tenant": DEMO_SLUG,
        "tenant_id": tenant["id"],
        "sip_domain": tenant["sip_domain"],
        "api": base + "/api/v1",
        "docs": base + "/api/docs",
        "admin": {"username": "admin", "password": admin_password},
        "platform": {"tenant": PLATFORM_SLUG, "username": "root", "password": platform_password},
        "agents": agents,
        "number": DEMO_NUMBER,
        "sip": f"sip:{DEMO_NUMBER}@{settings.sip.host}:{settings.sip.port}",
    }
    path.write_text(json.dumps(creds, indent=2))
    path.chmod(0o600)
    creds["file"] = str(path)
    return creds


def demo_flow_document() -> dict[str, Any]:
    """The demo IVR, checking the tenant's own business hours ("office", open around the
    clock in the demo so that a first call always reaches the menu); its closed-hours
    prompt names those hours."""
    doc: dict[str, Any] = json.loads((Path(ivr_flows.__file__).parent / "demo.json").read_text())
    doc["schedules"] = {}
    closed: set[str] = set()
    for node in doc["nodes"]:
        if node["type"] == "check_hours":
            node["schedule"] = "office"
            closed.add(node["outputs"]["closed"])
    for node in doc["nodes"]:
        if node["id"] in closed and node["type"] == "play":
            node["prompt"] = {"text": f"We are closed now. {describe_hours(DEMO_WEEKLY)}"}
    return doc


_DAYS = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
         "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}  # fmt: skip


def describe_hours(weekly: dict[str, list[list[str]]]) -> str:
    """The opening hours as a caller hears them: "We are open every day, around the clock."."""
    spans = {day: weekly.get(day, []) for day in _DAYS}
    if all(v == [["00:00", "24:00"]] for v in spans.values()):
        return "We are open every day, around the clock."
    parts = [
        f"{_DAYS[day]} " + " and ".join(f"{a} to {b}" for a, b in ranges)
        for day, ranges in spans.items()
        if ranges
    ]
    return "Our hours are " + ", ".join(parts) + "." if parts else "We are not open this week."


def _password(length: int = 16) -> str:
    """A random password that starts with a letter or a digit (never '-': a command line
    would take it for an option)."""
    while True:
        password = secrets.token_urlsafe(length)[:length]
        if password[0].isalnum():
            return password
