"""The media engine: RTP/RTCP legs, G.711 (and wideband through PyAV), DTMF, jitter
buffering and concealment, prompts and music, two-party bridges, N-party mixing with
supervision modes, hold/mute, crash-safe recording, all driven by one 20 ms clock.

No SIP or HTTP in here: the contact layer maps SDP to ``Leg.configure`` parameters.
"""

from .dtmf import DtmfEvent, DtmfSource
from .engine import Bridge, Conference, Leg, LegState, MediaEngine, Playback, Recording
from .exceptions import MediaError
from .mixer import ParticipantMode
from .player import AudioSource, PcmSource, PlaybackResult, PlaybackState, Playlist, WavSource
from .recorder import RecordingInfo, RecordingState
from .session import LegStats

__all__ = [
    "AudioSource",
    "Bridge",
    "Conference",
    "DtmfEvent",
    "DtmfSource",
    "Leg",
    "LegState",
    "LegStats",
    "MediaEngine",
    "MediaError",
    "ParticipantMode",
    "PcmSource",
    "Playback",
    "PlaybackResult",
    "PlaybackState",
    "Playlist",
    "Recording",
    "RecordingInfo",
    "RecordingState",
    "WavSource",
]
