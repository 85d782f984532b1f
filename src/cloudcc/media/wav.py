"""WAV (RIFF/WAVE) reading and crash-safe writing.

Reads PCM 8/16-bit, µ-law and A-law WAVs (format tags 1, 7, 6; WAVE_FORMAT_EXTENSIBLE
with a PCM subformat). Writes 16-bit PCM with the header patched as data is
flushed, so a killed process leaves a valid file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
from numpy.typing import NDArray

from . import g711
from .exceptions import AudioFormatError, RecordingWriteError

WAVE_PCM: Final = 1
WAVE_ALAW: Final = 6
WAVE_MULAW: Final = 7
WAVE_EXTENSIBLE: Final = 0xFFFE


@dataclass(frozen=True, slots=True)
class WavFormat:
    format_tag: int
    channels: int
    rate: int
    bits: int
    data_offset: int
    data_size: int  # bytes of sample data actually present in the file

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.bits // 8

    @property
    def frames(self) -> int:
        return self.data_size // self.frame_bytes


def read_format(f: BinaryIO, name: str) -> WavFormat:
    """Walk the RIFF chunks up to ``data``; tolerate a data size left at 0 by a crash."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioFormatError(name, "not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            raise AudioFormatError(name, "no data chunk")
        cid, size = struct.unpack("<4sI", chunk)
        if cid == b"fmt ":
            body = f.read(size + (size & 1))
            if len(body) < 16:
                raise AudioFormatError(name, "fmt chunk too short")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == WAVE_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise AudioFormatError(name, "data chunk before fmt chunk")
            offset = f.tell()
            end = f.seek(0, os.SEEK_END)
            available = end - offset
            present = available if size == 0 or size > available else size
            tag, channels, rate, bits = fmt
            if tag not in (WAVE_PCM, WAVE_ALAW, WAVE_MULAW):
                raise AudioFormatError(name, f"unsupported WAV format tag {tag}")
            if tag == WAVE_PCM and bits not in (8, 16):
                raise AudioFormatError(name, f"unsupported PCM sample size {bits} bits")
            if channels < 1 or rate < 1:
                raise AudioFormatError(name, "bad channel count or rate")
            f.seek(offset)
            fmt_out = WavFormat(tag, channels, rate, bits, offset, present)
            return WavFormat(
                tag, channels, rate, bits, offset, present - present % fmt_out.frame_bytes
            )
        else:
            f.seek(size + (size & 1), os.SEEK_CUR)


def to_pcm16(raw: bytes, fmt: WavFormat) -> NDArray[np.int16]:
    """Samples (interleaved) of raw WAV data as int16."""
    if fmt.format_tag == WAVE_MULAW:
        return g711.ulaw_decode(raw)
    if fmt.format_tag == WAVE_ALAW:
        return g711.alaw_decode(raw)
    if fmt.bits == 8:
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def read_wav(path: str | os.PathLike[str]) -> tuple[NDArray[np.int16], int]:
    """Whole file as int16 samples, shape (frames, channels), and the sample rate."""
    with open(path, "rb") as f:
        fmt = read_format(f, os.fspath(path))
        raw = f.read(fmt.data_size)
    return to_pcm16(raw, fmt).reshape(-1, fmt.channels), fmt.rate


class WavReader:
    """Streams a WAV file as mono int16 at its own rate, a block at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise AudioFormatError(self.path, f"cannot open: {exc.strerror}") from exc
        try:
            self.format = read_format(self._file, self.path)
        except Exception:
            self._file.close()
            raise
        self._remaining = self.format.data_size

    @property
    def rate(self) -> int:
        return self.format.rate

    def read(self, frames: int) -> NDArray[np.int16]:
        """Up to ``frames`` mono samples; empty at the end."""
        fmt = self.format
        want = min(self._remaining, frames * fmt.frame_bytes)
        raw = self._file.read(want)
        raw = raw[: len(raw) - len(raw) % fmt.frame_bytes]
        self._remaining -= len(raw)
        pcm = to_pcm16(raw, fmt)
        if fmt.channels > 1:
            pcm = pcm.reshape(-1, fmt.channels).mean(axis=1).astype(np.int16)
        return pcm

    def close(self) -> None:
        self._file.close()


def wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    """44-byte canonical header for 16-bit PCM."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        WAVE_PCM,
        channels,
        rate,
        rate * channels * 2,
        channels * 2,
        16,
        b"data",
        data_bytes,
    )


def write_wav(path: str | os.PathLike[str], pcm: NDArray[np.int16], rate: int = 8000) -> None:
    """Write int16 samples, shape (frames,) or (frames, channels), to a WAV file."""
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    data = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
    with open(path, "wb") as f:
        f.write(wav_header(channels, rate, len(data)) + data)


class WavWriter:
    """Appends 16-bit PCM; ``flush()`` writes buffered samples and patches the header sizes,
    so the file on disk is always a valid WAV of everything flushed so far.

    A failed create or write (read-only or full storage) raises RecordingWriteError once:
    the file is cut back to the whole frames written, its header patched to match, and
    the descriptor closed; later calls do nothing.
    """

    def __init__(
        self, path: str | os.PathLike[str], channels: int, rate: int, durable: bool = False
    ) -> None:
        self.path = os.fspath(path)
        self.channels = channels
        self.rate = rate
        self.durable = durable
        self.data_bytes = 0  # sample bytes on disk, always whole frames
        self.failure: str | None = None
        self._pending = bytearray()
        self._fd: int | None = None
        self._created = False
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            _write_all(self._fd, wav_header(channels, rate, 0))
            self._created = True
        except OSError as exc:
            self._fail(exc, "cannot create")

    def append(self, samples: bytes) -> None:
        """Queue interleaved little-endian int16 samples (written at the next flush)."""
        if self._fd is not None:
            self._pending += samples

    def flush(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            if self._pending:
                # O_WRONLY without O_APPEND: the offset follows the writes
                _write_all(fd, self._pending)
                self.data_bytes += len(self._pending)
                self._pending.clear()
            self._patch_header(fd)
            if self.durable:
                os.fsync(fd)
        except OSError as exc:
            self._fail(exc, "cannot write")

    def _patch_header(self, fd: int) -> None:
        # RIFF size at offset 4, data size at offset 40 (RIFF/WAVE: little-endian)
        os.pwrite(fd, struct.pack("<I", 36 + self.data_bytes), 4)
        os.pwrite(fd, struct.pack("<I", self.data_bytes), 40)

    def _fail(self, exc: OSError, what: str) -> None:
        fd, self._fd = self._fd, None
        self._pending = bytearray()  # a new one: the failed write's view may still hold it
        self.failure = f"{what}: {exc.strerror or exc}"
        if fd is not None:
            if self._created:
                # drop a torn write, so the header and the data agree (both fit: no new blocks)
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 44 + self.data_bytes)
                    self._patch_header(fd)
            os.close(fd)
            if not self._created:  # not even a header: leave no stray file
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
        raise RecordingWriteError(self.path, self.failure) from exc

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.flush()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    @property
    def frames(self) -> int:
        return (self.data_bytes + len(self._pending)) // (2 * self.channels)

    @property
    def size(self) -> int:
        """Bytes of the file on disk (0 when it could not be created)."""
        return 44 + self.data_bytes if self._created else 0


def _write_all(fd: int, data: bytes | bytearray) -> None:
    """os.write until everything is written; a short write on a full disk raises ENOSPC."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]
