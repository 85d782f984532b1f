"""Recording file I/O off the media tick: one writer thread per engine.

The 20 ms tick only cuts audio into byte strings and queues them; the thread creates,
appends, patches headers and closes. A slow or failing disk then delays nothing but
the thread, and a failure (read-only or full storage) is reported once, on the event
loop, through the writer's ``on_failure`` callback.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from .exceptions import RecordingWriteError
from .wav import WavWriter

log = logging.getLogger("cloudcc.media.diskwriter")

Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any]"]


class WriterThread:
    """Runs file jobs in order on one daemon thread, started on first use."""

    def __init__(self, name: str = "cloudcc-recording-writer") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._jobs.put((fn, future))
        return future

    @property
    def backlog(self) -> int:
        return self._jobs.qsize()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)


class QueuedWavWriter:
    """The loop-side face of a WavWriter whose I/O runs on a WriterThread.

    Same surface as WavWriter for the Recorder (``append``, ``flush``, ``close``,
    ``frames``); ``failure`` is set (and ``on_failure(reason)`` called on the loop)
    when the file cannot be created or written; what was written stays a valid WAV.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        channels: int,
        rate: int,
        thread: WriterThread,
        *,
        durable: bool = False,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.channels = channels
        self.rate = rate
        self.on_failure = on_failure
        self.failure: str | None = None
        self._thread = thread
        self._loop = asyncio.get_running_loop()
        self._appended = 0
        self._pending = bytearray()
        self._wav: WavWriter | None = None
        self._closed: concurrent.futures.Future[None] | None = None
        thread.submit(lambda: self._open(durable))

    # --- on the loop
    def append(self, samples: bytes) -> None:
        if self.failure is None:
            self._pending += samples
            self._appended += len(samples)

    def flush(self) -> None:
        if self._pending and self.failure is None:
            data = bytes(self._pending)
            self._pending.clear()
            self._thread.submit(lambda: self._write(data))
        elif self.failure is None:
            self._pending.clear()

    def close(self) -> None:
        if self._closed is None:
            self.flush()
            self._closed = self._thread.submit(self._close)

    async def wait_closed(self) -> None:
        self.close()
        assert self._closed is not None
        await asyncio.wrap_future(self._closed)

    @property
    def frames(self) -> int:
        return self._appended // (2 * self.channels)

    @property
    def data_bytes(self) -> int:
        """Sample bytes on disk (exact once ``wait_closed`` returned)."""
        return self._wav.data_bytes if self._wav is not None else 0

    @property
    def size(self) -> int:
        return self._wav.size if self._wav is not None else 0

    # --- on the writer thread
    def _open(self, durable: bool) -> None:
        try:
            self._wav = WavWriter(self.path, self.channels, self.rate, durable=durable)
        except RecordingWriteError as exc:
            self._failed(exc.reason)

    def _write(self, data: bytes) -> None:
        wav = self._wav
        if wav is None or wav.failure is not None:
            return
        wav.append(data)
        try:
            wav.flush()
        except RecordingWriteError as exc:
            self._failed(exc.reason)

    def _close(self) -> None:
        wav = self._wav
        if wav is None or wav.failure is not None:
            return
        try:
            wav.close()
        except RecordingWriteError as exc:
            self._failed(exc.reason)

    def _failed(self, reason: str) -> None:
        self.failure = reason
        if self.on_failure is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._report, reason)

    def _report(self, reason: str) -> None:
        if self.on_failure is not None:
            try:
                self.on_failure(reason)
            except Exception:
                log.exception("recording %s: failure listener failed", self.path)
