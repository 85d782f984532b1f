"""One time format on the wire: ISO 8601 with its zone, e.g. ``2026-12-07T12:00:00.250+00:00``.

Inside the node, times are epoch seconds (floats: cheap to compare and subtract). Whatever
leaves it (API responses, the event stream, webhooks) passes through ``with_iso_times``,
which rewrites every time field, a key named ``at`` or ending in ``_at``, to ISO 8601.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso_time(epoch: float) -> str:
    """Epoch seconds as ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def is_time_key(key: str) -> bool:
    return key == "at" or key.endswith("_at")


def with_iso_times(value: Any) -> Any:
    """A copy of ``value`` (dicts and lists, nested) with its epoch time fields as ISO 8601."""
    if isinstance(value, dict):
        return {
            k: iso_time(v)
            if is_time_key(k) and isinstance(v, int | float) and not isinstance(v, bool)
            else with_iso_times(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [with_iso_times(v) for v in value]
    return value
