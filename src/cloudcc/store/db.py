"""The database handle: an async SQLAlchemy engine for SQLite (default) or PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Database:
    """One engine and session factory per node."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # One writer at a time is SQLite's nature; WAL lets readers go on meanwhile.
            # Connections are kept (no overflow): each new one is a thread and four PRAGMAs.
            kwargs["connect_args"] = {"timeout": 30}
            kwargs.update(pool_size=20, max_overflow=0, pool_timeout=60)
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query now."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision.

        A restart on a database already at head skips Alembic (a second of imports on a
        loaded machine): one ``SELECT`` of ``alembic_version`` tells."""
        async with self.engine.begin() as conn:
            if await conn.run_sync(_at_head):
                return
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(None|\"[^\"]*\"|'[^']*')", re.M)


@cache
def head_revision() -> str | None:
    """The one head of the migration files, read from their ``revision`` and
    ``down_revision`` lines without loading Alembic; ``None`` when the files do not tell
    plainly (several heads, a merge, a computed value): Alembic decides then."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = {m[1]: m[2] for m in _REVISION.finditer(path.read_text())}
        if "revision" not in found or "down_revision" not in found:
            return None
        revisions.add(found["revision"].strip("\"'"))
        if found["down_revision"] != "None":
            parents.add(found["down_revision"].strip("\"'"))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _at_head(connection: Connection) -> bool:
    head = head_revision()
    if head is None or not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return list(versions) == [head]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
    # SQLite's own lower() folds ASCII only; searches must find "Émile" by "émile" as
    # PostgreSQL does.
    dbapi_conn.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


#: What the database layer raises (asyncpg lets a refused connection out as an OSError).
DATABASE_ERRORS: tuple[type[Exception], ...] = (exc.SQLAlchemyError, OSError)

_UNAVAILABLE = frozenset(
    {  # asyncpg's, by name: the driver is optional
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "ObjectNotInPrerequisiteStateError",
    }
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached now (down, restarting, its pool
    exhausted, SQLite locked), as opposed to a statement being wrong: the first is a 503 with
    Retry-After for the API's clients, the second a bug."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if not any(isinstance(e, exc.SQLAlchemyError) or _raised_by_driver(e) for e in chain):
        return False  # not from the database at all
    for e in chain:
        if isinstance(e, exc.TimeoutError | ConnectionError | TimeoutError):
            return True
        if isinstance(e, exc.DBAPIError) and e.connection_invalidated:
            return True
        if type(e).__name__ in _UNAVAILABLE:
            return True
        if isinstance(e, OSError) and e.errno is not None:
            return True  # the socket to the database server failed
        message = str(e).lower()
        if isinstance(e, exc.OperationalError) and (
            "database is locked" in message or "unable to open database" in message
        ):
            return True
    return False


_DRIVERS = ("sqlalchemy", "asyncpg", "aiosqlite", "psycopg")


def _raised_by_driver(error: BaseException) -> bool:
    """Whether the database layer raised ``error`` (asyncpg lets a refused connection out as
    a bare ConnectionRefusedError)."""
    if type(error).__module__.startswith(_DRIVERS):
        return True
    tb = error.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVERS):
            return True
        tb = tb.tb_next
    return False
