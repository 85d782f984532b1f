"""The store on both engines: SQLite (embedded default) and the local PostgreSQL server."""

from __future__ import annotations

from datetime import UTC

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from cloudcc.app import Node
from cloudcc.store.db import Database
from cloudcc.store.tables import Agent, Base, Tenant
from tests.api.helpers import demo_admin, new_tenant
from tests.conftest import make_settings


async def test_migrations_build_exactly_the_models(database_url):
    db = Database(database_url)
    try:
        await db.migrate()
        await db.migrate()  # a second run is a no-op

        def diff(conn):
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)

        async with db.engine.connect() as conn:
            changes = await conn.run_sync(diff)
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert changes == [], changes
        assert {"tenants", "users", "roles", "agents", "queues", "audit_log"} <= tables
    finally:
        await db.close()


async def test_the_admin_api_works_the_same_on_each_engine(database_url, tmp_path):
    node = Node(make_settings(tmp_path, database_url))
    await node.prepare()
    try:
        transport = httpx.ASGITransport(app=node.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            admin = await demo_admin(c, node)
            r = await c.post(
                "/api/v1/agents",
                json={
                    "name": "Émile Zola",
                    "extension": "3001",
                    "sip_password": "zola-secret",
                    "skills": {"french": 10, "support": 2},
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
            assert r.json()["created_at"].endswith(("Z", "+00:00"))
            dup = await c.post(
                "/api/v1/agents",
                json={"name": "Dup", "extension": "3001", "sip_password": "zola-secret"},
                headers=admin,
            )
            assert dup.status_code == 409
            found = (await c.get("/api/v1/agents?q=%C3%A9mile", headers=admin)).json()
            assert [a["name"] for a in found["items"]] == ["Émile Zola"]
            # LIKE wildcards in a search are literal text.
            assert (await c.get("/api/v1/agents?q=%25", headers=admin)).json()["total"] == 0
            other = await new_tenant(c, node, "other")
            assert (await c.get("/api/v1/agents", headers=other)).json()["total"] == 0
            log = (await c.get("/api/v1/audit-log?resource_type=agent", headers=admin)).json()
            assert log["total"] == 4  # three demo agents and Émile
    finally:
        await node.close()

    db = Database(database_url)
    try:
        async with db.session() as s:
            agent = await s.scalar(select(Agent).where(Agent.extension == "3001"))
            assert agent is not None and agent.skills == {"french": 10, "support": 2}
            assert agent.created_at.tzinfo is UTC
            assert await s.scalar(select(Tenant.slug).where(Tenant.id == agent.tenant_id)) == "demo"
    finally:
        await db.close()


@pytest.mark.postgres
async def test_postgres_is_really_used_when_configured(pg_database):
    db = Database(pg_database)
    try:
        assert db.url.get_backend_name() == "postgresql"
        await db.migrate()
        async with db.engine.connect() as conn:
            version = (await conn.exec_driver_sql("select version()")).scalar()
        assert "PostgreSQL" in str(version)
    finally:
        await db.close()
