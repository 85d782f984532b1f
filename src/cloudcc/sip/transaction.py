"""The four transaction state machines of RFC 3261 §17, with RFC 6026's Accepted states.

Each transaction is a sans-I/O object: it is fed messages and ``now`` and returns
what to do (``Send`` bytes to its target, ``Deliver`` a message to the transaction
user, ``TimedOut``), and exposes ``deadline``, the next time ``on_timer`` must be
called. Timers A-K are named as in the RFC; L and M come from RFC 6026. The
INVITE server transaction also retransmits the 2xx until the ACK arrives, the
duty RFC 3261 §13.3.1.4 gives the UAS core, so one timer queue drives all of it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Hashable
from typing import ClassVar

from .exceptions import InvalidTransition
from .message import MAGIC_COOKIE, Request, Response, make_response
from .timers import DEFAULT_TIMERS, TimerSettings


class Send:
    """Transmit ``data`` to the transaction's target."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Send({self.data[:40]!r}...)"


class Deliver:
    """Pass ``message`` up to the transaction user (a response, or the ACK of a 2xx)."""

    __slots__ = ("message",)

    def __init__(self, message: Request | Response) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Deliver({self.message!r})"


class TimedOut:
    """A timer expired that the TU must hear about (B, F, H, C, L without ACK)."""

    __slots__ = ("timer",)

    def __init__(self, timer: str) -> None:
        self.timer = timer

    def __repr__(self) -> str:
        return f"TimedOut({self.timer!r})"


Action = Send | Deliver | TimedOut


class TxState(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"  # RFC 6026
    TERMINATED = "terminated"


S = TxState
_STATES = list(TxState)
_CODE = {state: index for index, state in enumerate(_STATES)}
_TIME = struct.Struct("d")


def _response_class(status: int) -> str:
    if status < 200:
        return "1xx"
    if status < 300:
        return "2xx"
    return "final"


class Transaction:
    """Common bookkeeping: state, transition table, timestamps, target and timers."""

    TRANSITIONS: ClassVar[dict[tuple[TxState, str], TxState]] = {}
    __slots__ = ("_codes", "_times", "deadline", "key", "reliable", "state", "target", "timers")

    def __init__(
        self,
        key: Hashable,
        target: object,
        reliable: bool,
        now: float,
        state: TxState,
        timers: TimerSettings,
    ) -> None:
        self.key = key
        self.target = target  # where the transport layer sends; opaque here
        self.reliable = reliable
        self.timers = timers
        self.state = state
        # transition log in bytearrays, which the cyclic GC does not track: tens of
        # thousands of transactions live at once and must not lengthen its passes
        self._codes = bytearray((_CODE[state],))
        self._times = bytearray(_TIME.pack(now))
        self.deadline: float | None = None

    @property
    def history(self) -> list[tuple[TxState, float]]:
        """Every state entered, with the time it was entered."""
        times = (t for (t,) in _TIME.iter_unpack(self._times))
        return [(_STATES[c], t) for c, t in zip(self._codes, times, strict=True)]

    def _enter(self, state: TxState, now: float) -> None:
        self.state = state
        self._codes.append(_CODE[state])
        self._times += _TIME.pack(now)

    def _go(self, event: str, now: float) -> None:
        new = self.TRANSITIONS.get((self.state, event))
        if new is None:
            raise InvalidTransition(type(self).__name__, self.state, event)
        if new is not self.state:
            self._enter(new, now)

    @property
    def terminated(self) -> bool:
        return self.state is S.TERMINATED

    def transport_error(self, now: float) -> list[Action]:
        """The transport could not send (§17.1.4, §17.2.4): terminate and tell the TU."""
        if self.state is S.TERMINATED:
            return []
        self._enter(S.TERMINATED, now)
        self.deadline = None
        return [TimedOut("transport")]


def _earliest(*times: float | None) -> float | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


# ------------------------------------------------------------------- client INVITE


class ClientInviteTransaction(Transaction):
    """§17.1.1 (Figure 5) with RFC 6026's Accepted state for 2xx responses."""

    TRANSITIONS: ClassVar[dict[tuple[TxState, str], TxState]] = {
        (S.CALLING, "1xx"): S.PROCEEDING,
        (S.PROCEEDING, "1xx"): S.PROCEEDING,
        (S.CALLING, "2xx"): S.ACCEPTED,
        (S.PROCEEDING, "2xx"): S.ACCEPTED,
        (S.ACCEPTED, "2xx"): S.ACCEPTED,
        (S.CALLING, "final"): S.COMPLETED,
        (S.PROCEEDING, "final"): S.COMPLETED,
        (S.COMPLETED, "final"): S.COMPLETED,
        (S.CALLING, "timer_b"): S.TERMINATED,
        (S.PROCEEDING, "timer_c"): S.TERMINATED,
        (S.COMPLETED, "timer_d"): S.TERMINATED,
        (S.ACCEPTED, "timer_m"): S.TERMINATED,
    }
    __slots__ = ("_a", "_a_interval", "_ack", "_b", "_c", "_d", "_data", "_m", "request")

    def __init__(
        self,
        request: Request,
        target: object,
        reliable: bool,
        now: float,
        timers: TimerSettings = DEFAULT_TIMERS,
        *,
        ring_timeout: float | None = None,
    ) -> None:
        super().__init__(client_key_for(request), target, reliable, now, S.CALLING, timers)
        self.request = request
        self._data = request.encode()
        self._ack: bytes | None = None
        self._a_interval = timers.t1
        self._a = None if reliable else now + timers.t1
        self._b: float | None = now + timers.timer_b
        self._c = None if ring_timeout is None else now + ring_timeout
        self._d: float | None = None
        self._m: float | None = None
        self._update()

    def start(self) -> list[Action]:
        return [Send(self._data)]

    def _update(self) -> None:
        self.deadline = _earliest(self._a, self._b, self._c, self._d, self._m)

    def receive(self, response: Response, now: float) -> list[Action]:
        kind = _response_class(response.status)
        state = self.state
        if state is S.TERMINATED:
            return []
        self._go(kind, now)
        out: list[Action] = []
        if kind == "1xx":
            self._a = self._b = None  # §17.1.1.2: no retransmissions in Proceeding
            out.append(Deliver(response))
        elif kind == "2xx":
            self._a = self._b = self._c = None
            if state is not S.ACCEPTED:
                self._m = now + self.timers.timer_m
            out.append(Deliver(response))  # retransmitted 2xx too: the TU re-ACKs
        else:
            if state is S.COMPLETED:
                if self._ack is not None:
                    out.append(Send(self._ack))  # §17.1.1.2: re-ACK, not passed up
            else:
                self._a = self._b = self._c = None
                self._ack = make_ack(self.request, response).encode()
                out.append(Send(self._ack))
                out.append(Deliver(response))
                wait = self.timers.timer_d(self.reliable)
                if wait:
                    self._d = now + wait
                else:
                    self._go("timer_d", now)
        self._update()
        return out

    def on_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self._a is not None and now >= self._a and self.state is S.CALLING:
            out.append(Send(self._data))
            self._a_interval *= 2  # Timer A doubles without a cap (§17.1.1.2)
            self._a = now + self._a_interval
        if self._b is not None and now >= self._b and self.state is S.CALLING:
            self._go("timer_b", now)
            self._a = self._b = self._c = None
            out.append(TimedOut("B"))
        if self._c is not None and now >= self._c and self.state is S.PROCEEDING:
            self._c = None
            out.append(TimedOut("C"))  # the TU CANCELs; the 487 then completes us
        if self._d is not None and now >= self._d:
            self._d = None
            self._go("timer_d", now)
        if self._m is not None and now >= self._m:
            self._m = None
            self._go("timer_m", now)
        self._update()
        return out

    def extend_ring_timeout(self, deadline: float | None) -> None:
        self._c = deadline
        self._update()


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK of a non-2xx final response (§17.1.1.3): same branch, To from the response."""
    h = invite.headers
    headers: dict[str, list[str]] = {"via": [h["via"][0]]}
    headers["max-forwards"] = ["70"]
    headers["from"] = list(h["from"])
    headers["to"] = list(response.headers["to"])
    headers["call-id"] = list(h["call-id"])
    headers["cseq"] = [f"{invite.cseq.seq} ACK"]
    if "route" in h:
        headers["route"] = list(h["route"])
    return Request("ACK", invite.uri_text, headers)


# --------------------------------------------------------------- client non-INVITE


class ClientNonInviteTransaction(Transaction):
    """§17.1.2 (Figure 6)."""

    TRANSITIONS: ClassVar[dict[tuple[TxState, str], TxState]] = {
        (S.TRYING, "1xx"): S.PROCEEDING,
        (S.PROCEEDING, "1xx"): S.PROCEEDING,
        (S.TRYING, "2xx"): S.COMPLETED,
        (S.PROCEEDING, "2xx"): S.COMPLETED,
        (S.TRYING, "final"): S.COMPLETED,
        (S.PROCEEDING, "final"): S.COMPLETED,
        (S.TRYING, "timer_f"): S.TERMINATED,
        (S.PROCEEDING, "timer_f"): S.TERMINATED,
        (S.COMPLETED, "timer_k"): S.TERMINATED,
    }
    __slots__ = ("_data", "_e", "_e_interval", "_f", "_k", "request")

    def __init__(
        self,
        request: Request,
        target: object,
        reliable: bool,
        now: float,
        timers: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(client_key_for(request), target, reliable, now, S.TRYING, timers)
        self.request = request
        self._data = request.encode()
        self._e_interval = timers.t1
        self._e = None if reliable else now + timers.t1
        self._f: float | None = now + timers.timer_f
        self._k: float | None = None
        self._update()

    def start(self) -> list[Action]:
        return [Send(self._data)]

    def _update(self) -> None:
        self.deadline = _earliest(self._e, self._f, self._k)

    def receive(self, response: Response, now: float) -> list[Action]:
        if self.state in (S.COMPLETED, S.TERMINATED):
            return []  # retransmissions of the final response are absorbed (§17.1.2.2)
        kind = _response_class(response.status)
        self._go(kind, now)
        if kind != "1xx":
            self._e = self._f = None
            wait = self.timers.timer_k(self.reliable)
            if wait:
                self._k = now + wait
            else:
                self._go("timer_k", now)
        self._update()
        return [Deliver(response)]

    def on_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self._e is not None and now >= self._e and self.state in (S.TRYING, S.PROCEEDING):
            out.append(Send(self._data))
            if self.state is S.TRYING:
                self._e_interval = min(2 * self._e_interval, self.timers.t2)
            else:
                self._e_interval = self.timers.t2
            self._e = now + self._e_interval
        if self._f is not None and now >= self._f:
            self._go("timer_f", now)
            self._e = self._f = None
            out.append(TimedOut("F"))
        if self._k is not None and now >= self._k:
            self._k = None
            self._go("timer_k", now)
        self._update()
        return out


# ------------------------------------------------------------------- server INVITE

TRYING_DELAY = 0.2  # §17.2.1: send 100 unless the TU answers within 200 ms


class ServerInviteTransaction(Transaction):
    """§17.2.1 (Figure 7) with RFC 6026's Accepted state and §13.3.1.4 2xx retransmission."""

    TRANSITIONS: ClassVar[dict[tuple[TxState, str], TxState]] = {
        (S.PROCEEDING, "1xx"): S.PROCEEDING,
        (S.PROCEEDING, "2xx"): S.ACCEPTED,
        (S.PROCEEDING, "final"): S.COMPLETED,
        (S.COMPLETED, "ack"): S.CONFIRMED,
        (S.ACCEPTED, "ack"): S.ACCEPTED,
        (S.COMPLETED, "timer_h"): S.TERMINATED,
        (S.CONFIRMED, "timer_i"): S.TERMINATED,
        (S.ACCEPTED, "timer_l"): S.TERMINATED,
    }
    __slots__ = (
        "_final",
        "_g",
        "_g_interval",
        "_h",
        "_i",
        "_l",
        "_provisional",
        "_trying",
        "acked",
        "request",
    )

    def __init__(
        self,
        request: Request,
        target: object,
        reliable: bool,
        now: float,
        timers: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(server_key_for(request), target, reliable, now, S.PROCEEDING, timers)
        self.request: Request | None = request  # released after the final response
        self._provisional: bytes | None = None
        self._final: bytes | None = None
        self._trying: float | None = now + TRYING_DELAY
        self._g: float | None = None
        self._g_interval = timers.t1
        self._h: float | None = None
        self._i: float | None = None
        self._l: float | None = None
        self.acked = False
        self._update()

    def _update(self) -> None:
        self.deadline = _earliest(self._trying, self._g, self._h, self._i, self._l)

    def respond(self, response: Response, now: float) -> list[Action]:
        """The TU sends a response; returns what to transmit."""
        kind = _response_class(response.status)
        self._go(kind, now)
        self._trying = None
        data = response.encode()
        if kind == "1xx":
            self._provisional = data
        elif kind == "2xx":
            self.request = None  # memory: the transaction lives on for 64*T1
            self._final = data
            # §13.3.1.4: retransmit from T1 doubling to T2 until the ACK, for 64*T1
            self._g_interval = self.timers.t1
            self._g = now + self._g_interval
            self._l = now + self.timers.timer_l
        else:
            self.request = None
            self._final = data
            if not self.reliable:
                self._g_interval = self.timers.t1
                self._g = now + self._g_interval
            self._h = now + self.timers.timer_h
        self._update()
        return [Send(data)]

    def receive_request(self, request: Request, now: float) -> list[Action]:
        """A retransmitted INVITE, or an ACK matched to this transaction."""
        if request.method == "ACK":
            return self._receive_ack(request, now)
        state = self.state
        if state is S.PROCEEDING:
            if self._provisional is not None:
                return [Send(self._provisional)]
            self._trying = None  # the UAC is retransmitting: answer 100 at once
            assert self.request is not None
            self._provisional = make_response(self.request, 100).encode()
            self._update()
            return [Send(self._provisional)]
        if state is S.COMPLETED and self._final is not None:
            return [Send(self._final)]
        return []  # Confirmed / Accepted absorb retransmissions (RFC 6026 §8.4)

    def _receive_ack(self, ack: Request, now: float) -> list[Action]:
        state = self.state
        if state is S.COMPLETED:
            self._go("ack", now)
            self._g = self._h = None
            wait = self.timers.timer_i(self.reliable)
            if wait:
                self._i = now + wait
            else:
                self._go("timer_i", now)
            self._update()
            return []
        if state is S.ACCEPTED:
            self._go("ack", now)
            if self.acked:
                return []  # a retransmitted ACK of the 2xx
            self.acked = True
            self._g = None
            self._update()
            return [Deliver(ack)]
        return []

    def on_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        state = self.state
        if self._trying is not None and now >= self._trying:
            self._trying = None
            if state is S.PROCEEDING and self._provisional is None and self.request is not None:
                self._provisional = make_response(self.request, 100).encode()
                out.append(Send(self._provisional))
        if self._g is not None and now >= self._g and self._final is not None:
            out.append(Send(self._final))
            self._g_interval = min(2 * self._g_interval, self.timers.t2)
            self._g = now + self._g_interval
        if self._h is not None and now >= self._h and state is S.COMPLETED:
            self._go("timer_h", now)
            self._g = self._h = None
            out.append(TimedOut("H"))
        if self._i is not None and now >= self._i:
            self._i = None
            self._go("timer_i", now)
        if self._l is not None and now >= self._l:
            self._l = self._g = None
            self._go("timer_l", now)
            if not self.acked:
                out.append(TimedOut("L"))  # §13.3.1.4: no ACK for 64*T1, end the session
        self._update()
        return out


# --------------------------------------------------------------- server non-INVITE


class ServerNonInviteTransaction(Transaction):
    """§17.2.2 (Figure 8). Once completed it keeps only the response bytes."""

    TRANSITIONS: ClassVar[dict[tuple[TxState, str], TxState]] = {
        (S.TRYING, "1xx"): S.PROCEEDING,
        (S.PROCEEDING, "1xx"): S.PROCEEDING,
        (S.TRYING, "2xx"): S.COMPLETED,
        (S.PROCEEDING, "2xx"): S.COMPLETED,
        (S.TRYING, "final"): S.COMPLETED,
        (S.PROCEEDING, "final"): S.COMPLETED,
        (S.COMPLETED, "timer_j"): S.TERMINATED,
    }
    __slots__ = ("_j", "_last", "method", "request")

    def __init__(
        self,
        request: Request,
        target: object,
        reliable: bool,
        now: float,
        timers: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(server_key_for(request), target, reliable, now, S.TRYING, timers)
        self.request: Request | None = request
        self.method = request.method
        self._last: bytes | None = None
        self._j: float | None = None

    def respond(self, response: Response, now: float) -> list[Action]:
        kind = _response_class(response.status)
        self._go(kind, now)
        data = self._last = response.encode()
        if kind != "1xx":
            self.request = None  # memory: a completed UDP transaction lives 64*T1
            wait = self.timers.timer_j(self.reliable)
            if wait:
                self._j = self.deadline = now + wait
            else:
                self._go("timer_j", now)
        return [Send(data)]

    def receive_request(self, request: Request, now: float) -> list[Action]:
        """A retransmission: absorbed in Trying, answered with the last response after."""
        if self.state in (S.PROCEEDING, S.COMPLETED) and self._last is not None:
            return [Send(self._last)]
        return []

    def on_timer(self, now: float) -> list[Action]:
        if self._j is not None and now >= self._j:
            self._j = self.deadline = None
            self._go("timer_j", now)
        return []


ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction


# ------------------------------------------------------------------------ matching


def server_key_for(request: Request) -> Hashable:
    """The key matching a request to a server transaction (§17.2.3).

    With the magic cookie: branch, sent-by and method (ACK maps to INVITE). Without it
    (RFC 2543 peers, RFC 4475 §3.2.1) the older rule of §17.2.3's last paragraph:
    Request-URI, tags, Call-ID, CSeq number and the top Via.
    """
    via = request.via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return (branch, via.host.lower(), via.port, method)
    to_tag = request.to.tag if request.method != "ACK" else None
    return (
        "2543",
        request.uri_text,
        to_tag,
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        str(via),
        method,
    )


def client_key_for(message: Request | Response) -> Hashable:
    """The key matching a response to a client transaction (§17.1.3): branch + CSeq method."""
    return (message.via.branch, message.cseq.method)
