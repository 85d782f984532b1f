"""One node killed with SIGKILL under 20 calls, then restarted (issue 20): how soon every phone
left in a dead call is released, how soon a new call is answered, what was lost.

Run from the repo root: ``python bench/recovery.py`` (about a minute and a half) or
``--quick`` (10 calls). ``--calls`` changes the load.

What runs (all on 127.0.0.1, each bounded by ``timeout``):

* a node (``tests.conftest.LiveNode``: ``cloudcc serve``, fresh data dir, speech recognition
  on so that it has child processes), ``--calls + 5`` agents with skill ``support`` logged in
  on one SIPp UAS (tests/data/voice/bench_agent.xml.in: rings 0.3 s, answers, streams a tone,
  logs each INVITE, ACK and BYE with its own clock), and a number 4500 straight to the queue;
* one SIPp UAC with ``--calls`` customers (tests/data/voice/caller.xml.in: talk until our BYE,
  for up to 10 minutes); once all are talking and recorded for 3 s, the node is killed
  (SIGKILL) and started again on the same data dir and SIP port;
* from the restart, a second SIPp UAC places a new call every 0.5 s (40 in all, 3 s of talk):
  those that come while the node starts fail (no listener, or 503 Starting Up), as a
  carrier's would before it tries again.

Figures, each from the restart (the new process being launched):

* ``recovery_bye_s``: the last of the 2 × ``--calls`` parties (customers and agents' phones)
  to receive its BYE: the agents' phone logs each BYE; the customers' SIPp ends once every
  call got one.
* ``recovery_first_answer_s``: the first new call answered by an agent (its ACK at the phone).
* ``recovery_lost_cdrs``: calls of the killed node without a CDR ended ``node_failure`` with
  talk time > 0 and a recording ``recovered`` with audio, plus new calls without a CDR.
* ``recovery_orphans``: processes of the killed node still alive 5 s after the kill.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from _bench import ROOT, Report, parse_args

sys.path.insert(0, ROOT)

VOICE_DATA = Path(ROOT) / "tests" / "data" / "voice"
NEW_CALLS = 40  # two a second from the restart, until one is answered


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.add(pid)
    return out


class Admin:
    def __init__(self, base: str, creds: dict[str, Any]) -> None:
        self.base = base + "/api/v1"
        self.client = httpx.Client(timeout=60)
        r = self.client.post(
            self.base + "/auth/login",
            json={"tenant": "demo", "username": "admin", "password": creds["admin"]["password"]},
        )
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(self.base + path, headers=self.headers, params=params)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: Any) -> Any:
        r = self.client.post(self.base + path, json=body, headers=self.headers)
        if r.status_code >= 300:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None


def provision(node: Any, admin: Admin, number: str) -> None:
    creds = node.demo
    r = httpx.post(
        admin.base + "/auth/login",
        json={"tenant": "platform", "username": "root", "password": creds["platform"]["password"]},
    )
    root = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = httpx.post(
        admin.base + "/number-pool",
        json={"number": number, "tenant_id": creds["tenant_id"]},
        headers=root,
    )
    r.raise_for_status()
    admin.post("/numbers", {"number": number, "target_type": "queue", "target": "support"})


def prepare_agents(admin: Admin, count: int, phone_port: int) -> None:
    def create(i: int) -> str:
        ext = f"{5000 + i}"
        agent = admin.post(
            "/agents",
            {"name": f"Bench {ext}", "extension": ext, "sip_password": f"pw-{ext}-bench",
             "skills": {"support": 5}},
        )  # fmt: skip
        return str(agent["id"])

    def login(i: int, agent_id: str) -> None:
        for attempt in range(50):  # the ACD learns of a new agent in a background task
            try:
                admin.post(
                    f"/agents/{agent_id}/login",
                    {"device": f"sip:agent{5000 + i}@127.0.0.1:{phone_port}", "ready": True},
                )
                return
            except RuntimeError as exc:
                if "unknown to routing" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(create, range(count)))
        list(pool.map(login, range(count), ids))


def sipp(args: list[str], work: Path, log: str, limit: float) -> subprocess.Popen[bytes]:
    out = open(work / log, "wb")  # noqa: SIM115 - the child holds it
    return subprocess.Popen(
        ["timeout", "-k", "5", str(int(limit)), "sipp", *args, "-nostdin", "-trace_err"],
        cwd=work,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def log_times(work: Path, prefix: str, kind: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for path in work.glob(f"{prefix}_*_logs.log"):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == kind:
                with contextlib.suppress(ValueError):
                    out.append((parts[1], float(parts[2]) + float(parts[3]) / 1e6))
    return out


def caller_scenario(work: Path, name: str, caller: str, talk_ms: int) -> Path:
    text = (VOICE_DATA / "caller.xml.in").read_text()
    for key, value in {"digit": "1", "dtmf_after_ms": "500", "talk_ms": str(talk_ms),
                       "caller": caller}.items():  # fmt: skip
        text = text.replace("{" + key + "}", value)
    path = work / f"{name}.xml"
    path.write_text(text)
    return path


def main() -> None:
    args = parse_args(
        "One node killed under load and restarted: BYEs, first answer, lost CDRs, orphans",
        [
            ("--calls", {"type": int, "default": None, "help": "calls at the kill (default 20)"}),
            ("--keep", {"action": "store_true", "help": "keep the work dir (logs)"}),
        ],
    )
    calls = args.calls or (10 if args.quick else 20)
    from cloudcc.media.g711 import alaw_encode
    from cloudcc.media.testing import sine
    from tests.conftest import LiveNode, free_port

    work = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    print(f"work dir {work}; {calls} calls at the kill")
    config = work / "node.toml"
    config.write_text(
        '[sip]\nexempt_sources = ["127.0.0.1"]\nmax_cps = 1000.0\n'
        "[limits]\ntenant_rps = 5000.0\ntenant_burst = 5000\n"
    )
    audio = work / "tone.al"
    audio.write_bytes(alaw_encode(sine(1500, 1.0, -12.0)))
    phone = (VOICE_DATA / "bench_agent.xml.in").read_text()
    (work / "agent.xml").write_text(
        phone.replace("{ring_ms}", "300").replace("{audio}", str(audio))
    )
    node = LiveNode(work / "data", extra_args=["--config", str(config)])
    restarted = None
    procs: list[subprocess.Popen[bytes]] = []
    report = Report()
    try:
        node.wait_ready()
        admin = Admin(node.base, node.demo)
        provision(node, admin, "4500")
        phone_port = free_port("both")
        qid = admin.get("/queues", name="support")["items"][0]["id"]
        httpx.patch(
            f"{admin.base}/queues/{qid}", json={"wrapup_seconds": 0}, headers=admin.headers
        ).raise_for_status()
        prepare_agents(admin, calls + 5, phone_port)
        phones = sipp(
            ["-sf", str(work / "agent.xml"), "-i", "127.0.0.1", "-p", str(phone_port),
             "-mi", "127.0.0.1", "-mp", str(free_port("both")), "-trace_logs"],
            work, "agent.out", 600,
        )  # fmt: skip
        procs.append(phones)
        customers = sipp(
            ["-sf", str(caller_scenario(work, "customers", "+1555", 600_000)), "-s", "4500",
             f"127.0.0.1:{node.sip_port}", "-i", "127.0.0.1", "-p", str(free_port("both")),
             "-mi", "127.0.0.1", "-mp", str(free_port("both")), "-m", str(calls),
             "-l", str(calls), "-r", "10"],
            work, "customers.out", 600,
        )  # fmt: skip
        procs.append(customers)
        deadline = time.monotonic() + 60
        while sum(c["state"] == "connected" for c in admin.get("/contacts/live")) < calls:
            if time.monotonic() > deadline:
                raise RuntimeError("the calls did not all connect")
            time.sleep(0.3)
        time.sleep(3.0)  # talking and recorded; a checkpoint was written
        children = descendants(node.proc.pid)
        killed_at = time.time()
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait()
        node.stop()
        restart = time.time()
        restarted = LiveNode(work / "data", ["--config", str(config)], sip_port=node.sip_port)
        fresh = sipp(
            ["-sf", str(caller_scenario(work, "new", "+1999", 3000)), "-s", "4500",
             f"127.0.0.1:{node.sip_port}", "-i", "127.0.0.1", "-p", str(free_port("both")),
             "-mi", "127.0.0.1", "-mp", str(free_port("both")), "-m", str(NEW_CALLS),
             "-r", "2"],
            work, "new.out", 120,
        )  # fmt: skip
        procs.append(fresh)
        customers.wait(60)
        customers_released = time.time()
        time.sleep(max(0.0, killed_at + 5 - time.time()))
        orphans = alive(children)
        restarted.wait_ready()
        fresh.wait(90)
        byes = [t for who, t in log_times(work, "agent", "bye") if who.startswith("1555")]
        acks = [(who, t) for who, t in log_times(work, "agent", "ack") if who.startswith("1999")]
        answers = [t for _, t in acks]
        if len(byes) < calls:
            print(f"only {len(byes)} of {calls} agents' phones got a BYE")
        released = max([customers_released, *byes]) - restart if len(byes) >= calls else 999.0
        first = min(answers) - restart if answers else 999.0
        time.sleep(1.0)
        admin = Admin(restarted.base, restarted.demo)
        cdrs = admin.get("/contacts", limit=100)["items"]
        old = [c for c in cdrs if c["customer"].startswith("+1555")]
        good = 0
        for cdr in old:
            recs = [admin.get(f"/recordings/{rid}") for rid in cdr["recordings"]]
            if (
                cdr["state"] == "ended"
                and cdr["disposition"] == "node_failure"
                and cdr["talk_seconds"] > 0
                and recs
                and all(r["state"] == "recovered" and r["duration_seconds"] > 1 for r in recs)
            ):
                good += 1
        new = [c for c in cdrs if c["customer"].startswith("+1999") and c["state"] == "ended"]
        answered_new = len({who for who, _ in acks})
        lost = (calls - good) + max(0, answered_new - len(new))
        print(
            f"customers released {customers_released - restart:.2f} s after the restart, "
            f"last agent phone {max(byes) - restart if byes else float('nan'):.2f} s; "
            f"{len(answers)} new calls answered; CDRs of the killed calls complete: {good}/"
            f"{calls}; new calls with CDRs: {len(new)}/{answered_new}; orphans {sorted(orphans)}"
        )
        report.add("recovery_bye_s", round(released, 2), "s", "<=", 5)
        report.add("recovery_first_answer_s", round(first, 2), "s", "<=", 5)
        report.add("recovery_lost_cdrs", lost, "", "<=", 0)
        report.add("recovery_orphans", len(orphans), "", "<=", 0)
    finally:
        for proc in procs:
            kill_group(proc)
        if restarted is not None:
            restarted.stop()
        node.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report.print()


if __name__ == "__main__":
    main()
