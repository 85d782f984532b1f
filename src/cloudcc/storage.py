"""Is a data directory usable? Writable and with room left, for ``/readyz`` and operators.

The check really writes (and removes) a small probe file: permission bits, read-only
mounts and quota all show up as they would for a recording.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROBE_BYTES = 4096
MIN_FREE_BYTES = 64 * 1024 * 1024  # below this, a recording would soon fail


@dataclass(frozen=True)
class StorageStatus:
    path: str
    ok: bool
    writable: bool
    free_bytes: int | None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_storage(path: Path, min_free_bytes: int = MIN_FREE_BYTES) -> StorageStatus:
    """Probe ``path`` (created if missing) by writing a small file into it. Blocking I/O."""
    shown = str(path)
    free: int | None = None
    try:
        path.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(path).free
        probe = path / f".probe-{uuid.uuid4().hex}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                if os.write(fd, b"\0" * PROBE_BYTES) < PROBE_BYTES:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            finally:
                os.close(fd)
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
    except OSError as exc:
        return StorageStatus(shown, False, False, free, exc.strerror or str(exc))
    if free < min_free_bytes:
        reason = f"only {free // 1024} KiB free (needs {min_free_bytes // 1024} KiB)"
        return StorageStatus(shown, False, True, free, reason)
    return StorageStatus(shown, True, True, free)
