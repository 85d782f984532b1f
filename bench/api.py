"""Admin API throughput: authenticated ``GET /api/v1/agents?limit=50`` on one worker.

Starts a node (``cloudcc serve``, SQLite, 50+ agents) pinned to CPU 0 and drives it with wrk
(a C load generator, in its own process) pinned to CPU 1. Prints requests/s and latency p99,
and the node's CPU time per request (user + system, from /proc): on a shared machine the
requests/s follow the CPU share the node gets, the CPU time per request much less so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench import Report, cpu_seconds, free_port, parse_args


def start_node(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLOUDCC_LIMITS__TENANT_RPS": "10000000",
        "CLOUDCC_LIMITS__TENANT_BURST": "10000000",
        "CLOUDCC_LIMITS__MAX_IN_FLIGHT": "100000",
        "CLOUDCC_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloudcc.cli",
            "serve",
            "--data-dir",
            str(data),
            "--http-port",
            str(port),
            "--sip-port",
            str(free_port()),
            "--host",
            "127.0.0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data.parent / "node.log", "wb"),  # noqa: SIM115
    )
    os.sched_setaffinity(proc.pid, {0})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("node did not start: " + (data.parent / "node.log").read_text()[-2000:])


def wrk(url: str, token: str, seconds: int, connections: int) -> tuple[float, float, int, int]:
    """(requests/s, p99 ms, non-2xx, requests) from one wrk run."""
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert total, out
    return rps, float(p99.group(1)) * scale, int(bad.group(1)) if bad else 0, int(total.group(1))


def main() -> None:
    args = parse_args(__doc__ or "")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk; ./dev test installs it)")
    seconds = 5 if args.quick else 20
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        node = start_node(data, port)
        try:
            base = f"http://127.0.0.1:{port}"
            creds = json.loads((data / "demo-credentials.json").read_text())
            token = httpx.post(
                base + "/api/v1/auth/login",
                json={
                    "tenant": "demo",
                    "username": "admin",
                    "password": creds["admin"]["password"],
                },
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            root = httpx.post(
                base + "/api/v1/auth/login",
                json={
                    "tenant": "platform",
                    "username": "root",
                    "password": creds["platform"]["password"],
                },
            ).json()["access_token"]
            httpx.patch(
                base + f"/api/v1/tenants/{creds['tenant_id']}",
                json={"max_seats": 500},
                headers={"Authorization": f"Bearer {root}"},
            ).raise_for_status()
            for i in range(60):
                httpx.post(
                    base + "/api/v1/agents",
                    json={
                        "name": f"Bench {i}",
                        "extension": f"5{i:03d}",
                        "sip_password": "bench-pass",
                        "skills": {"support": 1 + i % 10, "sales": 1 + (i * 3) % 10},
                    },
                    headers=headers,
                ).raise_for_status()
            url = base + "/api/v1/agents?limit=50"
            page = httpx.get(url, headers=headers).json()
            assert len(page["items"]) == 50, page
            wrk(url, token, 2, 32)  # warm-up
            results = []
            cpu_per_request = []
            for _ in range(rounds):
                cpu = cpu_seconds(node.pid)
                rps, p99, bad, total = wrk(url, token, seconds, 32)
                cpu_per_request.append((cpu_seconds(node.pid) - cpu) / max(total, 1) * 1e6)
                results.append((rps, p99, bad))
        finally:
            node.terminate()
            node.wait(20)
    results.sort()
    rps, p99, _ = results[len(results) // 2]
    print(f"rounds (rps, p99 ms, non-2xx): {results}")
    print(f"node CPU per request, each round: {[round(c) for c in cpu_per_request]} us")
    report = Report()
    report.add("api_agents_list_rps", rps, "requests/s", ">=", 1500)
    report.add("api_agents_list_p99", p99, "ms")
    report.add("api_agents_list_cpu_per_request", statistics.median(cpu_per_request), "us")
    report.add("api_non_2xx", sum(r[2] for r in results), "responses", "<=", 0)
    report.print()


if __name__ == "__main__":
    main()
