"""Voice contacts under load (issue 7): SIPp callers through the IVR, the queue and
auto-answering agent phones, 30 s of talk both ways, every call recorded.

Run from the repo root: ``python bench/voice_load.py`` (about 4.5 minutes: 220 calls at once
for 180 s after a ramp at 8 calls/s) or ``--quick`` (under a minute: 40 calls, 10 s of talk,
10 s at full concurrency). ``--calls``, ``--duration`` (seconds at full concurrency; the
issue's 10 minutes is ``--duration 600``), ``--talk``, ``--rate`` change the load; ``--keep``
keeps the recordings (deleted otherwise: 1 MB per talk-minute).

What runs (all on 127.0.0.1, each bounded by ``timeout``):

* a node (``tests.conftest.LiveNode``: ``cloudcc serve`` on free ports, fresh data dir), every
  thread pinned to the idler core with SCHED_RR (the machine is shared; see bench/media.py);
  the demo tenant's quotas raised by the platform operator, ``--calls + 10`` agents created
  with skill ``support``, queue ``support`` without wrap-up;
* on the other core, one SIPp UAS (tests/data/voice/bench_agent.xml.in) as the phones of all
  agents (each logs in with ``sip:agent<ext>@127.0.0.1:<port>``): rings 0.5 s, answers,
  streams a 1,500 Hz tone (A-law, SIPp ``rtp_stream`` looped) until the BYE;
* and one SIPp UAC (tests/data/voice/bench_caller.xml.in) dialing 4000 at ``--rate`` calls/s
  and holding at most ``--calls`` at once (``-l``): 6 s after the answer (``--key-after``;
  the greeting, then 2.6 s into the menu prompt, which takes a key) it presses 2 (RFC 2833,
  SIPp's dtmf_2833_2.pcap), streams a 1,000 Hz tone and hangs up ``--talk`` s after the
  agent answered.

The SIPp peers log, with their own clocks (one machine), the key press and the hang-up
(caller) and the INVITE and the ACK (agent phone, by the caller's number in From); each call
is then checked against what the node wrote. Figures:

* ``voice_concurrent_calls``: the node's live contacts (``GET /contacts/live``, sampled every
  second) over the window at full concurrency (from the first sample at ``--calls`` to
  SIPp's last new call): the median; min and max are printed.
* ``voice_failed_calls``: SIPp's failed calls (both sides), calls no agent answered, and
  calls whose key press the menu did not take (CDR without the menu choice).
* ``voice_lost_cdrs``: calls without a CDR saying disposition ``answered`` and end cause
  ``customer_hangup``. CDRs whose talk time is more than 1 s off the phones' (agent's ACK
  to caller's BYE) are counted and printed, not in this figure.
* ``voice_lost_recordings``: answered calls whose recording is missing, not ``complete``,
  more than 1 s off the phones' talk time, whose WAV on disk is not the size its duration
  needs (16-bit stereo at 8 kHz, within 2 %), or whose channels do not hold the caller's
  1 kHz (left) and the agent's 1.5 kHz (right) above -30 dBFS in the middle second.
* ``voice_cpu_per_call``: the node process's CPU (/proc, user+system, all threads) over the
  window, divided by the window's length and the mean number of live calls, in % of a core.
* ``voice_setup_latency_p99``: from the caller's key press (SIPp ``gettimeofday`` just before
  it sends the RFC 2833 packets, which last 0.14 s) to the agent's phone receiving the
  INVITE: the menu deciding, the queue, the ACD choosing an agent, dialing. The median, and
  key press to answer (the ACK at the phone, 0.5 s of ringing included), are printed too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from _bench import (
    ROOT,
    Report,
    core_busy,
    cpu_seconds,
    free_port,
    parse_args,
    percentile,
    rss_bytes,
)

sys.path.insert(0, ROOT)

VOICE_DATA = Path(ROOT) / "tests" / "data" / "voice"
CALLER_TONE = 1000.0
AGENT_TONE = 1500.0
# The demo greeting (a play node: keys are not taken) lasts about 3.4 s, then the menu
# prompt (about 8 s) takes a key at any time. tests/voice press at 4.5 s; under load the
# greeting starts late (see --key-after) and a key pressed during it is dropped.
KEY_AFTER = 6.0
RING_MS = 500
BYTES_PER_SECOND = 8000 * 2 * 2  # recordings: 16-bit stereo at 8 kHz
REALTIME_PRIORITY = 10  # SCHED_RR of the node; SIPp runs at REALTIME_PRIORITY - 1


# -------------------------------------------------------------------------- cores, priority


def pin_node(pid: int, core: int) -> str:
    """Pin every thread of the node to ``core`` with SCHED_RR, as bench/media.py does for the
    engine (the machine is shared: without it the figures measure other people's work; the
    kernel still keeps 5 % of each second for them). Threads started later inherit it."""
    how = "pinned"
    for task in os.listdir(f"/proc/{pid}/task"):
        tid = int(task)
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, {core})
        try:
            os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(REALTIME_PRIORITY))
        except (OSError, AttributeError):
            how = "pinned (no SCHED_RR: not root?)"
    return f"{how} to core {core}"


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (timeout's child is SIPp, once started)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    return out


# --------------------------------------------------------------------------- the node side


class Admin:
    """The API as the demo tenant's admin (and, once, as the platform operator)."""

    def __init__(self, base: str, creds: dict[str, Any]) -> None:
        self.base = base + "/api/v1"
        self.client = httpx.Client(timeout=60)
        root = self._login(creds["platform"]["tenant"], "root", creds["platform"]["password"])
        r = self.client.patch(
            f"{self.base}/tenants/{creds['tenant_id']}",
            json={"max_seats": 2000, "max_concurrent_calls": 5000},
            headers=root,
        )
        r.raise_for_status()
        self.headers = self._login("demo", "admin", creds["admin"]["password"])

    def _login(self, tenant: str, username: str, password: str) -> dict[str, str]:
        r = self.client.post(
            self.base + "/auth/login",
            json={"tenant": tenant, "username": username, "password": password},
        )
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(self.base + path, headers=self.headers, params=params)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: Any) -> Any:
        r = self.client.post(self.base + path, json=body, headers=self.headers)
        if r.status_code >= 300:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def patch(self, path: str, body: Any) -> Any:
        r = self.client.patch(self.base + path, json=body, headers=self.headers)
        r.raise_for_status()
        return r.json()

    def all(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, limit=500, offset=len(items))
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return items


def prepare_agents(admin: Admin, count: int, phone_port: int) -> None:
    """``count`` agents with skill support, logged in with a device on the SIPp phone."""
    qid = admin.get("/queues", name="support")["items"][0]["id"]
    admin.patch(f"/queues/{qid}", {"wrapup_seconds": 0})

    def create(i: int) -> str:
        ext = f"{5000 + i}"
        agent = admin.post(
            "/agents",
            {"name": f"Bench {ext}", "extension": ext, "sip_password": f"pw-{ext}-bench",
             "skills": {"support": 5}},
        )  # fmt: skip
        return str(agent["id"])

    def login(i: int, agent_id: str) -> None:
        # The ACD learns of a new agent in a background task (agent.created on the bus):
        # a login right after the POST can still get 422 "unknown to routing".
        for attempt in range(50):
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


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


class Sampler(threading.Thread):
    """Once a second: the node's live contacts, its CPU seconds and RSS."""

    def __init__(self, admin_base: str, headers: dict[str, str], pid: int) -> None:
        super().__init__(daemon=True)
        self.url = admin_base + "/contacts/live"
        self.headers = headers
        self.pid = pid
        self.samples: list[dict[str, float]] = []
        self.stop = threading.Event()
        self.watch: list[int] = []  # SIPp processes: their CPU too

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                started = time.time()
                try:
                    live = client.get(self.url, headers=self.headers).json()
                    states: dict[str, int] = {}
                    for c in live:
                        states[c["state"]] = states.get(c["state"], 0) + 1
                    self.samples.append(
                        {
                            "t": started,
                            "live": len(live),
                            "connected": states.get("connected", 0),
                            "ivr": states.get("ivr", 0),
                            "queued": states.get("queued", 0) + states.get("offered", 0),
                            "cpu": cpu_seconds(self.pid),
                            "load_cpu": sum(_cpu(p) for p in self.watch),
                            "rss": rss_bytes(self.pid),
                            "api_ms": (time.time() - started) * 1000,
                        }
                    )
                except (httpx.HTTPError, ValueError, OSError):
                    pass
                self.stop.wait(max(0.0, 1.0 - (time.time() - started)))


# ----------------------------------------------------------------------------- SIPp side


def tone_file(path: Path, freq: float) -> Path:
    """One second of a -12 dBFS tone as raw A-law (SIPp's rtp_stream loops it)."""
    from cloudcc.media.g711 import alaw_encode
    from cloudcc.media.testing import sine

    path.write_bytes(alaw_encode(sine(freq, 1.0, -12.0)))
    return path


def scenario(name: str, work: Path, **values: Any) -> Path:
    text = (VOICE_DATA / f"{name}.xml.in").read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    path = work / f"{name}.xml"
    path.write_text(text)
    return path


def sipp(args: list[str], work: Path, limit: float, log: str, core: int) -> subprocess.Popen[bytes]:
    """SIPp on the load core (SCHED_RR just below the node's, so that neither the load nor
    the system under test waits for unrelated work), bounded by ``timeout``."""
    out = open(work / log, "wb")  # noqa: SIM115 - the child holds it; closed at exit
    prio = ["chrt", "-r", str(REALTIME_PRIORITY - 1)] if os.geteuid() == 0 else []
    return subprocess.Popen(
        [
            "timeout",
            "-k",
            "5",
            str(int(limit)),
            "taskset",
            "-c",
            str(core),
            *prio,
            "sipp",
            *args,
            "-nostdin",
            "-trace_err",
        ],
        cwd=work,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def counter(text: str, name: str) -> int:
    import re

    found = re.findall(rf"{re.escape(name)}\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return int(found[-1]) if found else 0


def log_times(work: Path, prefix: str, kind: str) -> dict[str, float]:
    """``kind <key> <s> <us>`` lines of SIPp -trace_logs files: key -> UNIX time."""
    out: dict[str, float] = {}
    for path in work.glob(f"{prefix}_*_logs.log"):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == kind:
                with contextlib.suppress(ValueError):
                    out[parts[1]] = float(parts[2]) + float(parts[3]) / 1e6
    return out


# -------------------------------------------------------------------------- verification


@dataclass
class Verdict:
    """What the node wrote, checked against what the SIPp peers saw."""

    cdrs: int = 0
    lost_cdrs: list[str] = field(default_factory=list)  # no CDR answered/customer_hangup
    key_ignored: list[str] = field(default_factory=list)  # CDR without the menu choice
    wrong_talk: list[str] = field(default_factory=list)  # CDR talk time != the phones'
    lost_recordings: list[str] = field(default_factory=list)
    talk_errors: list[float] = field(default_factory=list)  # CDR talk - phones' talk, s
    received: int = 0  # RTP packets the node received on the legs of answered calls
    lost: int = 0
    jitter_ms: list[float] = field(default_factory=list)  # per leg, the node's RFC 3550 figure
    cleanup: list[float] = field(default_factory=list)  # customer's BYE -> contact ended, s


def verify(admin: Admin, data_dir: Path, talks: dict[str, float]) -> Verdict:
    """Every call SIPp placed (``talks``: caller number -> talk seconds the phones saw,
    from the agent phone's ACK to the caller's BYE) against its CDR and recording."""
    from cloudcc.media.testing import tone_level_dbfs
    from cloudcc.media.wav import read_wav

    cdrs = {c["customer"].lstrip("+"): c for c in admin.all("/contacts")}
    recordings = {r["id"]: r for r in admin.all("/recordings")}
    v = Verdict(cdrs=len(cdrs))
    for number, talk in sorted(talks.items()):
        c = cdrs.get(number)
        if c is None or c["disposition"] != "answered" or c["end_cause"] != "customer_hangup":
            what = "none" if c is None else f"{c['disposition']} / {c['end_cause']}"
            v.lost_cdrs.append(f"+{number}: CDR {what}")
            continue
        if c["queue"] != "support" or c["attributes"].get("choice") != "support":
            v.key_ignored.append(
                f"+{number}: choice {c['attributes'].get('choice')}, {c['ivr_seconds']:.1f} s "
                "in the IVR"
            )
        v.talk_errors.append(c["talk_seconds"] - talk)
        customer_left = c["legs"][0].get("ended_at") if c["legs"] else None
        if customer_left and c["ended_at"]:
            # Every time in the API is ISO 8601 with its zone (issue 17.17), legs' too.
            left = datetime.fromisoformat(customer_left).timestamp()
            v.cleanup.append(datetime.fromisoformat(c["ended_at"]).timestamp() - left)
        for leg in c["legs"]:
            quality = leg.get("quality") or {}
            v.received += quality.get("packets_received") or 0
            v.lost += quality.get("packets_lost") or 0
            if quality.get("jitter_ms") is not None:
                v.jitter_ms.append(quality["jitter_ms"])
        if abs(c["talk_seconds"] - talk) > 1.0:
            v.wrong_talk.append(
                f"+{number}: CDR talk {c['talk_seconds']:.1f} s, phones {talk:.1f} s"
            )
        rec = recordings.get(c["recordings"][0]) if len(c["recordings"]) == 1 else None
        problem = None
        if rec is None:
            problem = f"{len(c['recordings'])} recordings"
        elif rec["state"] != "complete":
            problem = f"state {rec['state']}"
        elif abs(rec["duration_seconds"] - talk) > 1.0:
            problem = f"{rec['duration_seconds']:.1f} s for {talk:.1f} s of talk"
        else:
            path = data_dir / "recordings" / _recording_path(data_dir, rec)
            expected = rec["duration_seconds"] * BYTES_PER_SECOND
            size = path.stat().st_size if path.is_file() else -1
            if size < 0:
                problem = "no file"
            elif abs(size - expected) > 0.02 * expected + 4096:
                problem = f"{size} bytes for {rec['duration_seconds']:.1f} s"
            else:
                pcm, _rate = read_wav(path)
                mid = pcm[len(pcm) // 2 - 8000 : len(pcm) // 2 + 8000]
                left = tone_level_dbfs(mid[:, 0], CALLER_TONE)
                right = tone_level_dbfs(mid[:, 1], AGENT_TONE)
                if pcm.shape[1] != 2 or left < -30 or right < -30:
                    problem = f"tones {left:.0f}/{right:.0f} dBFS"
        if problem:
            v.lost_recordings.append(f"+{number}: recording {problem}")
    return v


_PATHS: dict[str, str] = {}


def _recording_path(data_dir: Path, rec: dict[str, Any]) -> str:
    """The stored path of a recording (not part of the API's output): from the database."""
    if not _PATHS:
        import sqlite3

        with contextlib.closing(sqlite3.connect(data_dir / "cloudcc.db")) as db:
            _PATHS.update(db.execute("SELECT id, path FROM recordings").fetchall())
    return _PATHS.get(rec["id"], "")


# ---------------------------------------------------------------------------------- main


def main() -> None:
    args = parse_args(
        "Voice load: SIPp calls through IVR, queue and agents, talking and recorded",
        [
            ("--calls", {"type": int, "default": None, "help": "calls at once (default 220)"}),
            ("--duration", {"type": float, "default": None,
                            "help": "seconds at full concurrency (default 180)"}),
            ("--talk", {"type": float, "default": None, "help": "talk seconds (default 30)"}),
            ("--rate", {"type": float, "default": 8.0, "help": "new calls per second"}),
            ("--keep", {"action": "store_true", "help": "keep the recordings and data dir"}),
            ("--key-after", {"type": float, "default": KEY_AFTER,
                             "help": "seconds from the answer to the key press"}),
        ],
    )  # fmt: skip
    quick = args.quick
    calls = args.calls or (40 if quick else 220)
    duration = args.duration if args.duration is not None else (10.0 if quick else 180.0)
    talk = args.talk or (10.0 if quick else 30.0)
    rate = args.rate
    hold_ms = int(talk * 1000 + RING_MS + 200 - 300)  # the key, 0.3 s, then this long
    key_ms = int(args.key_after * 1000)
    call_seconds = (key_ms + 300 + hold_ms) / 1000 + 0.1
    total = calls + int(calls * duration / call_seconds + 0.5)
    limit = calls / rate + duration + call_seconds + 60

    from tests.conftest import LiveNode

    work = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    print(f"work dir {work}; {calls} calls at once, {total} in all, {talk:.0f} s of talk")
    # A TOML file, not CLOUDCC_* variables: the environment cannot carry a list
    # (CLOUDCC_SIP__EXEMPT_SOURCES='["127.0.0.1"]' fails validation: "Input should be a
    # valid list"). SIPp shares 127.0.0.1 with nothing else here; flood limits are not
    # what this measures.
    config = work / "node.toml"
    config.write_text(
        '[sip]\nexempt_sources = ["127.0.0.1"]\nmax_cps = 1000.0\n'
        "[limits]\ntenant_rps = 5000.0\ntenant_burst = 5000\n"
    )
    node = LiveNode(work / "data", extra_args=["--config", str(config)])
    procs: list[subprocess.Popen[bytes]] = []
    report = Report()
    busy = core_busy()
    node_core = min(range(len(busy)), key=lambda c: busy[c])
    load_core = 1 - node_core if len(busy) > 1 else node_core
    print(f"cores busy {', '.join(f'{b:.0%}' for b in busy)} before the run: node on core "
          f"{node_core}, SIPp on core {load_core}")  # fmt: skip
    try:
        node.wait_ready()
        print(f"node {pin_node(node.proc.pid, node_core)}")
        admin = Admin(node.base, node.demo)
        phone_port = free_port()
        started = time.perf_counter()
        prepare_agents(admin, calls + 10, phone_port)
        print(f"{calls + 10} agents created and logged in in {time.perf_counter() - started:.1f} s")

        caller_audio = tone_file(work / "caller.alaw", CALLER_TONE)
        agent_audio = tone_file(work / "agent.alaw", AGENT_TONE)
        agent_xml = scenario("bench_agent", work, ring_ms=RING_MS, audio=agent_audio)
        caller_xml = scenario(
            "bench_caller", work, caller="+1555", digit="2", dtmf_after_ms=key_ms,
            hold_ms=hold_ms, audio=caller_audio,
        )  # fmt: skip
        phones = sipp(
            ["-sf", str(agent_xml), "-i", "127.0.0.1", "-p", str(phone_port),
             "-mi", "127.0.0.1", "-mp", str(free_port()), "-trace_logs", "-m", str(total)],
            work, limit + 30, "phones.out", load_core,
        )  # fmt: skip
        procs.append(phones)
        time.sleep(0.5)

        pin_node(node.proc.pid, node_core)  # threads started since
        sampler = Sampler(admin.base, admin.headers, node.proc.pid)
        sampler.start()
        load0 = os.getloadavg()
        callers = sipp(
            ["-sf", str(caller_xml), "-s", "4000", f"127.0.0.1:{node.sip_port}",
             "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1",
             "-mp", str(free_port()), "-r", str(rate), "-l", str(calls), "-m", str(total),
             "-trace_logs", "-trace_stat", "-fd", "1", "-trace_rtt", "-rtt_freq", "1"],
            work, limit, "callers.out", load_core,
        )  # fmt: skip
        procs.append(callers)
        time.sleep(1)
        sampler.watch = children(phones.pid) + children(callers.pid)
        callers_rc = callers.wait()
        # the node writes each CDR as its contact ends: wait for the last ones
        deadline = time.time() + 30
        while time.time() < deadline and (not sampler.samples or sampler.samples[-1]["live"]):
            time.sleep(0.5)
        sampler.stop.set()
        sampler.join()
        (work / "samples.json").write_text(json.dumps(sampler.samples))
        try:
            phones_rc = phones.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(phones.pid, signal.SIGTERM)
            phones_rc = phones.wait()
        load1 = os.getloadavg()

        # ---- what SIPp saw
        caller_out = (work / "callers.out").read_text(errors="replace")
        phone_out = (work / "phones.out").read_text(errors="replace")
        ok, failed = counter(caller_out, "Successful call"), counter(caller_out, "Failed call")
        phone_ok = counter(phone_out, "Successful call")
        phone_failed = counter(phone_out, "Failed call")
        print(
            f"callers: {ok} ok, {failed} failed, rc={callers_rc}; agent phones: {phone_ok} ok, "
            f"{phone_failed} failed, rc={phones_rc}"
        )
        for log in sorted(work.glob("*_errors.log")):
            # the caller's own hang-up is a receive timeout by design ("ontimeout")
            text = log.read_text(errors="replace").replace("jumping to label", "\n")
            errors = [
                line for line in text.splitlines()
                if line.strip() and not line.strip().isdigit()
                and "receive timeout on message bench caller" not in line
                and not line.startswith("The following events")
            ]  # fmt: skip
            if errors:
                print(f"--- {log.name}: {len(errors)} events\n" + "\n".join(errors[-10:]))

        # ---- setup latency and talk times from the SIPp logs, by caller number
        keys = {f"1555{n}": t for n, t in log_times(work, "bench_caller", "key").items()}
        byes = {f"1555{n}": t for n, t in log_times(work, "bench_caller", "bye").items()}
        invites = log_times(work, "bench_agent", "invite")
        acks = log_times(work, "bench_agent", "ack")
        setup = [(invites[n] - t) * 1000 for n, t in keys.items() if n in invites]
        answer = [(acks[n] - t) * 1000 for n, t in keys.items() if n in acks]
        talks = {n: byes[n] - acks[n] for n in keys if n in acks and n in byes}
        print(
            f"setup, key press -> agent INVITE: {len(setup)} calls, median "
            f"{percentile(setup, 50):.0f} ms, p99 {percentile(setup, 99):.0f} ms, max "
            f"{max(setup, default=0):.0f} ms; key -> agent answered (ACK at the phone, "
            f"{RING_MS} ms of ringing included): median {percentile(answer, 50):.0f} ms, "
            f"p99 {percentile(answer, 99):.0f} ms"
        )
        unanswered = [n for n in keys if n not in acks]
        agent_byes = log_times(work, "bench_agent", "bye")
        teardown = [(agent_byes[n] - t) * 1000 for n, t in byes.items() if n in agent_byes]
        print(
            f"teardown, caller's BYE -> agent phone's BYE: median {percentile(teardown, 50):.0f}"
            f" ms, p99 {percentile(teardown, 99):.0f} ms, max {max(teardown, default=0):.0f} ms"
        )

        # ---- the window at full concurrency: from the first sample at --calls live calls
        # to SIPp's last new call (its key press, key_ms after the call began)
        samples = sampler.samples
        first_full = next((s["t"] for s in samples if s["live"] >= calls), None)
        last_new = max(keys.values(), default=0.0) - key_ms / 1000
        window = [s for s in samples if first_full is not None and first_full <= s["t"] <= last_new]
        if len(window) >= 2:
            live = [s["live"] for s in window]
            span = window[-1]["t"] - window[0]["t"]
            cpu = window[-1]["cpu"] - window[0]["cpu"]
            concurrent = statistics.median(live)
            cpu_per_call = cpu / span / statistics.mean(live) * 100
            print(
                f"full concurrency for {span:.0f} s: live calls median {concurrent:.0f}, min "
                f"{min(live)}, max {max(live)}; talking median "
                f"{statistics.median(s['connected'] for s in window):.0f}, in IVR "
                f"{statistics.median(s['ivr'] for s in window):.0f}, queued/ringing "
                f"{statistics.median(s['queued'] for s in window):.0f}; node CPU "
                f"{cpu / span * 100:.0f} % of a core, RSS {window[-1]['rss'] / 2**20:.0f} MiB; "
                f"both SIPp {(window[-1]['load_cpu'] - window[0]['load_cpu']) / span * 100:.0f} "
                "% of a core; GET /contacts/live p50 "
                f"{percentile([s['api_ms'] for s in window], 50):.0f} ms, max "
                f"{max(s['api_ms'] for s in window):.0f} ms"
            )
        else:
            concurrent, cpu_per_call = 0.0, 0.0
            peak = max((s["live"] for s in samples), default=0)
            print(f"never held {calls} live calls: peak {peak}")

        # ---- CDRs and recordings against what the phones saw
        v = verify(admin, node.data_dir, talks)
        print(
            f"{v.cdrs} CDRs for {len(keys)} calls: {len(v.lost_cdrs)} lost; "
            f"{len(v.key_ignored)} without the menu choice (key press ignored); "
            f"{len(v.wrong_talk)} with talk time off by > 1 s from the phones' (CDR - phones: "
            f"median {percentile(v.talk_errors, 50):+.2f} s, max "
            f"{max(v.talk_errors, default=0):+.2f} s); {len(v.lost_recordings)} recordings "
            "lost or wrong"
        )
        print(
            "in the node, customer leg ended (BYE in) -> contact ended (CDR closed): median "
            f"{percentile(v.cleanup, 50) * 1000:.0f} ms, p99 {percentile(v.cleanup, 99):.2f} s, "
            f"max {max(v.cleanup, default=0):.2f} s"
        )
        print(
            f"RTP as the node received it (CDR leg quality): {v.received} packets, {v.lost} "
            f"lost; interarrival jitter per leg median {percentile(v.jitter_ms, 50):.1f} ms, "
            f"p99 {percentile(v.jitter_ms, 99):.1f} ms, max {max(v.jitter_ms, default=0):.1f} ms"
        )
        for reason in (v.lost_cdrs + v.key_ignored + v.wrong_talk + v.lost_recordings)[:12]:
            print("  " + reason)
        print(
            f"machine load average (1 min) {load0[0]:.1f} before, {load1[0]:.1f} after, on "
            f"{os.cpu_count()} CPUs shared with other work"
        )
        # a failed call: SIPp says so, no agent answered it, or the menu ignored its key
        failed_calls = failed + phone_failed + len(unanswered) + len(v.key_ignored)
        report.add("voice_concurrent_calls", round(concurrent), "calls", ">=", 200)
        report.add("voice_failed_calls", failed_calls, "calls", "<=", 0)
        report.add("voice_lost_cdrs", len(v.lost_cdrs), "CDRs", "<=", 0)
        report.add("voice_lost_recordings", len(v.lost_recordings), "recordings", "<=", 0)
        report.add("voice_cpu_per_call", round(cpu_per_call, 2), "% of a core")
        report.add("voice_setup_latency_p99", round(percentile(setup, 99)), "ms")
    finally:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        node.stop()
        if not args.keep:
            shutil.rmtree(work / "data", ignore_errors=True)  # the recordings
    report.print()


if __name__ == "__main__":
    main()
