"""Snapshots of a routing engine for a standby node: the engine's state as bytes and back.

The records (agents, queues, lanes, contacts, work items) reference each other densely, so
a plain pickle would recurse as deep as the longest chain of them and overflow the stack on
a large tenant. Here each record is pickled as a numbered empty shell wherever it is met,
and its fields are written afterwards, one record at a time, in the same stream (so shared
objects stay shared). Reading accepts only the classes a snapshot contains.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from cloudcc.routing import build
from cloudcc.routing.exceptions import InvalidConfig
from cloudcc.routing.records import SNAPSHOT_NUMBER, SNAPSHOT_SHELLS


class _Unset:
    """Marks a field that was never set (a class pickles by reference, so ``is`` holds)."""


#: The format: bump it when a record's or the engine's fields change.
_FORMAT = "cloudcc.routing.snapshot/"
_MAGIC = f"{_FORMAT}7"


def _header() -> tuple[str, str]:
    """What a snapshot starts with. The compiled and the source builds pickle their queue
    positions, timers and counters differently: a snapshot restores on a node of the same
    build (a deployment's nodes are). Read when used: the source build imports this module
    while ``build`` is still choosing."""
    return (_MAGIC, build.BUILD)


_ALLOWED_MODULES = ("cloudcc.routing.", "collections", "copyreg")
_ALLOWED_BUILTINS = frozenset({"frozenset", "set", "object", "getattr"})
_ALLOWED_OTHERS = frozenset(
    {("operator", "itemgetter"), ("array", "array"), ("array", "_array_reconstructor")}
)


class _Reader(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (
            module.startswith(_ALLOWED_MODULES)
            or (module == "builtins" and name in _ALLOWED_BUILTINS)
            or (module, name) in _ALLOWED_OTHERS
        ):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} has no place in a routing snapshot")


def _fields(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, name, _Unset) for name in type(obj).__slots__)


def dump(state: dict[str, Any]) -> bytes:
    """Write an engine's state (its attributes by name) and every record it reaches."""
    numbers: dict[int, int] = {}
    records: list[Any] = []

    def number(obj: object) -> int:
        n = numbers.get(id(obj))
        if n is None:
            n = numbers[id(obj)] = len(records)
            records.append(obj)
        return n

    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    token = SNAPSHOT_NUMBER.set(number)
    try:
        pickler.dump(_header())
        pickler.dump(state)
        done = 0
        while done < len(records):  # a record's fields may reach more records
            pickler.dump(_fields(records[done]))
            done += 1
    finally:
        SNAPSHOT_NUMBER.reset(token)
    return buf.getvalue()


def load(data: bytes) -> dict[str, Any]:
    """Read what ``dump`` wrote; returns the engine's attributes with its records rebuilt."""
    shells: dict[int, Any] = {}
    token = SNAPSHOT_SHELLS.set(shells)
    try:
        reader = _Reader(io.BytesIO(data))
        header = reader.load()
        if not isinstance(header, tuple) or len(header) != 2:
            raise InvalidConfig("snapshot", "not a routing engine snapshot")
        if header[0] != _MAGIC:
            if isinstance(header[0], str) and header[0].startswith(_FORMAT):
                raise InvalidConfig(
                    "snapshot",
                    f"format {header[0]} of another version of the engine; this node reads "
                    f"{_MAGIC} (replay the events instead)",
                )
            raise InvalidConfig("snapshot", "not a routing engine snapshot")
        if header != _header():
            raise InvalidConfig(
                "snapshot",
                f"taken by the {header[1]} build of the engine, this node runs the "
                f"{build.BUILD} build (cloudcc.routing.build)",
            )
        state = reader.load()
        fields: list[tuple[Any, ...]] = []
        while True:
            try:
                fields.append(reader.load())
            except EOFError:
                break
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as e:
        raise InvalidConfig("snapshot", f"unreadable: {e}") from e
    finally:
        SNAPSHOT_SHELLS.reset(token)
    if not isinstance(state, dict) or len(fields) != len(shells):
        raise InvalidConfig("snapshot", "not a routing engine snapshot")
    for n, values in enumerate(fields):
        obj = shells[n]
        slots = type(obj).__slots__
        if not isinstance(values, tuple) or len(values) != len(slots):
            raise InvalidConfig("snapshot", f"its {type(obj).__name__} records differ from these")
        for name, value in zip(slots, values, strict=True):
            if value is not _Unset:
                setattr(obj, name, value)
    return state
