"""The database handle: an async SQLAlchemy engine for SQLite (default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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
        """Bring the schema to the newest Alembic revision."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


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
