"""Fixtures of the cluster tests: a NATS server with JetStream (the local one, or one the test
starts), a fresh JetStream stream name per test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

LOCAL_NATS = ("127.0.0.1", 4222)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's NATS (127.0.0.1:4222) if it runs, else a nats-server started here."""
    if _reachable(*LOCAL_NATS):
        yield "nats://127.0.0.1:4222"
        return
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if binary is None:
        pytest.skip("nats-server is not installed (Debian package nats-server)")
    port = free_port()
    store = tmp_path_factory.mktemp("nats")
    proc = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def stream_name(nats_url: str) -> Iterator[str]:
    """A JetStream stream of this test only, deleted afterwards."""
    import asyncio

    import nats

    name = f"TEST_{uuid.uuid4().hex[:10].upper()}"
    yield name

    async def delete() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().delete_stream(name)
        except Exception:
            pass
        await nc.close()

    asyncio.run(delete())


@pytest.fixture
def cluster_db() -> Iterator[str]:
    """A fresh PostgreSQL database for the nodes of one test; its async URL."""
    from tests.conftest import fresh_pg_database, pg_available

    if not pg_available():
        pytest.skip("PostgreSQL is not reachable (set CLOUDCC_REQUIRE_POSTGRES=1 to fail instead)")
    with fresh_pg_database("cloudcc_cluster") as url:
        yield url
