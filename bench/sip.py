"""SIP engine benchmark: call setup rate, INVITE->200 latency, digest REGISTER rate.

Run from the repo root: ``python bench/sip.py`` (about 4 minutes: the phases are
separated by 33 s so that each starts without the previous one's transactions) or
``--quick`` (under a minute). It starts a SipEndpoint in a subprocess (uvloop; calls from
127.0.0.1 are an allow-listed trunk and are answered at once with 200 + SDP; 1,000
users with passwords for digest REGISTER) and drives it with SIPp:

* ``sip_call_setup_rate``: SIPp's built-in ``uac`` (INVITE, 200, ACK, BYE) at a target
  rate for 60 s (``--quick``: 10 s); successful calls per second, failed calls printed.
* ``sip_invite_200_p99``: the same at 200 calls/s, p99 of INVITE->200 (``-trace_rtt``).
* ``sip_register_rate``: tests/data/sip/sipp/register_digest.xml (REGISTER, 401,
  REGISTER with credentials, 200) from a CSV of users, offered at 2,200/s for 30 s
  (``--quick``: 10 s); completed registrations per second (each is two REGISTER
  transactions and one digest check).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import ROOT, Report, cpu_seconds, free_port, parse_args, percentile

SCENARIOS = Path(ROOT) / "tests" / "data" / "sip" / "sipp"
USERS = 1000


# ---------------------------------------------------------------- the endpoint


def serve(port: int) -> None:
    """The system under test (runs in the child process)."""
    import asyncio

    import uvloop

    from cloudcc.sip.auth import Credential
    from cloudcc.sip.call import IncomingCall
    from cloudcc.sip.endpoint import EndpointConfig, SipEndpoint
    from cloudcc.sip.protection import ProtectionSettings
    from cloudcc.sip.sdp import PCMA, PCMU, answer

    passwords = {f"user{i}": f"pw{i}" for i in range(USERS)}

    def credentials(realm: str, username: str) -> Credential | None:
        # an in-memory lookup answers at once (no task); a database lookup may be async
        password = passwords.get(username)
        return Credential(username, password, owner=username) if password else None

    async def trunk(source: tuple[str, int], info: object) -> object | None:
        return "bench-trunk" if source[0] == "127.0.0.1" else None

    async def on_call(call: IncomingCall) -> None:
        if call.offer is None:
            await call.reject(488)
            return
        local = answer(call.offer, "127.0.0.1", {"audio": 40000}, {"audio": (PCMU, PCMA)})
        await call.answer(local)

    async def main() -> None:
        config = EndpointConfig(
            host="127.0.0.1",
            port=port,
            protection=ProtectionSettings(
                messages_per_second=None, unauthenticated_per_second=None
            ),
            max_expires=3600,
            nat_keepalive_interval=None,
        )
        endpoint = SipEndpoint(config, credentials=credentials, trunk_check=trunk, on_call=on_call)
        await endpoint.start()
        print(f"ready {endpoint.ports['UDP']}", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await endpoint.stop()

    uvloop.run(main())


# -------------------------------------------------------------------- helpers


def sipp(args: list[str], workdir: Path, limit: float) -> tuple[int, str, float]:
    started = time.perf_counter()
    proc = subprocess.run(
        ["timeout", "-k", "5", str(int(limit)), "sipp", *args, "-nostdin", "-trace_err"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - started


def counter(output: str, name: str) -> int:
    """A cumulative counter of SIPp's last statistics screen."""
    found = re.findall(rf"{re.escape(name)}\s*\|\s*\d+\s*\|\s*(\d+)", output)
    return int(found[-1]) if found else 0


def elapsed(output: str) -> float:
    """Seconds SIPp spent creating calls: created calls / its cumulative call rate."""
    created = counter(output, "Outgoing calls created")
    rates = re.findall(r"Call Rate\s*\|[^|]*\|\s*([0-9.]+) cps", output)
    rate = float(rates[-1]) if rates else 0.0
    return created / rate if rate else 0.0


def main() -> None:
    args = parse_args(
        "SIP call setup rate, INVITE->200 p99 and REGISTER rate against SipEndpoint",
        [
            ("--serve", {"type": int, "default": None, "help": "internal: run the endpoint"}),
            ("--rate", {"type": int, "default": 600, "help": "target calls/s for the rate run"}),
            ("--reg-rate", {"type": int, "default": 2200, "help": "target registrations/s"}),
        ],
    )
    if args.serve is not None:
        serve(args.serve)
        return
    with tempfile.TemporaryDirectory(prefix="bench-sip-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, work: Path) -> None:
    """Start the endpoint, run the three SIPp phases in ``work``, print the figures."""
    quick = args.quick
    rate_seconds = 10 if quick else 60
    latency_seconds = 10 if quick else 30
    register_seconds = 10 if quick else 30
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    report = Report()
    load_before = os.getloadavg()
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"endpoint did not start: {line!r}")
        target = f"127.0.0.1:{port}"

        # 1. call setup rate: INVITE / 200 / ACK / BYE / 200 at the target rate
        rate = args.rate
        cpu0 = cpu_seconds(child.pid)
        rc, out, wall = sipp(
            ["-sn", "uac", target, "-i", "127.0.0.1", "-p", str(free_port()), "-r", str(rate),
             "-m", str(rate * rate_seconds), "-l", str(rate * 10)],
            work, rate_seconds + 60,
        )  # fmt: skip
        cpu = cpu_seconds(child.pid) - cpu0
        ok, failed = counter(out, "Successful call"), counter(out, "Failed call")
        duration = elapsed(out) or wall
        setup_rate = ok / duration if duration else 0.0
        print(
            f"call setup: {ok} ok, {failed} failed in {duration:.1f} s (target {rate}/s); "
            f"endpoint CPU {cpu / wall * 100:.0f} % of one core; sipp rc={rc}"
        )

        # the previous phase's transactions live 64*T1 = 32 s: let them go, so each phase
        # measures its own load (skipped in --quick, whose phases leave far fewer behind)
        drain = 0 if quick else 33

        # 2. INVITE -> 200 latency at 200 calls/s
        time.sleep(drain)
        rc2, out2, _ = sipp(
            ["-sn", "uac", target, "-i", "127.0.0.1", "-p", str(free_port()), "-r", "200",
             "-m", str(200 * latency_seconds), "-trace_rtt", "-rtt_freq", "1"],
            work, latency_seconds + 60,
        )  # fmt: skip
        rtts: list[float] = []
        for path in work.glob("uac_*_rtt.csv"):
            for row in path.read_text().splitlines()[1:]:
                fields = row.split(";")
                if len(fields) >= 2 and fields[1].strip().replace(".", "").isdigit():
                    rtts.append(float(fields[1]))
            path.unlink()
        failed2 = counter(out2, "Failed call")
        print(
            f"latency at 200 calls/s: {len(rtts)} samples, median {percentile(rtts, 50):.0f} ms, "
            f"p99 {percentile(rtts, 99):.0f} ms, max {max(rtts, default=0):.0f} ms, "
            f"{failed2} failed; sipp rc={rc2}"
        )

        # 3. digest REGISTER rate (REGISTER, 401, REGISTER + Authorization, 200)
        time.sleep(drain)
        users = work / "users.csv"
        users.write_text(
            "SEQUENTIAL\n"
            + "".join(
                f"user{i};[authentication username=user{i} password=pw{i}]\n" for i in range(USERS)
            )
        )
        reg_rate = args.reg_rate
        cpu0 = cpu_seconds(child.pid)
        rc3, out3, wall3 = sipp(
            [target, "-sf", str(SCENARIOS / "register_digest.xml"), "-inf", str(users),
             "-i", "127.0.0.1", "-p", str(free_port()), "-r", str(reg_rate),
             "-m", str(reg_rate * register_seconds), "-l", str(reg_rate * 5)],
            work, register_seconds + 60,
        )  # fmt: skip
        cpu3 = cpu_seconds(child.pid) - cpu0
        reg_ok, reg_failed = counter(out3, "Successful call"), counter(out3, "Failed call")
        reg_duration = elapsed(out3) or wall3
        register_rate = reg_ok / reg_duration if reg_duration else 0.0
        print(
            f"registrations: {reg_ok} ok, {reg_failed} failed in {reg_duration:.1f} s "
            f"(target {reg_rate}/s); endpoint CPU {cpu3 / wall3 * 100:.0f} % of one core; "
            f"sipp rc={rc3}"
        )
        load_after = os.getloadavg()
        print(
            f"machine load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
            f"on {os.cpu_count()} CPUs shared with other work: high load starves the endpoint "
            "and SIPp alike (retransmissions, then failures)"
        )
        if failed or failed2 or reg_failed:
            for log in work.glob("*_errors.log"):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}")

        report.add("sip_call_setup_rate", round(setup_rate), "calls/s", ">=", 500)
        report.add("sip_call_setup_failed", failed, "calls", "<=", 0)
        report.add("sip_invite_200_p99", percentile(rtts, 99), "ms", "<", 20)
        report.add("sip_register_rate", round(register_rate), "REGISTER/s", ">=", 2000)
    finally:
        child.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(10)
        if child.poll() is None:
            child.kill()
            child.wait()
    report.print()


if __name__ == "__main__":
    main()
