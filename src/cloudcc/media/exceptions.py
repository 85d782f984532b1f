"""Errors raised by the media engine; each carries what a caller needs to report it."""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every media error."""


class MalformedPacket(MediaError):
    """A datagram that is not a valid RTP/RTCP/telephone-event packet (dropped by the engine)."""

    def __init__(self, kind: str, reason: str, size: int) -> None:
        super().__init__(f"malformed {kind} packet ({size} bytes): {reason}")
        self.kind = kind
        self.reason = reason
        self.size = size


class RtpParseError(MalformedPacket):
    def __init__(self, reason: str, size: int) -> None:
        super().__init__("RTP", reason, size)


class RtcpParseError(MalformedPacket):
    def __init__(self, reason: str, size: int) -> None:
        super().__init__("RTCP", reason, size)


class TelephoneEventParseError(MalformedPacket):
    def __init__(self, reason: str, size: int) -> None:
        super().__init__("telephone-event", reason, size)


class UnsupportedCodec(MediaError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unsupported codec {name!r}")
        self.name = name


class FrameSizeError(MediaError):
    """PCM of the wrong shape or type handed to a codec, mixer or recorder."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.expected = expected
        self.got = got


class PortRangeExhausted(MediaError):
    def __init__(self, port_min: int, port_max: int) -> None:
        super().__init__(f"no free RTP/RTCP port pair in {port_min}-{port_max}")
        self.port_min = port_min
        self.port_max = port_max


class LegClosed(MediaError):
    def __init__(self, leg_id: str) -> None:
        super().__init__(f"leg {leg_id} is closed")
        self.leg_id = leg_id


class LegNotConfigured(MediaError):
    def __init__(self, leg_id: str) -> None:
        super().__init__(f"leg {leg_id} has no remote address or codec yet; call configure()")
        self.leg_id = leg_id


class LegBusy(MediaError):
    """The leg is already attached to a bridge or conference."""

    def __init__(self, leg_id: str, attached_to: str) -> None:
        super().__init__(f"leg {leg_id} is already in {attached_to}")
        self.leg_id = leg_id
        self.attached_to = attached_to


class NotAParticipant(MediaError):
    def __init__(self, leg_id: str) -> None:
        super().__init__(f"leg {leg_id} is not in this conference")
        self.leg_id = leg_id


class InvalidDtmfDigit(MediaError):
    def __init__(self, digit: str) -> None:
        super().__init__(f"not a DTMF digit: {digit!r} (expected 0-9, *, #, A-D)")
        self.digit = digit


class IllegalTransition(MediaError):
    """A state machine was asked for a transition its table does not allow."""

    def __init__(self, machine: str, current: str, target: str) -> None:
        super().__init__(f"{machine}: cannot go from {current} to {target}")
        self.machine = machine
        self.current = current
        self.target = target


class AudioFormatError(MediaError):
    """A WAV file or PCM array the player/recorder cannot use."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class EngineNotRunning(MediaError):
    def __init__(self) -> None:
        super().__init__("the media engine is not started")


class RecordingWriteError(MediaError):
    """A recording's file could not be created or written (read-only or full storage).

    The file left behind (if any) is a valid WAV of what was written before the error.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"recording {path}: {reason}")
        self.path = path
        self.reason = reason
