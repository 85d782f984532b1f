"""Compare two versions of the routing engine on the routing benchmark's workload, in one
process, interleaved: a development tool, not a benchmark (it prints no figures).

Runs of ``bench/routing.py`` on a shared 2-core VM vary by ±15 % from one run to the next,
more than most changes to the engine are worth. Here both versions run side by side in the
same process: each gets its own engine and shift, they take turns every ``--chunk``
decisions (so a slow moment of the machine hits both), the collector is off (a collection
lands in whichever call crosses its threshold: with few of them, that biases one side), and
the first third of the run (the agents' first offers) is left out.

    python bench/routing_ab.py HEAD                  # HEAD against the working tree
    python bench/routing_ab.py HEAD~3 HEAD --idle    # two commits, idle-agents workload
    python bench/routing_ab.py WORKTREE BUILT        # the Python source against the build
    python bench/routing_ab.py HEAD+c WORKTREE+c     # both compiled (needs Cython importable)

A version is a git revision, ``WORKTREE`` or ``BUILT``. A revision or the working tree is
copied into a temporary directory as a top-level package (``routing_a``, ``routing_b``)
with its imports renamed, so it runs as Python source, or compiled with setup.py's
modules and directives when suffixed ``+c`` (``pip install cython`` first); ``BUILT`` is
``cloudcc.routing`` as installed (compiled by setup.py when it could be:
``cloudcc.routing.BUILD``).
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import routing as bench

import cloudcc.routing

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "src/cloudcc/routing"


def setup_constants(setup_py: str) -> dict[str, Any]:
    """``MODULES`` and ``DIRECTIVES`` as a setup.py has them (read, not imported: importing
    setup.py runs the install)."""
    found = {}
    for node in ast.parse(setup_py).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("MODULES", "DIRECTIVES"):
                found[name] = ast.literal_eval(node.value)
    return found


def compile_package(target: Path, setup_py: str) -> None:
    """Compile the package written at ``target`` in place, as its version's setup.py does."""
    from Cython.Build import cythonize  # a development tool: pip install cython
    from setuptools import Distribution

    constants = setup_constants(setup_py)
    sources = [str(target / f"{m}.py") for m in constants["MODULES"]]
    modules = cythonize(
        sources, compiler_directives=constants["DIRECTIVES"], quiet=True, nthreads=2
    )
    dist = Distribution({"ext_modules": modules, "script_args": ["-q", "build_ext", "--inplace"]})
    dist.parse_command_line()
    cwd = os.getcwd()
    os.chdir(target.parent)  # extension names are dotted from the package's parent
    try:
        dist.run_commands()
    finally:
        os.chdir(cwd)


def materialise(version: str, name: str, into: Path) -> None:
    """Write the routing package of ``version`` as the top-level package ``name``, compiled
    if ``version`` ends in ``+c``."""
    compiled = version.endswith("+c")
    version = version.removesuffix("+c")
    target = into / name
    target.mkdir()
    suffixes = (".py", ".pxd") if compiled else (".py",)
    if version == "WORKTREE":
        files = {p.name: p.read_text() for p in (ROOT / PACKAGE).iterdir() if p.suffix in suffixes}
    else:
        listing = git("ls-tree", "--name-only", f"{version}:{PACKAGE}").split()
        files = {
            f: git("show", f"{version}:{PACKAGE}/{f}") for f in listing if f.endswith(suffixes)
        }
    for filename, text in files.items():
        (target / filename).write_text(re.sub(r"\bcloudcc\.routing\b", name, text))
    if compiled:
        if version == "WORKTREE":
            setup_py = (ROOT / "setup.py").read_text()
        else:
            setup_py = git("show", f"{version}:setup.py")
        compile_package(target, setup_py)


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


class Side:
    """One version's engine and shift, and what its calls cost."""

    def __init__(self, api: ModuleType, idle: bool) -> None:
        queues, agents = bench.build_workload(api=api)
        self.engine = bench.load_engine(queues, agents, api)
        if idle:
            bench.prime_lanes(self.engine, queues, api)
        self.shift = bench.Shift(self.engine, queues, load=0.8 if idle else 1.0, api=api)
        self.shift.fill(0 if idle else bench.N_WAITING)
        self.calls = self.shift.calls()
        self.decisions = 0
        # (kind, decided) -> [calls, seconds, decisions], counted once ``counting`` is set
        self.stats: dict[tuple[int, bool], list[float]] = {}
        self.counting = False

    def run_until(self, decisions: int) -> None:
        for kind, dt, routed in self.calls:
            self.decisions += routed
            if self.counting:
                s = self.stats.setdefault((kind, routed > 0), [0, 0.0, 0])
                s[0] += 1
                s[1] += dt
                s[2] += routed
            if kind == bench.K_DEADLINE and self.decisions >= decisions:
                return

    def rates(self) -> tuple[float, float]:
        decisions = sum(s[2] for s in self.stats.values())
        deciding = sum(s[1] for (_, decided), s in self.stats.items() if decided)
        every = sum(s[1] for s in self.stats.values())
        return decisions / deciding, decisions / every

    def means(self) -> dict[str, float]:
        return {
            f"{bench.KINDS[k]}{'+decision' if d else ''}": round(s[1] / s[0] * 1e6, 1)
            for (k, d), s in sorted(self.stats.items())
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="a git revision, WORKTREE or BUILT")
    parser.add_argument("b", nargs="?", default="WORKTREE", help="default: WORKTREE")
    parser.add_argument("--idle", action="store_true", help="the idle-agents workload")
    parser.add_argument("--decisions", type=int, default=60_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sides: dict[str, Side] = {}
        sys.path.insert(0, tmp)
        for label, version in (("routing_a", args.a), ("routing_b", args.b)):
            if version == "BUILT":  # the installed package: compiled, if it was built
                api = cloudcc.routing
            else:
                materialise(version, label, Path(tmp))
                api = importlib.import_module(label)
            sides[f"{label[-1].upper()} {version}"] = Side(api, args.idle)
        gc.collect()
        gc.freeze()
        gc.disable()
        done = 0
        while done < args.decisions:
            done += args.chunk
            for side in sides.values():
                side.counting = done > args.decisions // 3
                side.run_until(done)
    results: dict[str, tuple[float, float]] = {}
    for label, side in sides.items():
        deciding, every = results[label] = side.rates()
        print(f"{label}: deciding calls {deciding:,.0f} decisions/s, all events {every:,.0f}")
        print(f"  mean microseconds per call: {side.means()}")
    (la, a), (lb, b) = results.items()
    ratio = f"{lb.split()[0]} / {la.split()[0]}"
    print(f"deciding calls: {ratio} = {b[0] / a[0]:.3f}; all events: {ratio} = {b[1] / a[1]:.3f}")


if __name__ == "__main__":
    main()
