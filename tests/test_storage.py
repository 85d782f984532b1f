"""The storage check behind ``/readyz``: a real read-only and a real nearly full tmpfs."""

from __future__ import annotations

from pathlib import Path

from cloudcc.storage import check_storage
from tests.media.test_recording_storage import mount_tmpfs


def test_storage_check_tells_writable_full_and_read_only_apart(tmp_path: Path) -> None:
    import subprocess

    good = check_storage(tmp_path / "rec", min_free_bytes=1)
    assert good.ok and good.writable and good.free_bytes and good.reason is None
    assert list((tmp_path / "rec").iterdir()) == []  # the probe is removed
    ro, small = tmp_path / "ro", tmp_path / "small"
    mount_tmpfs(ro, "64k", read_only=True)
    try:
        mount_tmpfs(small, "64k")
        try:
            status = check_storage(ro)
            assert not status.ok and not status.writable
            assert status.reason == "Read-only file system"
            status = check_storage(small)  # writable, but far below the free-space floor
            assert not status.ok and status.writable and "KiB free" in (status.reason or "")
            (small / "fill").write_bytes(b"\0" * 64 * 1024)
            status = check_storage(small, min_free_bytes=0)
            assert not status.writable and status.reason == "No space left on device"
        finally:
            subprocess.run(["umount", "-l", str(small)], check=False)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
