"""Fixtures shared by the whole suite: databases (SQLite and PostgreSQL), a node, clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

# Tests whose figures (time limits, RSS slopes, latency ratios) a test running beside them
# would disturb, and the multi-node clusters that load the whole machine: ``./dev test`` runs
# the rest in parallel (pytest-xdist), then these one at a time (marker ``serial``).
SERIAL = (
    "tests/cluster/",
    "tests/memory/",
    "tests/test_abuse.py",
    "tests/test_https.py",
    "tests/api/test_admission.py",
    "tests/agents/test_client_sessions.py",
    "tests/media/test_engine.py",
    "tests/voice/test_recovery.py",
    "tests/voice/test_drain.py",
    "tests/voice/test_quotas.py",
    "tests/voice/test_resilience.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(config.rootpath).as_posix().startswith(SERIAL):
            item.add_marker(pytest.mark.serial)


PG_ADMIN_DSN = os.environ.get("CCTEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_reachable() -> bool:
    import asyncpg

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


_PG: bool | None = None


def pg_available() -> bool:
    global _PG
    if _PG is None:
        _PG = _pg_reachable()
    return _PG


def require_peer(present: bool, what: str) -> None:
    """A peer the tests drive is missing: the test fails (``./dev test`` installs and starts
    every one), it is never skipped."""
    if not present:
        pytest.fail(f"{what} is missing: ./dev test installs and starts it", pytrace=False)


def require_postgres() -> None:
    require_peer(pg_available(), f"PostgreSQL at {PG_ADMIN_DSN}")


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "cloudcc_test") -> Iterator[str]:
    """Create a PostgreSQL database, yield its async URL, drop it afterwards."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; its async URL."""
    require_postgres()
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on SQLite and on PostgreSQL (a fresh schema per test)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cloudcc.db'}"
        return
    base = request.getfixturevalue("pg_database")
    import asyncpg

    schema_db = f"t{uuid.uuid4().hex[:12]}"
    admin_base = PG_ADMIN_DSN.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{admin_base}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{schema_db}"'))
    try:
        yield base.rsplit("/", 1)[0] + f"/{schema_db}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{schema_db}" WITH (FORCE)'))


def make_settings(tmp_path: Path, database_url: str | None = None, **extra: Any) -> Any:
    from cloudcc.config import Settings

    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key",
        **extra,
    )


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Any]:
    """A prepared node (migrated, demo tenant seeded) on SQLite; no listeners."""
    from cloudcc.app import Node

    n = Node(make_settings(tmp_path))
    await n.prepare()
    try:
        yield n
    finally:
        await n.close()


@pytest.fixture
async def client(node: Any) -> AsyncIterator[Any]:
    import httpx

    transport = httpx.ASGITransport(app=node.app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cc.test") as c:
        yield c


def free_port(kind: str = "tcp") -> int:
    """A port free for TCP (and UDP with kind='both') on 127.0.0.1 right now."""
    import socket

    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if kind == "tcp":
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


class LiveNode:
    """A real ``cloudcc serve`` process on free ports."""

    def __init__(
        self,
        data_dir: Path,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        *,
        http_port: int | None = None,
        sip_port: int | None = None,
    ) -> None:
        import subprocess
        import sys

        self.data_dir = data_dir
        self.http_port = http_port or free_port()
        self.sip_port = sip_port or free_port("both")
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.log_path = data_dir.parent / f"node-{self.http_port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloudcc.cli",
                "serve",
                "--data-dir",
                str(data_dir),
                "--http-port",
                str(self.http_port),
                "--sip-port",
                str(self.sip_port),
                "--host",
                "127.0.0.1",
                *(extra_args or []),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # No drain by default: a test stopping a node mid-call means "shut down now".
            env={
                **os.environ,
                "CLOUDCC_SECRET_KEY": "live-test-key",
                "CLOUDCC_RECOVERY__DRAIN_SECONDS": "0",
                **(env or {}),
            },
        )

    def wait_ready(self, timeout: float = 120) -> None:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node not ready in {timeout}s: {self.log()}")

    @property
    def demo(self) -> dict[str, Any]:
        import json

        return json.loads((self.data_dir / "demo-credentials.json").read_text())

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, timeout: float = 20) -> int:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


@pytest.fixture
def live_node(tmp_path: Path) -> Iterator[LiveNode]:
    n = LiveNode(tmp_path / "data")
    try:
        n.wait_ready()
        yield n
    finally:
        n.stop()
