"""Build hook: the routing engine's hot modules compiled with Cython (metadata: pyproject.toml).

The modules in ``MODULES`` (``src/cloudcc/routing/``) stay plain Python; the ``.pxd`` files
beside them give Cython their C types. Without Cython or a C compiler, or with
``CLOUDCC_PURE_PYTHON=1``, nothing is compiled and the Python source runs (the same
behaviour, slower): see ``cloudcc.routing.build``.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

#: In import order; cloudcc.routing.build.COMPILED_MODULES names the same.
MODULES = ("positions", "timers", "stats", "strategies", "records", "engine")
COMPILED = [f"src/cloudcc/routing/{name}.py" for name in MODULES]

DIRECTIVES = {
    "language_level": 3,
    "annotation_typing": False,  # the types are the .pxd's (annotations are for mypy)
    "infer_types": True,
    "nonecheck": True,  # a None where a record is typed raises instead of crashing the node
}


class OptionalBuildExt(build_ext):
    """A failed compilation leaves the Python source to run; it does not fail the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # no compiler, no headers...
            self.warn(f"routing engine not compiled ({e}); the Python source will run")

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:
            self.warn(f"{ext.name} not compiled ({e}); the Python source will run")


def extensions() -> list[Any]:
    if os.environ.get("CLOUDCC_PURE_PYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    return cythonize(COMPILED, compiler_directives=DIRECTIVES, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
