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
from typing import Any

import pytest

from tests.conftest import free_port

LOCAL_NATS = ("127.0.0.1", 4222)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class NatsServer:
    """A nats-server with JetStream started by a test (``./dev test`` installs the Debian
    package nats-server); stopped and started again on the same port and store."""

    def __init__(self, store: Path) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            raise RuntimeError("nats-server is missing: ./dev test installs it (nats-server)")
        self.binary, self.store, self.port = binary, store, free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's NATS (127.0.0.1:4222) if it runs, else a nats-server started here."""
    if _reachable(*LOCAL_NATS):
        yield "nats://127.0.0.1:4222"
        return
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


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
    from tests.conftest import fresh_pg_database, require_postgres

    require_postgres()
    with fresh_pg_database("cloudcc_cluster") as url:
        yield url


@pytest.fixture
def edge_cluster(tmp_path: Path, cluster_db: str, nats_url: str, stream_name: str) -> Iterator[Any]:
    """Three nodes (tests/cluster/edge.py) behind Kamailio: (nodes, edge)."""
    from tests.cluster.edge import Kamailio, kamailio_binary, start_cluster
    from tests.conftest import require_peer

    require_peer(kamailio_binary() is not None, "kamailio (Debian package kamailio)")
    nodes = start_cluster(tmp_path, cluster_db, nats_url, stream_name)
    edge = Kamailio(tmp_path / "kamailio", nodes)
    try:
        time.sleep(2)  # the first OPTIONS probes
        assert edge.proc.poll() is None, edge.log()
        yield nodes, edge
    finally:
        edge.stop()
        for node in nodes:
            node.stop()
