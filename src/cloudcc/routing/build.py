"""Which build of the engine runs: compiled by Cython, or the Python source.

``engine.py`` and the modules of its records and keys (``records.py``, ``positions.py``,
``timers.py``, ``stats.py``, ``strategies.py``) are plain Python and run as they are. When
the package is installed with Cython and a C compiler at hand (setup.py), they are also
compiled: the ``.pxd`` files beside them make the records and the engine C structures with
typed fields and their hot methods C functions, for about 2-3x the throughput
(docs/routing.md).

The compiled modules are used unless ``CLOUDCC_PURE_PYTHON`` is set, or a source is newer
than its compiled module (an edit not rebuilt yet: the source runs, with a warning, until
``./dev setup`` or ``pip install -e .`` rebuilds). Either way the behaviour is the same: the
routing tests run against both builds.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

log = logging.getLogger(__name__)

#: The modules setup.py compiles, in import order.
COMPILED_MODULES = ("positions", "timers", "stats", "strategies", "records", "engine")

_HERE = Path(__file__).resolve().parent


def _compiled_file(name: str) -> Path | None:
    for suffix in EXTENSION_SUFFIXES:
        path = _HERE / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def _why_source() -> str | None:
    """Why the Python source must run instead of the compiled modules (None: it need not)."""
    if os.environ.get("CLOUDCC_PURE_PYTHON"):
        return "CLOUDCC_PURE_PYTHON is set"
    for name in COMPILED_MODULES:
        built = _compiled_file(name)
        if built is None:
            return "not compiled"
        sources = [_HERE / f"{name}{ext}" for ext in (".py", ".pxd")]
        newest = max(p.stat().st_mtime for p in sources if p.exists())
        if newest > built.stat().st_mtime:
            return f"{name}.py or {name}.pxd changed since it was compiled (rebuild: ./dev setup)"
    return None


def select() -> str:
    """Make ``cloudcc.routing.<module>`` the right build; returns "compiled" or "python"."""
    why = _why_source()
    if why is None:
        return "compiled"
    if why != "not compiled" and not why.startswith("CLOUDCC_PURE_PYTHON"):
        log.warning("routing engine: running the Python source: %s", why)
    package = __name__.rpartition(".")[0]
    for name in COMPILED_MODULES:
        full = f"{package}.{name}"
        if full in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(full, _HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
    return "python"


BUILD = select()
