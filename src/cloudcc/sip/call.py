"""Call handles: what the contact layer sees of a SIP dialog, never a SIP message.

An :class:`IncomingCall` is made for each new INVITE; an :class:`OutgoingCall` by
``SipEndpoint.call``. Both expose call-control coroutines (ring, answer, reject,
hangup, reinvite/hold, INFO DTMF, REFER) and an event stream (``async for event in
call.events()``). Requests that need the app's decision arrive as events with
methods to answer them (``ReinviteReceived.accept``, ``ReferReceived.notify``); if
the app does not answer a re-INVITE in time the endpoint answers it itself,
mirroring the offered direction (RFC 3264 §8.4 hold).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from .auth import Credential, authorize, pick_challenge
from .dialog import (
    Dialog,
    DialogState,
    Refresher,
    SessionIntervalTooSmall,
    SessionTimer,
    negotiate_as_uas,
    parse_session_expires,
)
from .exceptions import (
    AuthError,
    CallEnded,
    CallError,
    CallFailed,
    CSeqOutOfOrder,
    DialogError,
    InvalidTransition,
    OfferAnswerError,
    ParseError,
    SdpError,
)
from .headers import parse_name_address
from .message import REASON_PHRASES, Request, Response, make_response, new_branch, new_tag
from .sdp import Direction, SessionDescription, parse_sdp
from .transaction import (
    Action,
    ClientInviteTransaction,
    Deliver,
    ServerInviteTransaction,
    ServerTransaction,
    TimedOut,
    TxState,
)
from .transport import Address, Target
from .uri import SipUri, unescape

if TYPE_CHECKING:
    from .endpoint import SipEndpoint

log = logging.getLogger("cloudcc.sip.call")

SDP = "application/sdp"


# ---------------------------------------------------------------------- events


class EndCause(enum.Enum):
    REMOTE_HANGUP = "remote_hangup"  # BYE from the peer
    LOCAL_HANGUP = "local_hangup"  # hangup() by the app
    CANCELLED = "cancelled"  # CANCEL before answer (either side)
    REJECTED = "rejected"  # we rejected an incoming call
    FAILED = "failed"  # an outgoing call got a final error response
    SESSION_EXPIRED = "session_expired"  # RFC 4028 session timer ran out
    TIMEOUT = "timeout"  # no response, no ACK, or 408/481 inside the dialog
    TRANSPORT_ERROR = "transport_error"


@dataclass(frozen=True)
class Ringing:
    """Outgoing call: 180/183 received; ``sdp`` is early media when present."""

    status: int
    sdp: SessionDescription | None = None


@dataclass(frozen=True)
class Answered:
    """Outgoing call: 2xx received and ACKed; ``sdp`` is the remote answer."""

    sdp: SessionDescription | None


@dataclass(frozen=True)
class Failed:
    """Outgoing call: every branch ended with a final error (the best one is given)."""

    status: int
    reason: str = ""


@dataclass(frozen=True)
class Cancelled:
    """Incoming call: the caller sent CANCEL before the answer."""


@dataclass(frozen=True)
class Ended:
    cause: EndCause
    status: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class DtmfReceived:
    """A digit from SIP INFO (application/dtmf-relay or application/dtmf)."""

    digit: str
    duration_ms: int = 0


@dataclass(frozen=True)
class Replaces:
    """The Replaces header of RFC 3891, as carried in a REFER's Refer-To."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def __str__(self) -> str:
        early = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"

    @classmethod
    def parse(cls, value: str) -> Replaces:
        call_id, *params = (p.strip() for p in value.split(";"))
        found: dict[str, str] = {}
        early = False
        for param in params:
            name, _, v = param.partition("=")
            if name.lower() == "early-only":
                early = True
            else:
                found[name.lower()] = v
        if not call_id or "to-tag" not in found or "from-tag" not in found:
            raise ParseError(f"bad Replaces {value[:80]!r}")
        return cls(call_id, found["to-tag"], found["from-tag"], early)


class ReinviteReceived:
    """The peer sent a new offer (re-INVITE or UPDATE); call ``accept`` or ``reject``.

    ``offer`` is None for an offerless re-INVITE: then ``accept`` takes our offer and
    the answer comes in the ACK. Unanswered, the endpoint answers after
    ``reinvite_answer_timeout`` with our last SDP, direction mirrored.
    """

    def __init__(self, method: str, offer: SessionDescription | None) -> None:
        self.method = method
        self.offer = offer
        self._decision: asyncio.Future[tuple[int, SessionDescription | None]] = (
            asyncio.get_running_loop().create_future()
        )

    @property
    def is_hold(self) -> bool:
        return self.offer is not None and self.offer.is_hold

    def accept(self, answer: SessionDescription) -> None:
        if not self._decision.done():
            self._decision.set_result((200, answer))

    def reject(self, status: int = 488) -> None:
        if not self._decision.done():
            self._decision.set_result((status, None))

    def __repr__(self) -> str:
        return f"ReinviteReceived({self.method}, hold={self.is_hold})"


class ReferReceived:
    """The peer asks us to transfer (REFER, RFC 3515). We answered 202 already.

    Report the outcome with ``notify(status)``: 1xx while trying, then a final code;
    the final NOTIFY ends the implicit subscription.
    """

    def __init__(
        self,
        call: Call,
        target: str,
        replaces: Replaces | None,
        referred_by: str | None,
    ) -> None:
        self._call = call
        self.target = target
        self.replaces = replaces
        self.referred_by = referred_by
        self.done = False
        self._previous: asyncio.Future[None] | None = None  # NOTIFYs go out in order

    async def notify(self, status: int, reason: str | None = None) -> None:
        if self.done:
            raise CallError("the transfer subscription has already ended")
        self.done = status >= 200
        await self._send(status, reason, final=self.done)

    def _send(self, status: int, reason: str | None, *, final: bool) -> asyncio.Future[None]:
        previous = self._previous

        async def send() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            await self._call._notify_refer(status, reason, final=final)

        self._previous = asyncio.ensure_future(send())
        return self._previous

    def __repr__(self) -> str:
        return f"ReferReceived({self.target!r}, replaces={self.replaces})"


@dataclass(frozen=True)
class TransferProgress:
    """A NOTIFY about a REFER we sent: the sipfrag status and whether it is final."""

    status: int
    reason: str
    final: bool


CallEvent = (
    Ringing
    | Answered
    | Failed
    | Cancelled
    | Ended
    | ReinviteReceived
    | DtmfReceived
    | ReferReceived
    | TransferProgress
)


@dataclass(frozen=True)
class RequestInfo:
    """What the app may look at of an incoming request (no SIP message exposed)."""

    method: str
    call_id: str
    request_user: str | None
    request_host: str
    from_user: str | None
    from_host: str
    from_display: str | None
    to_user: str | None
    to_host: str
    source: Address
    transport: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# Headers the app can read; the rest of the message stays inside sip/.
_EXPOSED = ("user-agent", "p-asserted-identity", "diversion", "subject", "priority",
            "alert-info", "call-info", "organization", "referred-by", "replaces")  # fmt: skip


def request_info(request: Request, source: Address, transport: str) -> RequestInfo:
    ruri = request.uri
    from_ = request.from_
    to = request.to
    fu = from_.uri
    tu = to.uri
    headers = {k: v[0] for k, v in request.headers.items() if k in _EXPOSED or k.startswith("x-")}
    return RequestInfo(
        method=request.method,
        call_id=request.call_id,
        request_user=_user(ruri),
        request_host=ruri.host if isinstance(ruri, SipUri) else str(ruri),
        from_user=_user(fu),
        from_host=fu.host if isinstance(fu, SipUri) else str(fu),
        from_display=from_.display,
        to_user=_user(tu),
        to_host=tu.host if isinstance(tu, SipUri) else str(tu),
        source=source,
        transport=transport,
        headers=headers,
    )


def _user(uri: object) -> str | None:
    if isinstance(uri, SipUri):
        return unescape(uri.user) if uri.user is not None else None
    return None


# ------------------------------------------------------------------------ calls


class CallState(enum.Enum):
    RINGING = "ringing"  # INVITE in progress, no final response yet
    ANSWERED = "answered"  # incoming: 2xx sent, waiting for the ACK
    ESTABLISHED = "established"
    ENDED = "ended"


class Call:
    """What incoming and outgoing calls share: dialog, SDP state, in-dialog requests."""

    TRANSITIONS: ClassVar[dict[tuple[CallState, str], CallState]] = {
        (CallState.RINGING, "answer"): CallState.ANSWERED,
        (CallState.ANSWERED, "ack"): CallState.ESTABLISHED,
        (CallState.RINGING, "established"): CallState.ESTABLISHED,
        (CallState.RINGING, "end"): CallState.ENDED,
        (CallState.ANSWERED, "end"): CallState.ENDED,
        (CallState.ESTABLISHED, "end"): CallState.ENDED,
    }

    def __init__(self, endpoint: SipEndpoint, call_id: str, now: float) -> None:
        self._endpoint = endpoint
        self.call_id = call_id
        self.dialog: Dialog | None = None
        self.state = CallState.RINGING
        self.history: list[tuple[CallState, float]] = [(CallState.RINGING, now)]
        self.local_sdp: SessionDescription | None = None
        self.remote_sdp: SessionDescription | None = None
        self.owner: object = None
        self.end: Ended | None = None
        loop = asyncio.get_running_loop()
        self._history: list[CallEvent] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._cursor = 0  # next_event()'s position in the history
        self._ended: asyncio.Future[Ended] = loop.create_future()
        self._peer: Target | None = None  # symmetric target for in-dialog requests
        self._credentials: Credential | None = None
        self._invite_busy = False  # an INVITE transaction in progress (glare, §14.1)
        self._accepted_tx: ServerInviteTransaction | None = None
        self._ack_waiter: asyncio.Future[Request] | None = None
        self._pending_reinvite: ReinviteReceived | None = None

    # ----------------------------------------------------------- app surface
    async def events(self) -> AsyncIterator[CallEvent]:
        """Every event of the call from its start, ending after :class:`Ended`.

        Each iterator sees all events, so several consumers may iterate at once.
        """
        index = 0
        while True:
            while index >= len(self._history):
                await self._changed()
            event = self._history[index]
            index += 1
            yield event
            if isinstance(event, Ended):
                return

    async def next_event(self, wait: float | None = None) -> CallEvent:
        """The next event not yet returned by ``next_event``; TimeoutError after ``wait`` s."""
        async with asyncio.timeout(wait):
            while self._cursor >= len(self._history):
                await self._changed()
        event = self._history[self._cursor]
        self._cursor += 1
        return event

    async def _changed(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def wait_ended(self) -> Ended:
        return await asyncio.shield(self._ended)

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def established(self) -> bool:
        return self.state is CallState.ESTABLISHED

    @property
    def peer(self) -> tuple[str, str, int] | None:
        """(transport, host, port) in-dialog requests go to when there is no route set."""
        if self._peer is None:
            return None
        return (self._peer.kind, str(self._peer.address[0]), int(self._peer.address[1]))

    async def hangup(self) -> None:
        """End the call from our side: BYE once established (§15.1)."""
        if self.state is CallState.ENDED:
            return
        if self.state is CallState.ANSWERED and self._ack_waiter is not None:
            # §15: the callee must not send BYE before the ACK (or its timeout)
            with_timeout = self._endpoint.config.timers.timer_h
            try:
                await asyncio.wait_for(asyncio.shield(self._ack_waiter), with_timeout)
            except (TimeoutError, CallEnded):
                pass
            if self.ended:
                return
        self._set_end(EndCause.LOCAL_HANGUP)
        try:
            await self._request("BYE", end_on_failure=False)
        except CallError:
            pass
        self._finish()

    async def reinvite(self, sdp: SessionDescription) -> SessionDescription | None:
        """Send a new offer (hold, unhold, media change); returns the peer's answer.

        Raises CallFailed when the peer refuses it (the old session stays, §14.1).
        """
        self._require_established()
        if self._invite_busy:
            raise CallError("an offer/answer exchange is already in progress")
        offer = self._stamp_sdp(sdp)
        for attempt in range(3):
            self._invite_busy = True
            try:
                response = await self._request("INVITE", body=offer.encode(), content_type=SDP)
            finally:
                self._invite_busy = False
            if response.status == 491 and attempt < 2:
                # §14.1 glare: the Call-ID owner waits 2.1-4 s, the other side 0-2 s
                owner = self.dialog is not None and self.dialog.is_uac
                await asyncio.sleep(random.uniform(2.1, 4.0) if owner else random.uniform(0, 2))
                continue
            if response.status >= 300:
                raise CallFailed(response.status, response.reason)
            self.local_sdp = offer
            self.remote_sdp = _sdp_of(response)
            self._apply_session_response(response)
            return self.remote_sdp
        raise CallFailed(491, "Request Pending")

    async def hold(self) -> SessionDescription | None:
        """Re-offer our last SDP as sendonly (RFC 3264 §8.4)."""
        if self.local_sdp is None:
            raise CallError("no local SDP to put on hold")
        return await self.reinvite(self.local_sdp.with_direction(Direction.SENDONLY))

    async def unhold(self) -> SessionDescription | None:
        if self.local_sdp is None:
            raise CallError("no local SDP to resume")
        return await self.reinvite(self.local_sdp.with_direction(Direction.SENDRECV))

    async def send_info_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """Send one digit as SIP INFO (application/dtmf-relay)."""
        if len(digit) != 1 or digit.upper() not in "0123456789*#ABCD":
            raise CallError(f"not a DTMF digit: {digit!r}")
        self._require_established()
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
        response = await self._request("INFO", body=body, content_type="application/dtmf-relay")
        if response.status >= 300:
            raise CallFailed(response.status, response.reason)

    async def refer(self, target: str | SipUri, *, replaces: Replaces | None = None) -> None:
        """Ask the peer to call ``target`` (REFER, RFC 3515); returns once accepted.

        Progress comes as :class:`TransferProgress` events from the peer's NOTIFYs.
        """
        self._require_established()
        uri = target if isinstance(target, SipUri) else _sip_uri(target)
        refer_to = uri.copy()
        if replaces is not None:  # RFC 3891 §5: Replaces as an escaped URI header
            refer_to.headers["Replaces"] = _escape_header(str(replaces))
        assert self.dialog is not None
        headers = [
            ("Refer-To", f"<{refer_to}>"),
            ("Referred-By", f"<{self.dialog.local_party.uri}>"),
        ]
        response = await self._request("REFER", headers=headers)
        if response.status >= 300:
            raise CallFailed(response.status, response.reason)

    # --------------------------------------------------------------- internals
    def _go(self, event: str, now: float) -> None:
        new = self.TRANSITIONS.get((self.state, event))
        if new is None:
            raise InvalidTransition(type(self).__name__, self.state, event)
        self.state = new
        self.history.append((new, now))

    def _require_established(self) -> None:
        if self.state is CallState.ENDED:
            raise CallEnded(self.end.cause if self.end else None)
        if self.state is not CallState.ESTABLISHED or self.dialog is None:
            raise CallError(f"the call is {self.state.value}, not established")

    def _emit(self, event: CallEvent) -> None:
        self._history.append(event)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _set_end(self, cause: EndCause, status: int | None = None, reason: str = "") -> bool:
        """Record why the call ends (first cause wins) and move to ENDED."""
        if self.state is CallState.ENDED:
            return False
        self.end = Ended(cause, status, reason)
        self._go("end", self._endpoint.now())
        return True

    def _finish(self) -> None:
        """Tear down after the end: events, waiters, dialog table, timers."""
        end = self.end or Ended(EndCause.LOCAL_HANGUP)
        if not self._ended.done():
            self._ended.set_result(end)
            self._emit(end)
        if self._ack_waiter is not None and not self._ack_waiter.done():
            self._ack_waiter.set_exception(CallEnded(end.cause))
            self._ack_waiter.exception()  # retrieved
        if self._pending_reinvite is not None:
            self._pending_reinvite.reject(481)
        if self.dialog is not None:
            self.dialog.terminate(self._endpoint.now())
        self._endpoint._call_finished(self)

    def _end_now(self, cause: EndCause, status: int | None = None, reason: str = "") -> None:
        if self._set_end(cause, status, reason):
            self._finish()

    def _stamp_sdp(self, sdp: SessionDescription) -> SessionDescription:
        """Keep one o= session id per call and bump its version on change (RFC 3264 §8)."""
        previous = self.local_sdp
        if previous is None:
            return sdp
        origin = replace(sdp.origin, session_id=previous.origin.session_id)
        candidate = replace(sdp, origin=replace(origin, version=previous.origin.version))
        if str(candidate) == str(previous):
            return candidate
        return replace(sdp, origin=replace(origin, version=previous.origin.version + 1))

    async def _target(self) -> Target:
        assert self.dialog is not None
        if not self.dialog.route_set and self._peer is not None:
            return self._peer
        return await self._endpoint._resolve(self.dialog.next_hop())

    async def _request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        end_on_failure: bool = True,
    ) -> Response:
        """Send an in-dialog request and wait for its final response (§12.2.1)."""
        dialog = self.dialog
        if dialog is None:
            raise CallError("no dialog")
        extra = list(headers or [])
        if method in ("INVITE", "UPDATE"):
            extra += self._session_headers()
        auth_tries = 0
        while True:
            request = dialog.create_request(
                method, body=body, content_type=content_type, headers=extra
            )
            target = await self._target()
            response = await self._endpoint._transact(request, target)
            if response.status in (401, 407) and self._credentials and auth_tries < 1:
                auth_tries += 1
                try:
                    answer = _authorization(response, request, self._credentials)
                except AuthError:
                    break  # an unusable challenge: the 401/407 is the answer
                extra = [h for h in extra if h[0].lower() not in _AUTH_HEADERS]
                extra.append(answer)
                continue
            break
        if response.status in (408, 481) and end_on_failure and self.state is not CallState.ENDED:
            # §12.2.1.2: the peer no longer has the dialog (or cannot be reached): end it
            self._end_now(EndCause.TIMEOUT, response.status, response.reason)
        return response

    def _session_headers(self) -> list[tuple[str, str]]:
        timer = self.dialog.session_timer if self.dialog else None
        if timer is None:
            return [("Supported", "timer")]
        role = "uac" if timer.refresher is Refresher.LOCAL else "uas"
        return [
            ("Supported", "timer"),
            ("Session-Expires", f"{timer.interval};refresher={role}"),
        ]

    def _apply_session_response(self, response: Response) -> None:
        """After a 2xx to our INVITE/UPDATE: adopt its Session-Expires (RFC 4028 §7.2)."""
        dialog = self.dialog
        if dialog is None:
            return
        value = response.headers.get("session-expires")
        now = self._endpoint.now()
        if value:
            try:
                interval, refresher = parse_session_expires(value[0])
            except ParseError:
                return
            role = Refresher.LOCAL if refresher in (None, "uac") else Refresher.REMOTE
            dialog.session_timer = SessionTimer(interval, role, now)
        elif dialog.session_timer is not None:
            dialog.session_timer.refreshed(now)
        self._endpoint._schedule_session(self)

    # ---------------------------------------------- in-dialog requests received
    def _on_request(self, tx: ServerTransaction, request: Request, now: float) -> None:
        dialog = self.dialog
        assert dialog is not None
        method = request.method
        try:
            dialog.receive_request(request)
        except CSeqOutOfOrder:
            self._endpoint._respond(tx, make_response(request, 500, "CSeq Out of Order"))
            return
        except ParseError:
            self._endpoint._respond(tx, make_response(request, 400))
            return
        if self.state is CallState.ENDED and method != "BYE":
            self._endpoint._respond(tx, make_response(request, 481))
            return
        handler = _IN_DIALOG.get(method)
        if handler is None:
            allow = self._endpoint.allow_header
            response = make_response(request, 405, headers=[("Allow", allow)])
            self._endpoint._respond(tx, response)
            return
        handler(self, tx, request, now)

    def _on_bye(self, tx: ServerTransaction, request: Request, now: float) -> None:
        self._endpoint._respond(tx, make_response(request, 200))
        if self.state is CallState.RINGING and isinstance(self, IncomingCall):
            # a BYE on the early dialog we created: the INVITE gets 487 (§15.1.2)
            final = make_response(self._invite, 487, to_tag=self.local_tag)
            self._endpoint._respond(self._tx, final)
        self._end_now(EndCause.REMOTE_HANGUP)

    def _on_invite(self, tx: ServerTransaction, request: Request, now: float) -> None:
        if self._invite_busy or self.state is not CallState.ESTABLISHED:
            # §14.2: an INVITE while ours is pending gets 491; Retry-After per §14.1
            response = make_response(request, 491, headers=[("Retry-After", "3")])
            self._endpoint._respond(tx, response)
            return
        assert isinstance(tx, ServerInviteTransaction)
        self._invite_busy = True
        self._endpoint._spawn(self._answer_offer(tx, request))

    def _on_update(self, tx: ServerTransaction, request: Request, now: float) -> None:
        if request.body:
            if self._invite_busy:
                self._endpoint._respond(tx, make_response(request, 491))
                return
            self._invite_busy = True
            self._endpoint._spawn(self._answer_offer(tx, request))
            return
        # a session refresh without SDP (RFC 4028 §9)
        response = make_response(request, 200, headers=self._refresh_headers(request))
        self._endpoint._respond(tx, response)

    def _refresh_headers(self, request: Request) -> list[tuple[str, str]]:
        """Answer a refresh request and restart the session timer (RFC 4028 §9)."""
        headers: list[tuple[str, str]] = [("Contact", self._contact())]
        dialog = self.dialog
        if dialog is None:
            return headers
        try:
            negotiated = negotiate_as_uas(
                request, self._endpoint.config.session_expires, self._endpoint.config.min_se
            )
        except (SessionIntervalTooSmall, ParseError):
            negotiated = None
        if negotiated is not None:
            interval, role = negotiated
            dialog.session_timer = SessionTimer(
                interval,
                Refresher.LOCAL if role == "uas" else Refresher.REMOTE,
                self._endpoint.now(),
            )
            headers.append(("Session-Expires", f"{interval};refresher={role}"))
            if role == "uac":
                headers.append(("Require", "timer"))
            self._endpoint._schedule_session(self)
        return headers

    def _contact(self) -> str:
        assert self.dialog is not None
        return self.dialog.local_contact

    async def _answer_offer(self, tx: ServerTransaction, request: Request) -> None:
        """Let the app answer a re-INVITE/UPDATE offer, or answer it ourselves."""
        try:
            offer = _sdp_of(request)
        except SdpError:
            self._invite_busy = False
            self._endpoint._respond(tx, make_response(request, 400, "Bad SDP"))
            return
        event = ReinviteReceived(request.method, offer)
        self._pending_reinvite = event
        self._emit(event)
        try:
            status, answer = await asyncio.wait_for(
                asyncio.shield(event._decision), self._endpoint.config.reinvite_answer_timeout
            )
        except TimeoutError:
            status, answer = 200, self._default_answer(offer)
        finally:
            self._pending_reinvite = None
        if self.state is CallState.ENDED or tx.terminated:
            self._invite_busy = False
            return
        if status >= 300 or answer is None:
            self._invite_busy = False
            self._endpoint._respond(tx, make_response(request, status))
            return
        answer = self._stamp_sdp(answer)
        headers = self._refresh_headers(request)
        response = make_response(
            request, 200, headers=headers, body=answer.encode(), content_type=SDP
        )
        self.local_sdp = answer
        if offer is not None:
            self.remote_sdp = offer
        if isinstance(tx, ServerInviteTransaction):
            self._accepted_tx = tx
            waiter = self._ack_waiter = asyncio.get_running_loop().create_future()
            self._endpoint._respond(tx, response)
            try:
                ack = await asyncio.shield(waiter)
                if ack.body and offer is None:
                    self.remote_sdp = _sdp_of(ack)
            except (CallEnded, SdpError):
                pass
            finally:
                self._ack_done(waiter)
        else:
            self._endpoint._respond(tx, response)
            self._invite_busy = False

    def _default_answer(self, offer: SessionDescription | None) -> SessionDescription | None:
        """Our last SDP, direction set to what the offer allows (hold answered recvonly)."""
        if self.local_sdp is None:
            return None
        if offer is None or offer.audio is None:
            return self.local_sdp
        wanted = offer.direction_of(offer.audio).reverse
        return self.local_sdp.with_direction(wanted)

    def _on_info(self, tx: ServerTransaction, request: Request, now: float) -> None:
        ctype = request.content_type
        digit, duration = None, 0
        if ctype == "application/dtmf-relay":
            fields: dict[str, str] = {}
            for line in request.body.decode("utf-8", "replace").splitlines():
                name, _, value = line.partition("=")
                fields[name.strip().lower()] = value.strip()
            digit = fields.get("signal")
            duration = int(fields["duration"]) if fields.get("duration", "").isdigit() else 0
        elif ctype == "application/dtmf":
            digit = request.body.decode("utf-8", "replace").strip()
        elif request.body:
            response = make_response(
                request, 415, headers=[("Accept", "application/dtmf-relay, application/dtmf")]
            )
            self._endpoint._respond(tx, response)
            return
        if digit is not None:
            digit = {"10": "*", "11": "#"}.get(digit, digit)  # numeric events (RFC 4733)
            if len(digit) != 1 or digit.upper() not in "0123456789*#ABCD":
                self._endpoint._respond(tx, make_response(request, 400, "Bad DTMF"))
                return
            self._emit(DtmfReceived(digit.upper(), duration))
        self._endpoint._respond(tx, make_response(request, 200))

    def _on_refer(self, tx: ServerTransaction, request: Request, now: float) -> None:
        values = request.headers.get("refer-to", [])
        if len(values) != 1:  # RFC 3515 §2.4.1: exactly one Refer-To
            self._endpoint._respond(tx, make_response(request, 400, "Bad Refer-To"))
            return
        try:
            address = parse_name_address(values[0])
            uri = address.uri
        except ParseError:
            self._endpoint._respond(tx, make_response(request, 400, "Bad Refer-To"))
            return
        replaces = None
        target = str(uri)
        if isinstance(uri, SipUri):
            raw = next((v for k, v in uri.headers.items() if k.lower() == "replaces"), None)
            if raw is not None:
                try:
                    replaces = Replaces.parse(unescape(raw))
                except ParseError:
                    self._endpoint._respond(tx, make_response(request, 400, "Bad Replaces"))
                    return
            target = str(uri.without_headers())
        referred_by = request.headers.get("referred-by", [None])[0]
        self._endpoint._respond(
            tx, make_response(request, 202, headers=[("Contact", self._contact())])
        )
        event = ReferReceived(self, target, replaces, referred_by)
        # RFC 3515 §2.4.4: an immediate NOTIFY reports the initial state
        event._send(100, None, final=False)
        self._emit(event)

    async def _notify_refer(self, status: int, reason: str | None, *, final: bool) -> None:
        if self.state is CallState.ENDED or self.dialog is None:
            return
        text = reason or REASON_PHRASES.get(status, "")
        state = "terminated;reason=noresource" if final else "active;expires=60"
        headers = [("Event", "refer"), ("Subscription-State", state)]
        body = f"SIP/2.0 {status} {text}\r\n".encode()
        try:
            await self._request(
                "NOTIFY",
                body=body,
                content_type="message/sipfrag;version=2.0",
                headers=headers,
                end_on_failure=False,
            )
        except CallError:
            pass

    def _on_notify(self, tx: ServerTransaction, request: Request, now: float) -> None:
        event = (request.headers.get("event") or [""])[0].split(";", 1)[0].strip().lower()
        if event != "refer":
            self._endpoint._respond(tx, make_response(request, 489))
            return
        self._endpoint._respond(tx, make_response(request, 200))
        line = request.body.decode("utf-8", "replace").split("\r\n", 1)[0].split("\n", 1)[0]
        parts = line.split(" ", 2)
        if len(parts) >= 2 and parts[1].isdigit():
            state = (request.headers.get("subscription-state") or [""])[0].lower()
            final = state.startswith("terminated") or int(parts[1]) >= 200
            self._emit(TransferProgress(int(parts[1]), parts[2] if len(parts) > 2 else "", final))

    def _on_options(self, tx: ServerTransaction, request: Request, now: float) -> None:
        self._endpoint._respond(tx, self._endpoint._options_response(request))

    def _on_ack(self, ack: Request, now: float) -> None:
        """The ACK of a 2xx we sent (matched by dialog, §13.3.1.4)."""
        tx = self._accepted_tx
        if tx is None:
            return
        actions = tx.receive_request(ack, now)
        for action in actions:
            if isinstance(action, Deliver):
                self._accepted_tx = None
                if self.state is CallState.ANSWERED:
                    self._go("ack", now)
                    if self.dialog is not None and self.dialog.state is DialogState.EARLY:
                        self.dialog.confirm(now)
                if self._ack_waiter is not None and not self._ack_waiter.done():
                    self._ack_waiter.set_result(ack)
                    # §14.1: with its ACK the INVITE transaction is over, now: an offer read
                    # in the same batch of datagrams, before the waiting coroutine resumes,
                    # is no glare (it got 491 under load).
                    self._invite_busy = False
        self._endpoint._process(tx, actions)

    def _ack_done(self, waiter: asyncio.Future[Request]) -> None:
        """The wait for the ACK of our 2xx is over: the transaction's guard is lifted, unless
        the ACK already lifted it (a new offer may be under way since)."""
        if self._ack_waiter is waiter:
            self._ack_waiter = None
        acked = waiter.done() and not waiter.cancelled() and waiter.exception() is None
        if not acked:
            self._invite_busy = False

    def _on_invite_timeout(self, tx: ServerInviteTransaction) -> None:
        """No ACK for our 2xx within 64*T1 (§13.3.1.4): end the session with a BYE."""
        if tx is self._accepted_tx and self.state is not CallState.ENDED:
            self._accepted_tx = None
            self._endpoint._spawn(self._bye_after_timeout())

    async def _bye_after_timeout(self) -> None:
        if self._set_end(EndCause.TIMEOUT, None, "no ACK"):
            if self.dialog is not None and self.dialog.state is DialogState.EARLY:
                self.dialog.confirm(self._endpoint.now())
            try:
                await self._request("BYE", end_on_failure=False)
            except CallError:
                pass
            self._finish()

    # ------------------------------------------------------------ session timer
    def _on_session_timer(self, now: float) -> None:
        dialog = self.dialog
        timer = dialog.session_timer if dialog else None
        if timer is None or self.state is not CallState.ESTABLISHED:
            return
        if timer.refresher is Refresher.LOCAL:
            timer.refreshed(now)  # avoid re-firing while the refresh is under way
            self._endpoint._schedule_session(self)
            self._endpoint._spawn(self._refresh_session())
        elif now >= timer.expires_at:
            # RFC 4028 §10: the refresher went silent; clear the dead call
            self._endpoint._spawn(self._expire_session())

    async def _refresh_session(self) -> None:
        if self._invite_busy or self.state is not CallState.ESTABLISHED:
            return
        assert self.dialog is not None
        peer_update = self._peer_allows_update
        try:
            if peer_update:
                response = await self._request("UPDATE")
            elif self.local_sdp is not None:
                self._invite_busy = True
                try:
                    response = await self._request(
                        "INVITE", body=self.local_sdp.encode(), content_type=SDP
                    )
                finally:
                    self._invite_busy = False
            else:
                return
        except CallError:
            return
        if response.status < 300:
            self._apply_session_response(response)

    async def _expire_session(self) -> None:
        if self._set_end(EndCause.SESSION_EXPIRED):
            try:
                await self._request("BYE", end_on_failure=False)
            except CallError:
                pass
            self._finish()

    _peer_allows_update = False


_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})

_IN_DIALOG = {
    "BYE": Call._on_bye,
    "INVITE": Call._on_invite,
    "UPDATE": Call._on_update,
    "INFO": Call._on_info,
    "REFER": Call._on_refer,
    "NOTIFY": Call._on_notify,
    "OPTIONS": Call._on_options,
}


class AuthKind(enum.Enum):
    DIGEST = "digest"  # the caller proved a password (agent phones)
    TRUNK = "trunk"  # the source is an allow-listed trunk
    NONE = "none"  # admitted unauthenticated by the app's policy


class IncomingCall(Call):
    """A new INVITE dialog offered to the app. ``owner`` says who authenticated."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        tx: ServerInviteTransaction,
        request: Request,
        info: RequestInfo,
        target: Target,
        offer: SessionDescription | None,
        session: tuple[int, str] | None,
        now: float,
    ) -> None:
        super().__init__(endpoint, request.call_id, now)
        self.info = info
        self.offer = offer
        self.remote_sdp = offer
        self.auth = AuthKind.NONE
        self._tx = tx
        self._invite = request
        self._peer = target
        self._session = session
        self.local_tag = new_tag()
        self._ring_timer: asyncio.TimerHandle | None = None
        self._merged_key = (request.call_id, request.from_.tag, request.cseq.seq)
        self._invite_busy = True
        self._peer_allows_update = request.allows("UPDATE")

    # convenience views of the request
    @property
    def from_user(self) -> str | None:
        return self.info.from_user

    @property
    def to_user(self) -> str | None:
        return self.info.to_user

    @property
    def request_user(self) -> str | None:
        return self.info.request_user

    @property
    def source(self) -> Address:
        return self.info.source

    @property
    def transport(self) -> str:
        return self.info.transport

    def header(self, name: str) -> str | None:
        return self.info.header(name)

    def _leave_ringing(self) -> None:
        """Past the INVITE's final response: drop what only a ringing call needs."""
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None
        endpoint = self._endpoint
        if endpoint._merged.get(self._merged_key) == self._tx.key:
            del endpoint._merged[self._merged_key]
        if self.state is CallState.ENDED and endpoint._invite_calls.get(self._tx.key) is self:
            del endpoint._invite_calls[self._tx.key]

    def _check_ringing(self) -> None:
        if self.state is CallState.ENDED:
            raise CallEnded(self.end.cause if self.end else None)
        if self.state is not CallState.RINGING:
            raise CallError(f"the call is already {self.state.value}")

    def _ensure_dialog(self, now: float) -> Dialog:
        if self.dialog is None:
            contact = self._endpoint._contact_value(self._peer.kind if self._peer else "UDP")
            self.dialog = Dialog.for_uas(self._invite, self.local_tag, contact, now)
            self._endpoint._dialog_opened(self, self.dialog)
        return self.dialog

    def _dialog_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = [("Contact", self._contact())]
        for value in self._invite.headers.get("record-route", []):
            headers.append(("Record-Route", value))  # §12.1.1: copied into the response
        return headers

    async def ring(self, sdp: SessionDescription | None = None) -> None:
        """Send 180 Ringing, or 183 Session Progress with early media SDP."""
        self._check_ringing()
        now = self._endpoint.now()
        self._ensure_dialog(now)
        body = b""
        if sdp is not None:
            sdp = self._stamp_sdp(sdp)
            self.local_sdp = sdp
            body = sdp.encode()
        response = make_response(
            self._invite,
            183 if sdp is not None else 180,
            to_tag=self.local_tag,
            headers=self._dialog_headers(),
            body=body,
            content_type=SDP if body else None,
        )
        self._endpoint._respond(self._tx, response)

    async def answer(self, sdp: SessionDescription) -> SessionDescription | None:
        """Send 200 with ``sdp``, retransmitted until the ACK (§13.3.1.4); returns remote SDP.

        With an offerless INVITE ``sdp`` is our offer and the answer comes in the ACK.
        Raises CallEnded if the caller cancelled or the ACK never came.
        """
        self._check_ringing()
        now = self._endpoint.now()
        dialog = self._ensure_dialog(now)
        sdp = self._stamp_sdp(sdp)
        headers = self._dialog_headers()
        headers.append(("Allow", self._endpoint.allow_header))
        headers.append(("Supported", "timer, replaces"))
        if self._session is not None:
            interval, role = self._session
            headers.append(("Session-Expires", f"{interval};refresher={role}"))
            if role == "uac":
                headers.append(("Require", "timer"))
            dialog.session_timer = SessionTimer(
                interval, Refresher.LOCAL if role == "uas" else Refresher.REMOTE, now
            )
        response = make_response(
            self._invite,
            200,
            to_tag=self.local_tag,
            headers=headers,
            body=sdp.encode(),
            content_type=SDP,
        )
        self.local_sdp = sdp
        self._go("answer", now)
        self._leave_ringing()
        self._accepted_tx = self._tx
        waiter = self._ack_waiter = asyncio.get_running_loop().create_future()
        self._endpoint._respond(self._tx, response)
        try:
            ack = await asyncio.shield(waiter)
        finally:
            self._ack_done(waiter)
        self._endpoint._schedule_session(self)
        if self.offer is None and ack.body:
            try:
                self.remote_sdp = _sdp_of(ack)
            except SdpError:
                self.remote_sdp = None
        return self.remote_sdp

    async def reject(
        self,
        status: int = 486,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Refuse the call with a final 3xx-6xx response."""
        if not 300 <= status <= 699:
            raise CallError(f"reject needs a 3xx-6xx status, not {status}")
        if self.state is CallState.ENDED:
            return
        self._check_ringing()
        response = make_response(
            self._invite, status, reason, to_tag=self.local_tag, headers=list(headers)
        )
        self._endpoint._respond(self._tx, response)
        self._end_now(EndCause.REJECTED, status, response.reason)

    async def hangup(self) -> None:
        if self.state is CallState.RINGING:
            await self.reject(480)
            return
        await super().hangup()

    def _on_cancel(self) -> None:
        """CANCEL matched our INVITE (§9.2): 487 the INVITE if no final was sent."""
        if self.state is not CallState.RINGING or self._tx.state is not TxState.PROCEEDING:
            return
        response = make_response(self._invite, 487, to_tag=self.local_tag)
        self._endpoint._respond(self._tx, response)
        self._emit(Cancelled())
        self._end_now(EndCause.CANCELLED, 487)

    def __repr__(self) -> str:
        who = f"{self.info.from_user}->{self.info.to_user}"
        return f"<IncomingCall {self.call_id} {who} {self.state.value}>"


# ----------------------------------------------------------------- outgoing


class _Fork:
    """One INVITE of an outgoing call (one per registered contact when forking)."""

    def __init__(self, invite: Request, target: Target, symmetric: bool) -> None:
        self.invite = invite
        self.target = target
        self.symmetric = symmetric  # send in-dialog requests back to target (NAT)
        self.tx: ClientInviteTransaction | None = None
        self.provisional = False
        self.cancel_pending = False
        self.cancelled = False
        self.final: int | None = None
        self.reason = ""
        self.ack: bytes | None = None
        self.ack_target: Target | str | None = None
        self.dialog: Dialog | None = None
        self.auth_tries = 0
        self.timed_out = False


class OutgoingCall(Call):
    """A call we place; see ``SipEndpoint.call``. ``answered()`` waits for the answer."""

    def __init__(self, endpoint: SipEndpoint, call_id: str, now: float) -> None:
        super().__init__(endpoint, call_id, now)
        self._forks: list[_Fork] = []
        self._winner: _Fork | None = None
        self._answered: asyncio.Future[SessionDescription | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._rang = False
        self.responded = False  # any response came back (a 100 Trying too): the peer is alive

    async def answered(self) -> SessionDescription | None:
        """The remote SDP once answered; raises CallFailed / CallEnded otherwise."""
        return await asyncio.shield(self._answered)

    async def cancel(self) -> None:
        """CANCEL every branch still ringing (§9.1)."""
        if self.state is not CallState.RINGING:
            return
        self._set_end(EndCause.CANCELLED)
        for fork in self._forks:
            self._cancel_fork(fork)
        self._fail_waiter(CallEnded(EndCause.CANCELLED))
        self._finish()

    async def hangup(self) -> None:
        if self.state is CallState.RINGING:
            await self.cancel()
            return
        await super().hangup()

    def _fail_waiter(self, exc: Exception) -> None:
        if not self._answered.done():
            self._answered.set_exception(exc)
            self._answered.exception()  # retrieved even if nobody awaits answered()

    def _add_fork(self, fork: _Fork, ring_timeout: float | None) -> None:
        self._forks.append(fork)
        self._endpoint._start_invite(self, fork, ring_timeout)

    def _cancel_fork(self, fork: _Fork) -> None:
        if fork.final is not None or fork.cancelled:
            return
        if not fork.provisional:
            fork.cancel_pending = True  # §9.1: wait for a provisional before CANCEL
            return
        fork.cancelled = True
        self._endpoint._send_cancel(fork)

    # -------------------------------------------------------- fork responses
    def _on_fork_action(self, fork: _Fork, action: Action) -> None:
        if isinstance(action, TimedOut):
            if action.timer == "C":  # ring timeout
                fork.timed_out = True
                self._cancel_fork(fork)
                return
            fork.final = 503 if action.timer == "transport" else 408
            fork.reason = "Transport Error" if action.timer == "transport" else "Request Timeout"
            self._check_all_failed()
            return
        if not isinstance(action, Deliver) or not isinstance(action.message, Response):
            return
        response = action.message
        status = response.status
        self.responded = True
        if status < 200:
            self._on_provisional(fork, response)
        elif status < 300:
            self._on_success(fork, response)
        else:
            self._on_failure(fork, response)

    def _on_provisional(self, fork: _Fork, response: Response) -> None:
        if response.status == 100:
            return
        fork.provisional = True
        if fork.cancel_pending or (self._winner is not None and self._winner is not fork):
            fork.cancel_pending = False
            fork.cancelled = True
            self._endpoint._send_cancel(fork)
            return
        if self.state is not CallState.RINGING:
            return
        sdp = None
        if response.body and response.content_type == SDP:
            try:
                sdp = parse_sdp(response.body)
            except SdpError:
                sdp = None
        if not self._rang or sdp is not None:
            self._rang = True
            self._emit(Ringing(response.status, sdp))

    def _on_success(self, fork: _Fork, response: Response) -> None:
        now = self._endpoint.now()
        if fork.ack is not None and fork.ack_target is not None:
            self._endpoint._send_ack_to(fork.ack_target, fork.ack)  # retransmitted 2xx
            return
        try:
            dialog = Dialog.for_uac(fork.invite, response, now)
        except (DialogError, ParseError):
            dialog = None
        fork.final = response.status
        fork.dialog = dialog
        ack = self._build_ack(fork, dialog)
        fork.ack = ack.encode()
        target = fork.ack_target = self._ack_target(fork, dialog)
        self._endpoint._send_ack_to(target, fork.ack)
        if self._winner is not None or self.state is not CallState.RINGING or dialog is None:
            # a second branch answered, or we already gave up: hang it up (§13.2.2.4)
            if dialog is not None:
                self._endpoint._spawn(self._endpoint._bye_stray(dialog, target))
            return
        self._winner = fork
        self.dialog = dialog
        self.call_id = dialog.call_id
        if fork.symmetric:
            self._peer = fork.target
        self._peer_allows_update = response.allows("UPDATE")
        try:
            self.remote_sdp = _sdp_of(response)
        except SdpError:
            self.remote_sdp = None
        self._go("established", now)
        self._invite_busy = False
        self._endpoint._dialog_opened(self, dialog)
        self._apply_session_response(response)
        for other in self._forks:
            if other is not fork:
                self._cancel_fork(other)
        if not self._answered.done():
            self._answered.set_result(self.remote_sdp)
        self._emit(Answered(self.remote_sdp))

    def _build_ack(self, fork: _Fork, dialog: Dialog | None) -> Request:
        seq = fork.invite.cseq.seq
        if dialog is not None:
            ack = dialog.create_request("ACK", cseq=seq)
        else:
            ack = Request("ACK", fork.invite.uri_text, fork.invite.copy_headers())
            ack.set("cseq", f"{seq} ACK")
            ack.remove("via")
            ack.remove("content-type")
        for name in ("authorization", "proxy-authorization"):
            values = fork.invite.headers.get(name)
            if values:
                ack.headers[name] = list(values)
        ack.add("Via", self._endpoint._via(fork.target.kind, new_branch()), first=True)
        return ack

    def _ack_target(self, fork: _Fork, dialog: Dialog | None) -> Target | str:
        if dialog is None or (not dialog.route_set and fork.symmetric):
            return fork.target
        return dialog.next_hop()

    def _on_failure(self, fork: _Fork, response: Response) -> None:
        status = response.status
        if fork.final is not None:
            return
        if (
            status in (401, 407)
            and self._credentials is not None
            and fork.auth_tries < 1
            and not fork.cancelled
            and self.state is CallState.RINGING
        ):
            fork.auth_tries += 1
            try:
                header = _authorization(response, fork.invite, self._credentials)
            except AuthError:
                header = None
            if header is not None:
                self._retry_fork(fork, [header])
                return
        if status == 422 and self.state is CallState.RINGING and fork.auth_tries < 2:
            min_se = (response.headers.get("min-se") or [""])[0].split(";")[0].strip()
            if min_se.isdigit():  # RFC 4028 §7.4: retry with the larger interval
                fork.auth_tries += 1
                self._retry_fork(fork, [("Session-Expires", min_se), ("Min-SE", min_se)])
                return
        fork.final = status
        fork.reason = response.reason
        if fork.timed_out and status == 487:
            fork.final, fork.reason = 408, "Request Timeout"
        self._check_all_failed()

    def _retry_fork(self, fork: _Fork, headers: list[tuple[str, str]]) -> None:
        invite = fork.invite
        new = Request("INVITE", invite.uri_text, invite.copy_headers(), invite.body)
        new.remove("via")
        for name, _ in headers:
            new.remove(name)
        for name, value in headers:
            new.add(name, value)
        new.set("cseq", f"{invite.cseq.seq + 1} INVITE")  # §22.2: new CSeq, same Call-ID
        fork.invite = new
        fork.provisional = False
        self._endpoint._start_invite(self, fork, None)

    def _check_all_failed(self) -> None:
        if self._winner is not None:
            return
        if any(f.final is None for f in self._forks):
            return
        if self.state is CallState.ENDED:
            self._fail_waiter(CallEnded(self.end.cause if self.end else EndCause.CANCELLED))
            return
        best = _best_failure(self._forks)
        self._emit(Failed(best.final or 500, best.reason))
        self._fail_waiter(CallFailed(best.final or 500, best.reason))
        self._end_now(EndCause.FAILED, best.final, best.reason)

    def __repr__(self) -> str:
        return f"<OutgoingCall {self.call_id} {self.state.value}>"


def _best_failure(forks: list[_Fork]) -> _Fork:
    """The response to report when every branch failed (in the spirit of §16.7.6)."""

    def rank(fork: _Fork) -> tuple[int, int]:
        status = fork.final or 500
        if 600 <= status < 700:
            return (0, status)
        if status in (401, 407, 415, 420, 484):
            return (1, status)
        if status == 503:
            return (4, status)
        if status in (408, 487):
            return (3, status)
        return (2, status)

    return min(forks, key=rank)


# ---------------------------------------------------------------- helpers


def _sdp_of(message: Request | Response) -> SessionDescription | None:
    if not message.body:
        return None
    ctype = message.content_type
    if ctype is not None and ctype != SDP:
        return None
    return parse_sdp(message.body)


def _sip_uri(text: str) -> SipUri:
    from .uri import parse_sip_uri

    return parse_sip_uri(text if ":" in text else f"sip:{text}")


def _escape_header(value: str) -> str:
    out = []
    for ch in value:
        if ch.isalnum() or ch in "-_.!~*'()[]/?:+$":
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    return "".join(out)


def _authorization(
    response: Response, request: Request, credentials: Credential
) -> tuple[str, str]:
    """Answer a 401/407 (RFC 3261 §22.2) with the configured username and password."""
    proxy = response.status == 407
    values = response.headers.get("proxy-authenticate" if proxy else "www-authenticate", [])
    if not values:
        raise AuthError("challenge without WWW-Authenticate / Proxy-Authenticate")
    if credentials.password is None:
        raise AuthError("outgoing authentication needs a password")
    challenge = pick_challenge(values)
    auth = authorize(
        challenge,
        request.method,
        request.uri_text,
        credentials.username,
        credentials.password,
        body=request.body,
    )
    return ("Proxy-Authorization" if proxy else "Authorization", auth.header_value())


__all__ = [
    "Answered",
    "AuthKind",
    "Call",
    "CallEvent",
    "CallState",
    "Cancelled",
    "DtmfReceived",
    "EndCause",
    "Ended",
    "Failed",
    "IncomingCall",
    "OfferAnswerError",
    "OutgoingCall",
    "ReferReceived",
    "ReinviteReceived",
    "Replaces",
    "RequestInfo",
    "Ringing",
    "TransferProgress",
]
