"""Shared helpers for the benchmarks in bench/.

Convention (see DEVELOPERS notes in docs/benchmarks.md): each benchmark is run
from the repo root as ``python bench/<name>.py [--quick]``, starts what it needs
itself, finishes in under 5 minutes (under 1 minute with ``--quick``) and ends
with one line per figure::

    figure: <name> = <value> <unit> (goal <op> <value>)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)  # tests.conftest.LiveNode, the peers in tests/


@contextlib.contextmanager
def live_node(prefix: str, **options: Any) -> Iterator[tuple[Any, Path]]:
    """A real node (``tests.conftest.LiveNode``, ``options`` passed on) in a fresh work folder,
    ready; yields it and the folder. On an error the node's exit code and log end are printed;
    the node is stopped and the folder removed in any case."""
    from tests.conftest import LiveNode

    work = Path(tempfile.mkdtemp(prefix=prefix))
    node = LiveNode(work / "data", **options)
    try:
        node.wait_ready()
        yield node, work
    except Exception:
        node.log()  # flushed
        lines = node.log_path.read_text(errors="replace").splitlines()
        # Not the access lines of every event stream (1,000 of them in web_fanout)
        lines = [x for x in lines if "WebSocket /api" not in x and "connection " not in x]
        tail = "\n".join(lines[-60:])
        print(f"node exit code {node.proc.poll()}; its log ends:\n{tail}", flush=True)
        raise
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    op: str | None = None
    goal: float | None = None

    def met(self) -> bool | None:
        if self.op is None or self.goal is None:
            return None
        return {
            ">=": self.value >= self.goal,
            ">": self.value > self.goal,
            "<=": self.value <= self.goal,
            "<": self.value < self.goal,
        }[self.op]

    def line(self) -> str:
        value = _fmt(self.value)
        goal = f" (goal {self.op} {_fmt(self.goal)})" if self.op and self.goal is not None else ""
        return f"figure: {self.name} = {value} {self.unit}{goal}".rstrip()


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(
        self, name: str, value: float, unit: str, op: str | None = None, goal: float | None = None
    ) -> Figure:
        fig = Figure(name, value, unit, op, goal)
        self.figures.append(fig)
        return fig

    def print(self) -> None:
        """Print the figure lines last, as the convention asks."""
        sys.stdout.flush()
        for fig in self.figures:
            print(fig.line())
        sys.stdout.flush()


def parse_args(
    description: str, extra: Sequence[tuple[str, dict[str, object]]] = ()
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a run of under one minute")
    for flag, kwargs in extra:
        parser.add_argument(flag, **kwargs)  # type: ignore[arg-type]
    return parser.parse_args()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def core_busy(seconds: float = 0.5) -> list[float]:
    """Busy share of each core over a short sample (/proc/stat)."""

    def sample() -> list[tuple[int, int]]:
        out = []
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3].isdigit():
                    v = [int(x) for x in line.split()[1:]]
                    out.append((v[3] + v[4], sum(v)))  # idle + iowait, total
        return out

    a = sample()
    time.sleep(seconds)
    b = sample()
    return [1 - (y[0] - x[0]) / max(1, y[1] - x[1]) for x, y in zip(a, b, strict=True)]


def cpu_seconds(pid: int | None = None) -> float:
    """User+system CPU seconds of a process (this one when pid is None)."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def cpu_wait_seconds(pid: int) -> float:
    """Seconds the threads of ``pid`` spent runnable but waiting for a CPU (schedstat): on a
    shared machine, the part of a latency that other processes' load caused."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with (
            contextlib.suppress(OSError, IndexError, ValueError),
            open(f"/proc/{pid}/task/{tid}/schedstat") as f,
        ):
            total += int(f.read().split()[1])
    return total / 1e9


def rss_bytes(pid: int | None = None) -> int:
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _fmt(v: float | None) -> str:
    if v is None:
        return "?"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"
