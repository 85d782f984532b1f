"""N-party mixing with mix-minus and supervision modes (sans-I/O).

Who hears whom is a gain matrix ``W`` (listener x speaker); a tick's output for
every participant is ``W @ frames``, so each hears everyone audible to it but itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .exceptions import FrameSizeError, NotAParticipant


class ParticipantMode(enum.Enum):
    SPEAK = "speak"  # an ordinary participant: hears all, heard by all
    LISTEN = "listen"  # silent monitoring: hears all, heard by none
    WHISPER = "whisper"  # coaching: hears all, heard only by its whisper target
    BARGE = "barge"  # a supervisor who joined: hears all, heard by all


@dataclass(slots=True)
class Participant:
    key: str
    mode: ParticipantMode = ParticipantMode.SPEAK
    whisper_to: str | None = None
    muted: bool = False
    held: bool = False


class Mix:
    """The mixing rules of one conference."""

    def __init__(self) -> None:
        self._participants: dict[str, Participant] = {}
        self._matrix: NDArray[np.float32] | None = None
        self._public: NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return len(self._participants)

    def __contains__(self, key: object) -> bool:
        return key in self._participants

    @property
    def keys(self) -> list[str]:
        return list(self._participants)

    def participant(self, key: str) -> Participant:
        try:
            return self._participants[key]
        except KeyError:
            raise NotAParticipant(key) from None

    def add(
        self, key: str, mode: ParticipantMode = ParticipantMode.SPEAK, whisper_to: str | None = None
    ) -> None:
        self._participants[key] = Participant(key, mode, whisper_to)
        self._matrix = None

    def remove(self, key: str) -> None:
        if self._participants.pop(key, None) is None:
            raise NotAParticipant(key)
        self._matrix = None

    def update(
        self,
        key: str,
        *,
        mode: ParticipantMode | None = None,
        whisper_to: str | None = None,
        muted: bool | None = None,
        held: bool | None = None,
    ) -> None:
        p = self.participant(key)
        if mode is not None:
            p.mode = mode
            p.whisper_to = whisper_to
        if muted is not None:
            p.muted = muted
        if held is not None:
            p.held = held
        self._matrix = None

    def hears(self, listener: str, speaker: str) -> bool:
        """Whether ``listener`` hears ``speaker`` under the current modes."""
        if listener == speaker:
            return False  # mix-minus
        lp = self.participant(listener)
        sp = self.participant(speaker)
        if lp.held or sp.held or sp.muted:
            return False
        if sp.mode is ParticipantMode.LISTEN:
            return False
        if sp.mode is ParticipantMode.WHISPER:
            return sp.whisper_to == listener
        return True

    def matrix(self) -> NDArray[np.float32]:
        """W[i, j] = 1 when participant i hears participant j (order of ``keys``)."""
        if self._matrix is None:
            keys = self.keys
            self._matrix = np.array(
                [[1.0 if self.hears(i, j) else 0.0 for j in keys] for i in keys],
                dtype=np.float32,
            ).reshape(len(keys), len(keys))
            # the conversation as a neutral observer (a recording) hears it
            self._public = np.array(
                [0.0 if _private(p) else 1.0 for p in self._participants.values()],
                dtype=np.float32,
            )
        return self._matrix

    def public_weights(self) -> NDArray[np.float32]:
        """Per participant: 1 when a recording of the conversation keeps its voice."""
        self.matrix()
        assert self._public is not None
        return self._public

    def mix(self, frames: NDArray[np.int16]) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
        """(what each participant hears (n, samples), the public mix (samples,))."""
        w = self.matrix()
        assert self._public is not None
        if frames.ndim != 2 or frames.shape[0] != w.shape[0]:
            raise FrameSizeError(f"({w.shape[0]}, samples) int16", str(frames.shape))
        x = frames.astype(np.float32)
        heard = np.clip(w @ x, -32768, 32767).astype(np.int16)
        public = np.clip(self._public @ x, -32768, 32767).astype(np.int16)
        return heard, public


def _private(p: Participant) -> bool:
    """Not part of the conversation a recording keeps: held, muted, listening, whispering."""
    return p.held or p.muted or p.mode in (ParticipantMode.LISTEN, ParticipantMode.WHISPER)
