"""The two builds of the engine: compiled (setup.py, Cython) and the Python source.

The other routing tests run against whichever build is in use (the compiled one after a
normal install); here the whole routing suite also runs against the other build, and the
build in use is checked to be the one asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cloudcc.routing
from cloudcc.routing import build

TESTS = Path(__file__).resolve().parent
PURE = bool(os.environ.get("CLOUDCC_PURE_PYTHON"))


def test_the_build_in_use_is_the_one_asked_for() -> None:
    # ./dev setup (pip install -e ., with the C compiler ./dev installs) compiles the engine;
    # a silent fall back to the source would leave the benchmark's figures to the slower
    # build. CLOUDCC_PURE_PYTHON asks for the source.
    expected = "python" if PURE else "compiled"
    assert expected == cloudcc.routing.BUILD, build._why_source()
    for name in build.COMPILED_MODULES:
        loaded = Path(sys.modules[f"cloudcc.routing.{name}"].__file__ or "")
        assert (loaded.suffix == ".py") == PURE, loaded


@pytest.mark.slow
def test_the_other_build_passes_the_routing_suite() -> None:
    env = dict(os.environ)
    if PURE:
        del env["CLOUDCC_PURE_PYTHON"]
    else:
        env["CLOUDCC_PURE_PYTHON"] = "1"
    # This file's first test, run there too, checks that the other build is the one loaded.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TESTS)]
    command += ["-k", "not test_the_other_build_passes_the_routing_suite"]  # no recursion
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " skipped" not in run.stdout


def test_a_source_edited_after_compiling_runs_as_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit not rebuilt yet must not leave the old compiled engine running."""
    monkeypatch.delenv("CLOUDCC_PURE_PYTHON", raising=False)
    monkeypatch.setattr(build, "_HERE", tmp_path)
    assert build._why_source() == "not compiled"
    for name in build.COMPILED_MODULES:
        (tmp_path / f"{name}.py").write_text("")
        (tmp_path / f"{name}.pxd").write_text("")
        (tmp_path / f"{name}{build.EXTENSION_SUFFIXES[0]}").write_text("")
    built = (tmp_path / f"engine{build.EXTENSION_SUFFIXES[0]}").stat().st_mtime
    for path in tmp_path.iterdir():
        os.utime(path, (built, built - 10 if path.suffix in (".py", ".pxd") else built))
    assert build._why_source() is None
    os.utime(tmp_path / "engine.py", (built, built + 10))
    assert "engine.py" in (build._why_source() or "")
    os.utime(tmp_path / "engine.py", (built, built - 10))
    os.utime(tmp_path / "records.pxd", (built, built + 10))
    assert "records" in (build._why_source() or "")


def test_setup_compiles_the_modules_the_build_selects() -> None:
    setup_py = (TESTS.parent.parent / "setup.py").read_text()
    listed = ", ".join(f'"{name}"' for name in build.COMPILED_MODULES)
    assert f"MODULES = ({listed})" in setup_py


def test_the_compiled_records_hold_a_time_per_state() -> None:
    # records.pxd sizes the agent's C array of times in state: it must follow STATES.
    from cloudcc.routing.records import STATES

    pxd = (Path(build.__file__).parent / "records.pxd").read_text()
    assert f"cdef public double time_in[{len(STATES)}]" in pxd


def test_a_snapshot_of_the_other_build_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudcc.routing import snapshot
    from cloudcc.routing.exceptions import InvalidConfig

    taken = cloudcc.routing.RoutingEngine("t").snapshot()
    other = "python" if build.BUILD == "compiled" else "compiled"
    monkeypatch.setattr(snapshot, "_header", lambda: (snapshot._MAGIC, other))
    with pytest.raises(InvalidConfig, match=f"taken by the {build.BUILD} build"):
        cloudcc.routing.RoutingEngine.restore(taken)


def test_a_snapshot_of_another_engine_version_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cloudcc.routing import snapshot
    from cloudcc.routing.exceptions import InvalidConfig

    with monkeypatch.context() as m:
        m.setattr(snapshot, "_MAGIC", f"{snapshot._FORMAT}6")
        taken = cloudcc.routing.RoutingEngine("t").snapshot()
    with pytest.raises(InvalidConfig, match="another version of the engine"):
        cloudcc.routing.RoutingEngine.restore(taken)


def test_the_strategy_keys_take_levels_as_they_are() -> None:
    # (compiled, most_skilled sums in a C double: a level that is not an integer counts fully)
    from types import SimpleNamespace

    from cloudcc.routing.strategies import most_skilled

    agent = SimpleNamespace(skills={"en": 7.5, "de": 2}, available_since=3.0)
    assert most_skilled(agent, (("en", 1), ("de", 1), ("fr", 1)), "q") == (-9.5, 3.0)
