"""Alembic environment: runs on the connection handed over by ``Database.migrate``.

For the command line (``alembic -c src/cloudcc/store/alembic.ini ...``) it opens its own
connection from ``CLOUDCC_DATABASE_URL`` (a synchronous URL is derived from the async one).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from cloudcc.store.tables import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("CLOUDCC_DATABASE_URL", "sqlite+aiosqlite:///cloudcc-data/cloudcc.db")
    url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
