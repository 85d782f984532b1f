"""Errors raised by the SIP package, each carrying what its caller needs to report it.

Cores raise these; the endpoint translates them once into SIP responses (RFC 3261 §21)
or into call events. Nothing here builds a SIP message.
"""

from __future__ import annotations


class SipError(Exception):
    """Base class of every error of the SIP package."""


class ParseError(SipError):
    """A message, header, URI or body that does not follow its grammar.

    ``status`` is the response a UAS sends for it (400 unless a more specific code
    applies, e.g. 505 for an unknown SIP version or 416 for an unknown URI scheme).
    ``message`` is the partly parsed message when the start line and the header lines
    could be split, so that the endpoint can still answer it.
    """

    def __init__(self, detail: str, status: int = 400, message: object | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.message = message


class MessageTooLarge(ParseError):
    """The message exceeds the configured size cap (RFC 3261 §18.1.1 leaves it to us)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the cap of {limit}", 413)
        self.size = size
        self.limit = limit


class TooManyHeaders(ParseError):
    """More header fields than the configured cap."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} header fields exceed the cap of {limit}", 400)
        self.count = count
        self.limit = limit


class SdpError(SipError):
    """An SDP body that does not follow RFC 4566."""


class OfferAnswerError(SipError):
    """An offer that cannot be answered (RFC 3264 §6): no common media or codec."""

    status = 488


class InvalidTransition(SipError):
    """A state machine was asked for a transition its table does not allow."""

    def __init__(self, machine: str, state: object, event: str) -> None:
        super().__init__(f"{machine}: no transition from {state} on {event!r}")
        self.machine = machine
        self.state = state
        self.event = event


class DialogError(SipError):
    """An in-dialog request or response that violates RFC 3261 §12."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.status = status


class CSeqOutOfOrder(DialogError):
    """A request whose CSeq is lower than the last one seen in the dialog (§12.2.2)."""

    def __init__(self, received: int, last: int) -> None:
        super().__init__(f"CSeq {received} is lower than {last}", 500)
        self.received = received
        self.last = last


class AuthError(SipError):
    """A malformed challenge or Authorization header (RFC 2617, RFC 8760)."""


class RegistrationError(SipError):
    """A REGISTER the registrar refuses (RFC 3261 §10.3); ``status`` is the answer."""

    def __init__(self, detail: str, status: int, min_expires: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.min_expires = min_expires


class TransportError(SipError):
    """A message could not be sent: no listener, no route or the connection failed."""


class CallError(SipError):
    """A call-control operation that cannot be performed in the call's current state."""


class CallFailed(CallError):
    """An INVITE (or in-dialog request) ended with a final non-2xx response."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status
        self.reason = reason


class CallEnded(CallError):
    """The call ended while the operation was waiting; ``cause`` says why."""

    def __init__(self, cause: object) -> None:
        super().__init__(f"call ended: {cause}")
        self.cause = cause
