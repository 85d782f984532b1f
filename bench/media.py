"""Media engine capacity: bridged+recorded G.711 calls and 3-party conferences on one core,
and the same bridged streams relayed by rtpengine (userspace) for a CPU-per-stream ratio.

Run from the repo root: ``python bench/media.py [--quick]``. Three processes: this
orchestrator, the system under test pinned to core 0 (our engine in a child process,
or rtpengine), and one load generator pinned to core 1 that plays both ends of
every call (50 packets/s per stream, 160-byte PCMU payloads carrying their send
time, so added latency is measured end to end on one monotonic clock).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

from _bench import ROOT, Report, cpu_seconds, free_port, parse_args, percentile

ENGINE_CORE = 0
LOAD_CORE = 1
PTIME = 0.020
PAYLOAD = 160
_HDR = struct.Struct("!BBHII")
_STAMP = struct.Struct("!qII")  # send time ns, stream id, counter


def _pin(core: int) -> None:
    try:
        os.sched_setaffinity(0, {core % (os.cpu_count() or 1)})
    except OSError:
        pass


# -- the system under test: our engine in a child process -------------------------------------


async def _engine_main() -> None:
    """Child process: read JSON commands on stdin, answer on stdout."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        pass
    from cloudcc.media.engine import MediaEngine

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    engine: MediaEngine | None = None
    recordings: list[Any] = []
    cpu_mark = 0.0
    wall_mark = 0.0
    late_mark = 0

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "setup":
            engine = MediaEngine("127.0.0.1", cmd["port_min"], cmd["port_max"], seed=1)
            await engine.start()
            ports = []
            record_dir = cmd.get("record_dir")
            for group in cmd["groups"]:
                legs = []
                for peer_port in group:
                    leg = await engine.open_leg()
                    leg.configure(("127.0.0.1", peer_port), "PCMU", dtmf_payload_type=101)
                    legs.append(leg)
                if cmd["mode"] == "bridge":
                    engine.bridge(legs[0], legs[1])
                    if record_dir:
                        path = os.path.join(record_dir, f"call-{len(ports)}.wav")
                        recordings.append(engine.record(path, legs[0], legs[1]))
                else:
                    conf = engine.conference()
                    for leg in legs:
                        conf.add(leg)
                ports.append([leg.port for leg in legs])
            reply({"ports": ports})
        elif cmd["cmd"] == "mark":
            cpu_mark = cpu_seconds()
            wall_mark = time.monotonic()
            late_mark = engine.late_ticks if engine else 0
        elif cmd["cmd"] == "report":
            assert engine is not None
            stats = engine.tick_stats()
            reply(
                {
                    "cpu": cpu_seconds() - cpu_mark,
                    "wall": time.monotonic() - wall_mark,
                    "late_ticks": engine.late_ticks - late_mark,
                    "ticks": stats.ticks,
                    "p99_lateness_ms": stats.p99_lateness_ms,
                    "max_lateness_ms": stats.max_lateness_ms,
                    "tick_errors": engine.tick_errors,
                }
            )
        elif cmd["cmd"] == "stop":
            infos = [await r.stop() for r in recordings]
            if engine is not None:
                await engine.stop()
            reply({"recorded_s": sum(i.duration_s for i in infos), "files": len(infos)})
            return


def run_engine_child() -> None:
    _pin(ENGINE_CORE)
    if os.environ.get("MEDIA_BENCH_PROFILE"):
        import cProfile

        import uvloop

        cProfile.runctx(
            "uvloop.run(_engine_main())", globals(), locals(), os.environ["MEDIA_BENCH_PROFILE"]
        )
        return
    try:
        import uvloop

        uvloop.run(_engine_main())
    except ImportError:
        asyncio.run(_engine_main())


class EngineProcess:
    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
        self.proc = subprocess.Popen(
            ["timeout", "600", sys.executable, __file__, "--role", "engine"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def send(self, obj: dict[str, Any], reply: bool = True) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        if not reply:
            return {}
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("engine process died")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- rtpengine, driven by its ng protocol -------------------------------------------------------


def _bencode(x: Any) -> bytes:
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(_bencode(i) for i in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(_bencode(k) + _bencode(v) for k, v in sorted(x.items())) + b"e"
    raise TypeError(type(x))


def _sdp(port: int, session: int) -> str:
    return (
        f"v=0\r\no=- {session} 1 IN IP4 127.0.0.1\r\ns=bench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )


class RtpEngine:
    def __init__(self, port_min: int, port_max: int) -> None:
        self.ng_port = free_port(socket.SOCK_DGRAM)
        self.log = tempfile.NamedTemporaryFile(prefix="rtpengine-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [
                "timeout",
                "300",
                "rtpengine",
                "--config-file=none",
                "--table=-1",
                "--interface=127.0.0.1",
                f"--listen-ng=127.0.0.1:{self.ng_port}",
                f"--port-min={port_min}",
                f"--port-max={port_max}",
                "--foreground",
                "--log-stderr",
                "--log-level=4",
                "--num-threads=1",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _pin(ENGINE_CORE),
        )
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2.0)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.ng({"command": "ping"}).get(b"result") == b"pong":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("rtpengine did not start")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        # the rtpengine process is the child of `timeout`
        children = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
        return int(children[0]) if children else self.proc.pid

    def ng(self, message: dict[str, Any]) -> dict[bytes, Any]:
        cookie = f"{random.getrandbits(32):x}".encode()
        self.sock.sendto(cookie + b" " + _bencode(message), ("127.0.0.1", self.ng_port))
        while True:
            data = self.sock.recv(65535)
            if data.startswith(cookie + b" "):
                return _bdecode(data[len(cookie) + 1 :])

    def call(self, index: int, caller_port: int, callee_port: int) -> tuple[int, int]:
        """Offer/answer one call; the ports the caller and the callee must send to."""
        call_id = f"bench-{index}"
        offer = self.ng(
            {
                "command": "offer",
                "call-id": call_id,
                "from-tag": "a",
                "sdp": _sdp(caller_port, index),
            }
        )
        answer = self.ng(
            {
                "command": "answer",
                "call-id": call_id,
                "from-tag": "a",
                "to-tag": "b",
                "sdp": _sdp(callee_port, index),
            }
        )
        to_callee = int(re.search(rb"m=audio (\d+)", offer[b"sdp"]).group(1))  # type: ignore[union-attr]
        to_caller = int(re.search(rb"m=audio (\d+)", answer[b"sdp"]).group(1))  # type: ignore[union-attr]
        return to_caller, to_callee

    def close(self) -> None:
        self.sock.close()
        pid = self.pid
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


def _bdecode(data: bytes) -> Any:
    def parse(i: int) -> tuple[Any, int]:
        c = data[i : i + 1]
        if c == b"i":
            end = data.index(b"e", i)
            return int(data[i + 1 : end]), end + 1
        if c == b"l":
            i += 1
            items = []
            while data[i : i + 1] != b"e":
                item, i = parse(i)
                items.append(item)
            return items, i + 1
        if c == b"d":
            i += 1
            d = {}
            while data[i : i + 1] != b"e":
                key, i = parse(i)
                d[key], i = parse(i)
            return d, i + 1
        colon = data.index(b":", i)
        length = int(data[i:colon])
        return data[colon + 1 : colon + 1 + length], colon + 1 + length

    return parse(0)[0]


# -- the load generator --------------------------------------------------------------------------


def load_main(spec: dict[str, Any]) -> dict[str, Any]:
    """Child process on the other core: send 50 pps on every stream, receive, measure."""
    _pin(LOAD_CORE)
    socks: list[socket.socket] = spec["socks"]
    targets: list[tuple[str, int]] = [("127.0.0.1", p) for p in spec["targets"]]
    duration: float = spec["duration"]
    warmup: float = spec["warmup"]
    n = len(socks)
    ep = select.epoll()
    by_fd = {}
    for i, s in enumerate(socks):
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    groups = 10  # spread the streams over the 20 ms so sends are not bursts
    seqs = [random.randrange(65536) for _ in range(n)]
    ts = [random.getrandbits(32) for _ in range(n)]
    fill = bytes(PAYLOAD - _STAMP.size)
    latencies: list[int] = []
    received_in_window = 0
    sent_in_window = 0
    received_total = 0
    start = time.monotonic_ns() + 50_000_000
    window_start = start + int(warmup * 1e9)
    window_end = start + int((warmup + duration) * 1e9)
    stop_at = window_end + 300_000_000
    tick = 0
    period = int(PTIME * 1e9)
    counter = 0
    while True:
        group_time = start + tick * period // groups
        now = time.monotonic_ns()
        if now >= group_time:
            if group_time < window_end:
                g = tick % groups
                for i in range(g, n, groups):
                    counter += 1
                    seqs[i] = (seqs[i] + 1) & 0xFFFF
                    ts[i] = (ts[i] + PAYLOAD) & 0xFFFFFFFF
                    stamp = time.monotonic_ns()
                    pkt = (
                        _HDR.pack(0x80, 0, seqs[i], ts[i], 0x1000 + i)
                        + _STAMP.pack(stamp, i, counter)
                        + fill
                    )
                    try:
                        socks[i].sendto(pkt, targets[i])
                    except BlockingIOError:
                        continue
                    if window_start <= stamp < window_end:
                        sent_in_window += 1
            tick += 1
            continue
        if now > stop_at:
            break
        timeout = max(0.0, (group_time - now) / 1e9)
        for fd, _ in ep.poll(timeout):
            try:
                data = by_fd[fd].recv(2048)
            except BlockingIOError:
                continue
            arrival = time.monotonic_ns()
            received_total += 1
            if len(data) >= 12 + _STAMP.size:
                sent = _STAMP.unpack_from(data, 12)[0]
                if window_start <= sent < window_end:
                    received_in_window += 1
                    latencies.append(arrival - sent)
    ep.close()
    lat_ms = [x / 1e6 for x in latencies]
    return {
        "sent": sent_in_window,
        "received": received_in_window,
        "received_total": received_total,
        "loss": 1 - received_in_window / sent_in_window if sent_in_window else 1.0,
        "latency_p50_ms": percentile(lat_ms, 50),
        "latency_p99_ms": percentile(lat_ms, 99),
    }


def run_load(
    socks: list[socket.socket], targets: list[int], duration: float, warmup: float
) -> dict[str, Any]:
    """Fork the load generator onto the other core and wait for its figures."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            result = load_main(
                {"socks": socks, "targets": targets, "duration": duration, "warmup": warmup}
            )
            os.write(write_fd, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def open_sockets(count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    return socks


def _port_range(size: int) -> tuple[int, int]:
    """A free-looking range of ports for one run (probed, not guaranteed: the engine skips
    ports in use)."""
    base = random.randrange(20000, 50000 - size, 2)
    return base, base + size


# -- scenarios -------------------------------------------------------------------------------------


def bench_cloudcc(
    mode: str, groups: int, size: int, duration: float, warmup: float
) -> dict[str, Any]:
    socks = open_sockets(groups * size)
    record_dir = tempfile.mkdtemp(prefix="cloudcc-bench-rec-") if mode == "bridge" else None
    engine = EngineProcess()
    try:
        port_min, port_max = _port_range(groups * size * 2 + 200)
        peer_ports = [s.getsockname()[1] for s in socks]
        setup = engine.send(
            {
                "cmd": "setup",
                "mode": mode,
                "port_min": port_min,
                "port_max": port_max,
                "record_dir": record_dir,
                "groups": [peer_ports[g * size : (g + 1) * size] for g in range(groups)],
            }
        )
        targets = [p for group in setup["ports"] for p in group]
        time.sleep(0.5)
        engine.send({"cmd": "mark"}, reply=False)
        load = run_load(socks, targets, duration, warmup)
        report = engine.send({"cmd": "report"})
        stop = engine.send({"cmd": "stop"})
    finally:
        for s in socks:
            s.close()
        engine.close()
        if record_dir:
            shutil.rmtree(record_dir, ignore_errors=True)
    streams = groups * size
    result = dict(load)
    result.update(report)
    result.update(stop)
    result["cpu_per_stream"] = report["cpu"] / report["wall"] / streams
    result["core_share"] = report["cpu"] / report["wall"]
    return result


def bench_rtpengine(calls: int, duration: float, warmup: float) -> dict[str, Any]:
    socks = open_sockets(calls * 2)
    port_min, port_max = _port_range(calls * 4 + 200)
    rtpe = RtpEngine(port_min, port_max)
    try:
        targets: list[int] = []
        for c in range(calls):
            caller, callee = socks[2 * c].getsockname()[1], socks[2 * c + 1].getsockname()[1]
            to_caller_side, to_callee_side = rtpe.call(c, caller, callee)
            # the caller sends to the port in the answer; the callee to the port in the offer
            targets += [to_caller_side, to_callee_side]
        time.sleep(0.5)
        pid = rtpe.pid
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        load = run_load(socks, targets, duration, warmup)
        cpu = cpu_seconds(pid) - cpu0
        wall = time.monotonic() - wall0
    finally:
        for s in socks:
            s.close()
        rtpe.close()
    result = dict(load)
    result["cpu"] = cpu
    result["wall"] = wall
    result["cpu_per_stream"] = cpu / wall / (calls * 2)
    result["core_share"] = cpu / wall
    return result


def passes_bridge(r: dict[str, Any]) -> bool:
    return r["loss"] < 0.001 and r["latency_p99_ms"] < 10.0 and r.get("tick_errors", 0) == 0


def passes_conference(r: dict[str, Any]) -> bool:
    # every participant must get its 50 mixed frames a second, from a clock that keeps time
    expected = r["streams"] * r["duration"] / PTIME
    return r["received_total"] >= 0.999 * expected and r["p99_lateness_ms"] < 10.0


def main() -> None:
    if "--role" in sys.argv and sys.argv[sys.argv.index("--role") + 1] == "engine":
        run_engine_child()
        return
    args = parse_args(__doc__ or "media benchmark")
    _pin(LOAD_CORE)
    report = Report()
    duration, warmup = (4.0, 1.0) if args.quick else (10.0, 2.0)
    bridge_levels = [300, 400] if args.quick else [300, 400, 500, 600]
    conf_levels = [100, 150] if args.quick else [100, 150, 200, 250]

    best_calls = 0
    best: dict[str, Any] | None = None
    first: dict[str, Any] | None = None
    levels = list(bridge_levels)
    while levels:
        calls = levels.pop(0)
        r = bench_cloudcc("bridge", calls, 2, duration, warmup)
        ok = passes_bridge(r)
        print(
            f"cloudcc bridged {calls} calls: loss {r['loss'] * 100:.3f} %, latency p50 "
            f"{r['latency_p50_ms']:.2f} ms p99 {r['latency_p99_ms']:.2f} ms, engine core "
            f"{r['core_share'] * 100:.0f} %, late ticks {r['late_ticks']}, recorded "
            f"{r['recorded_s']:.0f} s in {r['files']} files -> {'pass' if ok else 'FAIL'}",
            flush=True,
        )
        if first is None:
            first = r
        if ok:
            best_calls, best = calls, r
        else:
            if best_calls == 0 and calls > 100:
                levels = [calls // 2]
                continue
            break
    ref = first
    assert ref is not None
    measured_calls = bridge_levels[0] if best_calls >= bridge_levels[0] else best_calls or 100
    rtpe = bench_rtpengine(measured_calls, duration, warmup)
    ours = best if best is not None and best_calls == measured_calls else ref
    print(
        f"rtpengine relayed {measured_calls} calls: loss {rtpe['loss'] * 100:.3f} %, latency p50 "
        f"{rtpe['latency_p50_ms']:.2f} ms p99 {rtpe['latency_p99_ms']:.2f} ms, core "
        f"{rtpe['core_share'] * 100:.0f} %",
        flush=True,
    )

    best_conf = 0
    for confs in conf_levels:
        r = bench_cloudcc("conference", confs, 3, duration, warmup)
        r["streams"] = confs * 3
        r["duration"] = duration + warmup
        ok = passes_conference(r)
        print(
            f"cloudcc {confs} 3-party conferences: {r['received_total']} mixed frames received "
            f"({r['received_total'] / (confs * 3 * (duration + warmup) / PTIME) * 100:.2f} % of due), "
            f"engine core {r['core_share'] * 100:.0f} %, tick lateness p99 "
            f"{r['p99_lateness_ms']:.1f} ms max {r['max_lateness_ms']:.1f} ms -> "
            f"{'pass' if ok else 'FAIL'}",
            flush=True,
        )
        if not ok:
            break
        best_conf = confs

    ours_us = ours["cpu_per_stream"] * 1e6
    rtpe_us = rtpe["cpu_per_stream"] * 1e6
    report.add("media_bridged_calls", best_calls, "calls", ">=", 300)
    report.add("media_bridge_loss", ours["loss"] * 100, "%", "<", 0.1)
    report.add("media_bridge_latency_p99", ours["latency_p99_ms"], "ms", "<", 10)
    report.add("media_cpu_per_stream_cloudcc", ours_us, "us CPU/s per stream")
    report.add("media_cpu_per_stream_rtpengine", rtpe_us, "us CPU/s per stream")
    report.add(
        "media_cpu_per_stream_ratio", ours_us / rtpe_us if rtpe_us else 0, "(cloudcc/rtpengine)"
    )
    report.add("media_conferences", best_conf, "conferences", ">=", 100)
    report.print()


if __name__ == "__main__":
    main()
