"""A cluster on this machine for tests and bench/cluster.py: cloudcc nodes on 127.0.0.11-13
sharing one PostgreSQL database and one NATS, behind Kamailio on 127.0.0.10
(deploy/kamailio/kamailio.cfg), and SIPp callers that dial through it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import LiveNode, free_port

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO_CFG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
EDGE_CALLER = ROOT / "tests" / "data" / "cluster" / "edge_caller.xml.in"
EDGE_HOST = "127.0.0.10"
NODE_HOSTS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
SIPP = shutil.which("sipp") or "sipp"


def kamailio_binary() -> str | None:
    return shutil.which("kamailio") or next(
        (p for p in ("/usr/sbin/kamailio",) if Path(p).exists()), None
    )


class ClusterNode(LiveNode):
    """``cloudcc serve`` on its own loopback address, joined to the others."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        host: str,
        db: str,
        nats_url: str,
        stream: str,
        demo: bool,
        env: dict[str, str] | None = None,
        **ports: int,
    ) -> None:
        args = ["--host", host, "--node-id", name, "--database-url", db, "--nats-url", nats_url]
        if not demo:
            args.append("--no-demo")
        self._joined = (workdir, name, host, db, nats_url, stream, env)
        super().__init__(
            workdir / name,
            args,
            **ports,
            env={
                "CLOUDCC_CLUSTER__STREAM": stream,
                "CLOUDCC_AI__ASR_ENABLED": "false",
                "CLOUDCC_SIP__EXEMPT_SOURCES": f'["{EDGE_HOST}"]',
                "CLOUDCC_RECOVERY__CHECKPOINT_SECONDS": "1",
                "CLOUDCC_RECOVERY__DEAD_AFTER_SECONDS": "4",
                **(env or {}),
            },
        )
        self.name = name
        self.host = host
        self.base = f"http://{host}:{self.http_port}"

    def restarted(self) -> ClusterNode:
        """The same node started again (same name, addresses, ports and data dir) once
        this process has ended; not yet ready."""
        assert self.proc.poll() is not None, "stop the node first"
        workdir, name, host, db, nats_url, stream, env = self._joined
        return ClusterNode(workdir, name, host, db, nats_url, stream, False, env,
                           http_port=self.http_port, sip_port=self.sip_port)  # fmt: skip

    def kill(self) -> None:
        """kill -9."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Kamailio:
    def __init__(
        self, workdir: Path, nodes: list[ClusterNode], defines: dict[str, str] | None = None
    ) -> None:
        binary = kamailio_binary()
        assert binary is not None
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port("both")
        listing = workdir / "cloudcc-nodes.list"
        listing.write_text("".join(f"1 sip:{n.host}:{n.sip_port} 0 0\n" for n in nodes))
        self.log_path = workdir / "kamailio.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary, "-DD", "-E", "-f", str(KAMAILIO_CFG), "-m", "64", "-M", "8",
                "-A", f"EDGE_LISTEN=udp:{EDGE_HOST}:{self.port}",
                "-A", f'DISPATCHER_LIST="{listing}"',
                "-A", "PIKE_REQS=2000",
                *(f"-A{k}={v}" for k, v in (defines or {}).items()),
            ],
            cwd=workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def edge_caller_args(
    workdir: Path,
    edge_port: int,
    *,
    calls: int = 1,
    rate: float = 1.0,
    talk_ms: int = 3000,
    digit: str = "2",
    timeout: float = 60,
    number: str = "4000",
    limit: int | None = None,
    target: str | None = None,
) -> list[str]:
    """SIPp customer(s) calling ``number`` through Kamailio (route set kept: rrs), or
    straight to ``target`` (host:port of a node)."""
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = workdir / f"edge-caller-{talk_ms}.xml"
    scenario.write_text(
        EDGE_CALLER.read_text()
        .replace("{digit}", digit)
        .replace("{dtmf_after_ms}", "1500")
        .replace("{talk_ms}", str(talk_ms))
        .replace("{caller}", "+15550")
    )
    return [
        "timeout", str(timeout), SIPP, "-sf", str(scenario), "-s", number,
        target or f"{EDGE_HOST}:{edge_port}", "-i", "127.0.0.1", "-p", str(free_port("both")),
        "-mi", "127.0.0.1", "-mp", str(free_port("both")), "-m", str(calls),
        "-r", str(rate), "-l", str(limit or calls), "-nostdin", "-trace_err",
    ]  # fmt: skip


def run_callers(workdir: Path, edge_port: int, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        edge_caller_args(workdir, edge_port, **kw),
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )


def start_callers(workdir: Path, edge_port: int, **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        edge_caller_args(workdir, edge_port, **kw),
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def contacts(db_url: str) -> list[dict[str, Any]]:
    """Every contact row (node, state, disposition) straight from PostgreSQL."""
    import asyncpg

    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT id, node, state, disposition, end_cause, created_at FROM contacts ORDER BY created_at"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


def contacts_now(db_url: str) -> list[dict[str, Any]]:
    return asyncio.run(contacts(db_url))


def start_cluster(
    workdir: Path,
    db: str,
    nats_url: str,
    stream: str,
    count: int = 3,
    ready_timeout: float = 90,
    **kw: Any,
) -> list[ClusterNode]:
    """Nodes n1..nN: the first seeds the demo tenant, the others join it."""
    first = ClusterNode(workdir, "n1", NODE_HOSTS[0], db, nats_url, stream, demo=True, **kw)
    nodes = [first]
    try:
        first.wait_ready(ready_timeout)
        for i in range(1, count):
            nodes.append(
                ClusterNode(workdir, f"n{i + 1}", NODE_HOSTS[i], db, nats_url, stream, False, **kw)
            )
        for node in nodes[1:]:
            node.wait_ready(ready_timeout)
            # The demo's credentials are the first node's (one database).
            (node.data_dir / "demo-credentials.json").write_bytes(
                (first.data_dir / "demo-credentials.json").read_bytes()
            )
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def wait_for(predicate: Any, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def env_flag(name: str) -> bool:
    return os.environ.get(name) == "1"
