"""A restart on a database already at head skips Alembic; any other database is migrated."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from cloudcc.store.db import Database, alembic_config, head_revision


def test_the_head_read_from_the_files_is_alembics():
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_an_older_database_is_still_brought_to_head(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0003_trunks"))
        await db.migrate()
        async with db.engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            tables = await conn.run_sync(
                lambda c: c.dialect.get_table_names(c)  # a table of the head revision
            )
        assert version == [(head_revision(),)]
        assert "sip_dialogs" in tables
        await db.migrate()  # at head: nothing to do, nothing broken
    finally:
        await db.close()
