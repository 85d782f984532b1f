"""Dialogs (RFC 3261 §12) and session timers (RFC 4028).

A :class:`Dialog` holds the state both UAs keep for a call leg: Call-ID, tags, the
route set, the remote target and both CSeq counters. It builds in-dialog requests
(§12.2.1.1, loose and strict routing) and checks incoming ones (§12.2.2).
:class:`SessionTimer` computes refresh and expiry deadlines from ``now``.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Any, ClassVar

from .exceptions import CSeqOutOfOrder, DialogError, InvalidTransition, ParseError
from .headers import NameAddress, parse_int, parse_name_address, parse_params, split_list
from .message import Request, Response
from .uri import SipUri

# Methods that refresh the remote target (§12.2, RFC 3311 for UPDATE)
TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Dialog:
    """One dialog; ``key`` is (Call-ID, local tag, remote tag)."""

    TRANSITIONS: ClassVar[dict[tuple[DialogState, str], DialogState]] = {
        (DialogState.EARLY, "confirm"): DialogState.CONFIRMED,
        (DialogState.CONFIRMED, "confirm"): DialogState.CONFIRMED,
        (DialogState.EARLY, "terminate"): DialogState.TERMINATED,
        (DialogState.CONFIRMED, "terminate"): DialogState.TERMINATED,
    }

    __slots__ = (
        "call_id",
        "history",
        "is_uac",
        "local_contact",
        "local_party",
        "local_seq",
        "remote_party",
        "remote_seq",
        "remote_target",
        "route_set",
        "secure",
        "session_timer",
        "state",
    )

    def __init__(
        self,
        *,
        call_id: str,
        local_party: NameAddress,
        remote_party: NameAddress,
        remote_target: str,
        route_set: list[str],
        local_seq: int,
        remote_seq: int | None,
        local_contact: str,
        is_uac: bool,
        state: DialogState,
        now: float,
        secure: bool = False,
    ) -> None:
        self.call_id = call_id
        self.local_party = local_party
        self.remote_party = remote_party
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_contact = local_contact
        self.is_uac = is_uac
        self.secure = secure
        self.state = state
        self.history: list[tuple[DialogState, float]] = [(state, now)]
        self.session_timer: SessionTimer | None = None

    # ----------------------------------------------------------------- creation
    @classmethod
    def for_uas(
        cls,
        request: Request,
        local_tag: str,
        local_contact: str,
        now: float,
        *,
        confirmed: bool = False,
    ) -> Dialog:
        """The UAS side, from the dialog-creating request (§12.1.1)."""
        contacts = request.contacts
        if len(contacts) != 1:
            raise DialogError("a dialog-creating request needs exactly one Contact")
        remote_tag = request.from_.tag
        if remote_tag is None:
            raise DialogError("the request has no From tag")
        local = request.to.copy()
        local.params["tag"] = local_tag
        return cls(
            call_id=request.call_id,
            local_party=local,
            remote_party=request.from_.copy(),
            remote_target=str(contacts[0].uri),
            route_set=_route_values(request.headers.get("record-route", [])),
            local_seq=random.randint(1, 2**20),
            remote_seq=request.cseq.seq,
            local_contact=local_contact,
            is_uac=False,
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
            now=now,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
        )

    @classmethod
    def for_uac(cls, request: Request, response: Response, now: float) -> Dialog:
        """The UAC side, from a 1xx (with To tag) or 2xx to our request (§12.1.2)."""
        if response.to.tag is None:
            raise DialogError("the response has no To tag")
        contacts = response.contacts
        if not contacts and response.status >= 200:
            raise DialogError("a 2xx creating a dialog must carry a Contact")
        target = str(contacts[0].uri) if contacts else request.uri_text
        state = DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY
        return cls(
            call_id=request.call_id,
            local_party=request.from_.copy(),
            remote_party=response.to.copy(),
            remote_target=target,
            route_set=list(reversed(_route_values(response.headers.get("record-route", [])))),
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_contact=request.headers["contact"][0],
            is_uac=True,
            state=state,
            now=now,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
        )

    # --------------------------------------------------------- persistence
    def snapshot(self) -> dict[str, Any]:
        """What another process needs to send a request in this dialog (e.g. a BYE after
        a crash): Call-ID, both parties with their tags, route set, remote target, CSeq."""
        return {
            "call_id": self.call_id,
            "local_party": str(self.local_party),
            "remote_party": str(self.remote_party),
            "remote_target": self.remote_target,
            "route_set": list(self.route_set),
            "local_seq": self.local_seq,
            "remote_seq": self.remote_seq,
            "local_contact": self.local_contact,
            "is_uac": self.is_uac,
            "secure": self.secure,
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any], now: float, *, seq_gap: int = 0) -> Dialog:
        """A confirmed dialog from :meth:`snapshot`; ``seq_gap`` skips local CSeq numbers
        that may have been used since the snapshot (§12.2.1.1 only asks for increase)."""
        s = snapshot
        return cls(
            call_id=str(s["call_id"]),
            local_party=parse_name_address(str(s["local_party"])),
            remote_party=parse_name_address(str(s["remote_party"])),
            remote_target=str(s["remote_target"]),
            route_set=[str(r) for r in s["route_set"]],
            local_seq=int(s["local_seq"]) + seq_gap,
            remote_seq=None if s.get("remote_seq") is None else int(s["remote_seq"]),
            local_contact=str(s["local_contact"]),
            is_uac=bool(s["is_uac"]),
            secure=bool(s.get("secure")),
            state=DialogState.CONFIRMED,
            now=now,
        )

    # ------------------------------------------------------------------- state
    @property
    def local_tag(self) -> str:
        return self.local_party.params.get("tag") or ""

    @property
    def remote_tag(self) -> str:
        return self.remote_party.params.get("tag") or ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    def _go(self, event: str, now: float) -> None:
        new = self.TRANSITIONS.get((self.state, event))
        if new is None:
            raise InvalidTransition("Dialog", self.state, event)
        if new is not self.state:
            self.state = new
            self.history.append((new, now))

    def confirm(self, now: float, response: Response | None = None) -> None:
        """Early -> confirmed; a UAC recomputes route set and target from the 2xx (§13.2.2.4)."""
        if response is not None and self.is_uac and self.state is DialogState.EARLY:
            self.route_set = list(reversed(_route_values(response.headers.get("record-route", []))))
            self._refresh_target(response)
        self._go("confirm", now)

    def terminate(self, now: float) -> None:
        if self.state is not DialogState.TERMINATED:
            self._go("terminate", now)

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    # ---------------------------------------------------------------- requests
    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> Request:
        """A request inside the dialog (§12.2.1.1); the caller adds the Via."""
        if method == "ACK" or method == "CANCEL":
            seq = cseq if cseq is not None else self.local_seq
        else:
            self.local_seq += 1
            seq = self.local_seq
        uri, routes = self._request_uri_and_routes()
        h: dict[str, list[str]] = {
            "max-forwards": ["70"],
            "from": [str(self.local_party)],
            "to": [str(self.remote_party)],
            "call-id": [self.call_id],
            "cseq": [f"{seq} {method}"],
        }
        if routes:
            h["route"] = routes
        if method != "CANCEL":
            h["contact"] = [self.local_contact]
        request = Request(method, uri, h, body)
        if content_type:
            request.set("content-type", content_type)
        for name, value in headers or ():
            request.add(name, value)
        return request

    def _request_uri_and_routes(self) -> tuple[str, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = parse_name_address(self.route_set[0]).uri
        if isinstance(first, SipUri) and first.is_loose_router:
            return self.remote_target, list(self.route_set)
        # strict routing (§12.2.1.1): first route becomes the Request-URI
        uri = first.without_headers() if isinstance(first, SipUri) else first
        return str(uri), [*self.route_set[1:], f"<{self.remote_target}>"]

    def next_hop(self) -> str:
        """The URI whose host/port/transport the request is sent to (§8.1.2)."""
        if self.route_set:
            return str(parse_name_address(self.route_set[0]).uri)
        return self.remote_target

    def receive_request(self, request: Request) -> None:
        """Check CSeq order and refresh the target (§12.2.2); raises CSeqOutOfOrder."""
        if request.method in ("ACK", "CANCEL"):
            return
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            raise CSeqOutOfOrder(seq, self.remote_seq)
        self.remote_seq = seq
        if request.method in TARGET_REFRESH:
            self._refresh_target(request)

    def refresh_target_from(self, response: Response) -> None:
        """A 2xx to our target refresh request updates the remote target (§12.2.1.2)."""
        self._refresh_target(response)

    def _refresh_target(self, message: Request | Response) -> None:
        try:
            contacts = message.contacts
        except ParseError:
            return
        if contacts:
            self.remote_target = str(contacts[0].uri)


def _route_values(values: list[str]) -> list[str]:
    return [item for value in values for item in split_list(value) if item]


# ------------------------------------------------------------ session timers (RFC 4028)


class Refresher(enum.Enum):
    LOCAL = "local"
    REMOTE = "remote"


@dataclass
class SessionTimer:
    """The negotiated session interval and who refreshes it (RFC 4028 §7, §9, §10)."""

    interval: int
    refresher: Refresher
    last_refresh: float

    @property
    def refresh_at(self) -> float:
        """When we, as refresher, send the refresh: half the interval (§10)."""
        return self.last_refresh + self.interval / 2

    @property
    def expires_at(self) -> float:
        """When the session is dead without refresh: SE - min(32, SE/3) (§10)."""
        return self.last_refresh + self.interval - min(32, self.interval / 3)

    @property
    def deadline(self) -> float:
        return self.refresh_at if self.refresher is Refresher.LOCAL else self.expires_at

    def refreshed(self, now: float) -> None:
        self.last_refresh = now


class SessionIntervalTooSmall(DialogError):
    """The offered Session-Expires is below our Min-SE (RFC 4028 §9): answer 422."""

    def __init__(self, offered: int, min_se: int) -> None:
        super().__init__(f"Session-Expires {offered} below Min-SE {min_se}", 422)
        self.min_se = min_se


def parse_session_expires(value: str) -> tuple[int, str | None]:
    """``delta-seconds [;refresher=uac|uas]`` (RFC 4028 §4)."""
    delta, _, rest = value.partition(";")
    seconds = parse_int(delta, "Session-Expires")
    params = parse_params(";" + rest) if rest.strip() else {}
    refresher = params.get("refresher")
    if refresher is not None and refresher.lower() not in ("uac", "uas"):
        raise ParseError(f"bad refresher {refresher!r}")
    return seconds, refresher.lower() if refresher else None


def negotiate_as_uas(request: Request, local_interval: int, min_se: int) -> tuple[int, str] | None:
    """Pick the session interval and refresher role for a 2xx (RFC 4028 §9).

    Returns ``(interval, "uac"|"uas")`` to put in the response, or None when no timer
    applies. Raises SessionIntervalTooSmall for a 422.
    """
    supports = "timer" in request.option_tags("supported")
    value = request.headers.get("session-expires")
    if value:
        offered, refresher = parse_session_expires(value[0])
        if offered < min_se:
            raise SessionIntervalTooSmall(offered, min_se)
        interval = min(offered, max(local_interval, min_se))
        if refresher is None:
            refresher = "uac" if supports else "uas"
        if refresher == "uac" and not supports:
            refresher = "uas"
        return interval, refresher
    if local_interval <= 0:
        return None
    return max(local_interval, min_se), "uac" if supports else "uas"
