"""Taking a voicemail message on a call's media leg: it ends on the mailbox's end key, on
silence once the caller has spoken, at the maximum length, or when the caller hangs up.

The leg gives the received audio as 20 ms frames (after the jitter buffer) and the keys as
DTMF events (RFC 4733, in-band or SIP INFO); nothing here does I/O of its own.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np

from cloudcc.media.dtmf import DtmfEvent
from cloudcc.media.engine import Leg

#: A 20 ms frame whose RMS is above this (int16; about -40 dBFS) holds sound, not silence.
VOICE_RMS = 300.0
FRAME_SECONDS = 0.02


class MessageEnd:
    """Watches a leg for the end of a message; ``reason`` is key | silence | max_length."""

    def __init__(self, silence_seconds: float, end_key: str) -> None:
        self.silence_frames = round(silence_seconds / FRAME_SECONDS) if silence_seconds else 0
        self.end_key = end_key
        self.heard_voice = False
        self._quiet = 0
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_frame(self, frame: np.ndarray) -> None:
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) if len(frame) else 0.0
        if rms > VOICE_RMS:
            self.heard_voice = True
            self._quiet = 0
            return
        self._quiet += 1
        # Silence ends a message only after the caller said something: a caller who is
        # still drawing breath after the tone is not cut off.
        if self.heard_voice and self.silence_frames and self._quiet >= self.silence_frames:
            self._finish("silence")

    def on_dtmf(self, event: DtmfEvent) -> None:
        if event.digit == self.end_key:
            self._finish("key")

    def _finish(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_result(reason)


async def wait_for_end(
    leg: Leg, *, max_seconds: float, silence_seconds: float, end_key: str
) -> MessageEnd:
    """Wait until the message ends (``end.done`` holds why); cancelled when the caller
    hangs up."""
    end = MessageEnd(silence_seconds, end_key)
    stop_frames = leg.add_listener(end.on_frame)
    stop_keys = leg.on_dtmf(end.on_dtmf)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(end.done), max_seconds)
        if not end.done.done():
            end.done.set_result("max_length")
        return end
    finally:
        stop_frames()
        stop_keys()
