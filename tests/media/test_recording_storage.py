"""Recordings on storage that fails: a read-only or full filesystem (a real tmpfs mount).

The call's audio must keep flowing, the failure is reported once with its reason, the
file left behind is a valid WAV whose header matches its data, and no descriptor leaks.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloudcc.media.diskwriter import QueuedWavWriter, WriterThread
from cloudcc.media.engine import MediaEngine
from cloudcc.media.exceptions import RecordingWriteError
from cloudcc.media.testing import tone_level_dbfs
from cloudcc.media.wav import WavWriter, read_wav

from .test_engine import Peers, connected, heard, play_tones


def mount_tmpfs(path: Path, size: str, read_only: bool = False) -> None:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount a small (or read-only) tmpfs; unmounted after the test."""
    mounted: list[Path] = []

    def make(size: str = "64k", read_only: bool = False) -> Path:
        path = tmp_path / f"fs{len(mounted)}"
        mount_tmpfs(path, size, read_only)
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def header_sizes(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:44]
    return int.from_bytes(head[4:8], "little"), int.from_bytes(head[40:44], "little")


def open_fds_to(path: Path) -> int:
    fd_dir = Path("/proc/self/fd")
    count = 0
    for fd in fd_dir.iterdir():
        try:
            count += os.readlink(fd) == str(path)
        except OSError:
            pass
    return count


def test_a_full_disk_leaves_a_wav_whose_header_matches_its_data(tiny_fs) -> None:
    root = tiny_fs("64k")
    path = root / "r.wav"
    writer = WavWriter(path, 2, 8000)
    chunk = b"\x01\x02\x03\x04" * 4000  # 16 kB = 0.5 s of stereo
    with pytest.raises(RecordingWriteError, match="No space left"):
        for _ in range(10):
            writer.append(chunk)
            writer.flush()
    size = path.stat().st_size
    riff, data = header_sizes(path)
    assert data == size - 44 == writer.data_bytes and riff == 36 + data
    assert 0 < data < 64 * 1024 and data % 4 == 0  # whole stereo frames only
    assert open_fds_to(path) == 0  # the descriptor was closed at the failure
    writer.append(chunk)
    writer.flush()  # later calls do nothing
    writer.close()
    pcm, rate = read_wav(path)
    assert rate == 8000 and pcm.shape == (data // 4, 2)


def test_a_read_only_folder_fails_at_create_and_leaves_no_file(tiny_fs) -> None:
    root = tiny_fs("64k", read_only=True)
    with pytest.raises(RecordingWriteError, match="Read-only file system"):
        WavWriter(root / "r.wav", 2, 8000)
    assert not (root / "r.wav").exists()


async def test_the_writer_thread_reports_a_failure_once_on_the_loop(tiny_fs) -> None:
    root = tiny_fs("32k")
    thread = WriterThread()
    reasons: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()
    writer = QueuedWavWriter(
        root / "q.wav",
        1,
        8000,
        thread,
        on_failure=lambda r: reasons.append((r, threading.get_ident() == loop_thread)),
    )
    for _ in range(20):
        writer.append(b"\0\1" * 1600)  # 0.2 s each, 4 s in all: more than 32 kB
        writer.flush()
    await writer.wait_closed()
    await asyncio.sleep(0.05)
    assert reasons == [("cannot write: No space left on device", True)]
    assert writer.size == (root / "q.wav").stat().st_size == 44 + writer.data_bytes
    thread.stop()


async def test_a_recording_on_a_full_disk_fails_while_the_bridge_carries_audio(
    engine: MediaEngine, peers: Peers, tiny_fs
) -> None:
    root = tiny_fs("48k")  # 1.5 s of stereo
    a, pa = await connected(engine, peers, "PCMU")
    b, pb = await connected(engine, peers, "PCMU")
    engine.bridge(a, b)
    recording = engine.record(root / "call.wav", left=a, right=b)
    failures: list[str] = []
    recording.on_failure = failures.append
    steady = await play_tones((pa, 1000.0), (pb, 500.0), seconds=3.0)
    assert failures == ["cannot write: No space left on device"]
    assert recording.failure == failures[0]
    # the call's audio went on through the failure, both ways, at level
    end = time.monotonic()
    assert abs(tone_level_dbfs(heard(pb, end - 1.0), 1000) - -10.0) < 1.0
    assert abs(tone_level_dbfs(heard(pa, steady), 500) - -10.0) < 1.0
    assert engine.tick_errors == 0  # the failing writes never reached the tick
    info = await recording.stop()
    path = root / "call.wav"
    riff, data = header_sizes(path)
    assert info.bytes == path.stat().st_size == 44 + data and riff == 36 + data
    assert 0.5 < info.duration_s < 1.6 and info.duration_s == data / 4 / 8000
    assert open_fds_to(path) == 0
