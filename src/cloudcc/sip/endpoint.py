"""The SIP endpoint: transports + transaction layer + timers + the UA cores (asyncio).

``SipEndpoint`` is the only object the contact layer talks to. It listens (UDP and
TCP on one port, optional TLS and WebSocket), answers OPTIONS, runs the registrar
(digest against the app's credential lookup), admits INVITEs (allow-listed trunk,
digest, or the app's policy), hands each new call to the app as an IncomingCall,
and places outgoing calls (forking to an AOR's registered contacts). Protocol work
is done by the sans-I/O cores; this module moves bytes and fires one timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import inspect
import ipaddress
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Protocol

from .auth import (
    Algorithm,
    Credential,
    DigestAuthenticator,
    Verdict,
    parse_authorization,
)
from .call import (
    AuthKind,
    Call,
    EndCause,
    IncomingCall,
    OutgoingCall,
    RequestInfo,
    _Fork,
    request_info,
)
from .dialog import Dialog, SessionIntervalTooSmall, negotiate_as_uas
from .exceptions import (
    AuthError,
    CallError,
    CallFailed,
    DialogError,
    ParseError,
    RegistrationError,
    SdpError,
    TransportError,
)
from .headers import NameAddress, Via
from .message import (
    REASON_PHRASES,
    Request,
    Response,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
)
from .parser import DEFAULT_LIMITS, Limits, parse_message
from .protection import Flood, Protection, ProtectionSettings
from .registrar import Binding, ContactRequest, Registrar
from .registration import Registration
from .sdp import SessionDescription, parse_sdp
from .timers import DEFAULT_TIMERS, TimerQueue, TimerSettings
from .transaction import (
    Action,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    Send,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TimedOut,
    Transaction,
    server_key_for,
)
from .transport import Address, Flow, Target, TransportLayer
from .uri import DEFAULT_PORTS, SipUri, parse_sip_uri, unescape

log = logging.getLogger("cloudcc.sip")

# The lookup may answer at once (an in-memory cache) or be a coroutine (a database).
CredentialLookup = Callable[[str, str], "Credential | Awaitable[Credential | None] | None"]
TrunkCheck = Callable[[Address, RequestInfo], Awaitable[object | None]]
CallHandler = Callable[[IncomingCall], Awaitable[None]]


class DialogListener(Protocol):
    """Told when a dialog is opened (answered) and when its call is over."""

    def opened(self, call: Call, dialog: Dialog) -> None: ...

    def closed(self, call: Call, dialog: Dialog) -> None: ...


class Admission(enum.Enum):
    """What to do with an INVITE that is neither from a trunk nor authenticated."""

    ADMIT = "admit"  # let it in unauthenticated (a public number behind an untrusted edge)
    CHALLENGE = "challenge"  # 407: the caller may prove who it is (a phone)
    REFUSE = "refuse"  # 403 at once


# True admits, False challenges (the older boolean form), or an Admission.
AdmitPolicy = Callable[[Address, RequestInfo], Awaitable["bool | Admission"]]

SUPPORTED_OPTIONS = frozenset({"timer", "replaces", "path"})
ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO",
                   "UPDATE", "REFER", "NOTIFY")  # fmt: skip
_KNOWN_METHODS = frozenset({*ALLOWED_METHODS, "PRACK", "SUBSCRIBE", "PUBLISH", "MESSAGE"})


@dataclass
class EndpointConfig:
    """How an endpoint listens and behaves. Port 0 picks free ports (see ``ports``)."""

    host: str = "127.0.0.1"
    port: int = 5060  # UDP and TCP
    tls_port: int | None = None
    ssl_context: ssl.SSLContext | None = None
    ws_port: int | None = None
    ws_ssl_context: ssl.SSLContext | None = None  # WSS when set
    client_ssl_context: ssl.SSLContext | None = None  # for outgoing TLS
    public_host: str | None = None  # written in Via/Contact; defaults to host
    realm: str | None = None  # digest realm; defaults to the request's domain
    user_agent: str = "cloudcc"
    timers: TimerSettings = DEFAULT_TIMERS
    limits: Limits = DEFAULT_LIMITS
    protection: ProtectionSettings = field(default_factory=ProtectionSettings)
    # One challenge per algorithm, in this order (RFC 8760 §2.4). MD5 alone by default:
    # SIPp 3.6 answers only the first challenge, and baresip 1.0 (libre) gives up on a
    # REGISTER as soon as any challenge is SHA-256. Set (SHA256, MD5) for modern phones.
    digest_algorithms: tuple[Algorithm, ...] = (Algorithm.MD5,)
    nonce_lifetime: float = 300.0
    session_expires: int = 1800  # RFC 4028; 0 disables our session timers
    min_se: int = 90
    min_expires: int = 60
    max_expires: int = 7200
    default_expires: int = 3600
    answer_timeout: float = 180.0  # an unanswered incoming call gets 480 after this
    reinvite_answer_timeout: float = 2.0
    nat_keepalive_interval: float | None = 30.0  # CRLF to UDP-registered phones
    force_rport: bool = False  # answer to the source port even without rport (NAT)
    stream_idle_timeout: float = 7300.0


class SipEndpoint:
    """A SIP user agent for a B2BUA: registrar, incoming and outgoing calls.

    ``credentials(realm, username)`` returns a Credential (password or HA1 + opaque
    owner) or None; ``trunk_check(source, info)`` returns an owner for allow-listed
    trunks; ``on_call(call)`` receives every admitted IncomingCall;
    ``allow_unauthenticated(source, info)`` may admit calls without digest (public
    numbers reached from an untrusted edge); by default such calls are challenged.
    """

    def __init__(
        self,
        config: EndpointConfig | None = None,
        *,
        credentials: CredentialLookup | None = None,
        trunk_check: TrunkCheck | None = None,
        on_call: CallHandler | None = None,
        allow_unauthenticated: AdmitPolicy | None = None,
    ) -> None:
        self.config = config or EndpointConfig()
        self.credentials = credentials
        self.trunk_check = trunk_check
        self.on_call = on_call
        self.allow_unauthenticated = allow_unauthenticated
        c = self.config
        self.registrar = Registrar(
            min_expires=c.min_expires, max_expires=c.max_expires, default_expires=c.default_expires
        )
        self.authenticator = DigestAuthenticator(c.digest_algorithms, c.nonce_lifetime)
        self.protection = Protection(c.protection, time.monotonic())
        self.allow_header = ", ".join(ALLOWED_METHODS)
        self.ports: dict[str, int] = {}
        self.stats: dict[str, int] = {"parse_errors": 0, "dropped": 0, "handler_errors": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: TransportLayer | None = None
        self._server_tx: dict[Hashable, ServerInviteTransaction | ServerNonInviteTransaction] = {}
        self._client_tx: dict[Hashable, ClientInviteTransaction | ClientNonInviteTransaction] = {}
        self._handlers: dict[Hashable, Callable[[Transaction, Action], None]] = {}
        self._invite_calls: dict[Hashable, IncomingCall] = {}
        self._merged: dict[tuple[str, str | None, int], Hashable] = {}
        self._dialogs: dict[tuple[str, str, str], Call] = {}
        self._calls: set[Call] = set()
        self._call_sources: dict[Call, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers = TimerQueue()
        self._timer_handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._resolved: dict[tuple[str, int], str] = {}
        self._date_cache: tuple[int, str] = (0, "")
        self._udp_targets: dict[Address, Target] = {}
        self._running = False
        # Told of every dialog opened and closed (a journal that lets a restarted node
        # release the dialogs a crash left behind).
        self.dialog_listeners: list[DialogListener] = []

    # ================================================================ lifecycle
    async def start(self) -> None:
        """Bind the listeners; ``ports`` then holds the bound port of each transport."""
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        c = self.config
        self._transport = TransportLayer(
            self._on_data,
            limits=c.limits,
            max_connections=c.protection.max_connections,
            on_flow_closed=self._on_flow_closed,
        )
        await self._transport.start(
            c.host,
            c.port,
            tls_port=c.tls_port,
            ssl_context=c.ssl_context,
            ws_port=c.ws_port,
            ws_ssl_context=c.ws_ssl_context,
            client_ssl_context=c.client_ssl_context,
        )
        self.ports = dict(self._transport.ports)
        self._running = True
        if c.nat_keepalive_interval:
            self._schedule("keepalive", self.now() + c.nat_keepalive_interval)

    async def stop(self) -> None:
        """Hang up nothing, just close: listeners, flows, timers and tasks."""
        if not self._running:
            return
        self._running = False
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._transport is not None
        await self._transport.stop()

    async def __aenter__(self) -> SipEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    @property
    def host(self) -> str:
        return self.config.public_host or self.config.host

    @property
    def _retry_after(self) -> int:
        return self.config.protection.retry_after

    @property
    def listening(self) -> bool:
        """Whether the listeners are bound (between ``start`` and ``stop``)."""
        return self._running

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    @property
    def calls(self) -> list[Call]:
        return list(self._calls)

    # ================================================================== timers
    def _schedule(self, key: Hashable, when: float | None) -> None:
        self._timers.schedule(key, when)
        if when is not None and (self._armed_at is None or when < self._armed_at):
            self._arm(when)

    def _arm(self, when: float | None) -> None:
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        self._armed_at = when
        if when is not None and self._loop is not None and self._running:
            self._timer_handle = self._loop.call_at(when, self._on_timers)

    def _on_timers(self) -> None:
        self._timer_handle = None
        self._armed_at = None
        now = self.now()
        for key in self._timers.due(now):
            try:
                self._fire(key, now)
            except Exception:
                log.exception("timer %r failed", key)
        self._arm(self._timers.next_deadline())

    def _fire(self, key: Hashable, now: float) -> None:
        if isinstance(key, Transaction):
            tx = key
            self._process(tx, tx.on_timer(now))  # type: ignore[attr-defined]
        elif isinstance(key, Call):
            key._on_session_timer(now)
            self._schedule_session(key)
        elif key == "registrar":
            self.registrar.expire(now)
            self._schedule("registrar", self.registrar.next_expiry())
        elif key == "keepalive":
            self._keepalive(now)

    def _schedule_session(self, call: Call) -> None:
        timer = call.dialog.session_timer if call.dialog is not None else None
        if timer is None or call.ended:
            self._timers.cancel(call)
            return
        self._schedule(call, timer.deadline)

    def _keepalive(self, now: float) -> None:
        assert self._transport is not None
        interval = self.config.nat_keepalive_interval or 30.0
        sent = set()
        pinned: set[Flow] = set()
        for aor in self.registrar.aors():
            for binding in self.registrar.lookup(aor, now):
                if isinstance(binding.flow, Flow):
                    pinned.add(binding.flow)
                elif binding.transport == "UDP" and binding.source and binding.source not in sent:
                    sent.add(binding.source)
                    with contextlib.suppress(TransportError, OSError):
                        self._transport.send(Target("UDP", binding.source), b"\r\n\r\n")
        for call in self._calls:
            if call._peer is not None and call._peer.flow is not None:
                pinned.add(call._peer.flow)
        cutoff = now - self.config.stream_idle_timeout
        for flow in self._transport.flows():
            if flow not in pinned and flow.last_activity < cutoff:
                flow.close()
        self._schedule("keepalive", now + interval)

    # ============================================================ transmission
    def _transmit(self, target: Target, data: bytes, tx: Transaction | None = None) -> None:
        assert self._transport is not None
        try:
            self._transport.send(target, data)
        except (TransportError, OSError):
            if tx is not None:
                self._process(tx, tx.transport_error(self.now()))

    def _process(self, tx: Transaction, actions: list[Action]) -> None:
        """Carry out what a transaction asked for, then file it by its state."""
        for action in actions:
            if type(action) is Send:
                self._transmit(tx.target, action.data, tx)  # type: ignore[arg-type]
            elif isinstance(tx, ServerInviteTransaction):
                if isinstance(action, TimedOut):
                    call = self._invite_calls.get(tx.key)
                    if call is not None:
                        call._on_invite_timeout(tx)
            else:
                handler = self._handlers.get(tx.key)
                if handler is not None:
                    handler(tx, action)
        if tx.terminated:
            key = tx.key
            if isinstance(tx, (ServerInviteTransaction, ServerNonInviteTransaction)):
                if self._server_tx.get(key) is tx:
                    del self._server_tx[key]
                if isinstance(tx, ServerInviteTransaction):
                    self._invite_calls.pop(key, None)
            elif self._client_tx.get(key) is tx:
                del self._client_tx[key]
                self._handlers.pop(key, None)
            self._timers.cancel(tx)
        else:
            self._schedule(tx, tx.deadline)

    def _respond(
        self, tx: ServerInviteTransaction | ServerNonInviteTransaction, response: Response
    ) -> None:
        if tx.terminated:
            return
        self._process(tx, tx.respond(response, self.now()))

    def _via(self, kind: str, branch: str) -> str:
        port = self.ports.get("UDP" if kind == "UDP" else kind, self.ports.get("UDP", 5060))
        return f"SIP/2.0/{kind} {self.host}:{port};branch={branch};rport"

    def _contact_value(self, kind: str, user: str | None = None) -> str:
        port = self.ports.get(kind, self.ports.get("UDP", 5060))
        transport = "" if kind == "UDP" else f";transport={kind.lower()}"
        who = f"{user}@" if user else ""
        return f"<sip:{who}{self.host}:{port}{transport}>"

    def _start_client(
        self,
        request: Request,
        target: Target,
        handler: Callable[[Transaction, Action], None],
        *,
        ring_timeout: float | None = None,
    ) -> ClientInviteTransaction | ClientNonInviteTransaction:
        """Add our Via (§8.1.1.7), create the client transaction and send."""
        if "via" not in request.headers:
            request.add("Via", self._via(target.kind, new_branch()), first=True)
        request.headers.setdefault("user-agent", [self.config.user_agent])
        now = self.now()
        reliable = target.kind != "UDP"
        tx: ClientInviteTransaction | ClientNonInviteTransaction
        if request.method == "INVITE":
            tx = ClientInviteTransaction(
                request, target, reliable, now, self.config.timers, ring_timeout=ring_timeout
            )
        else:
            tx = ClientNonInviteTransaction(request, target, reliable, now, self.config.timers)
        self._client_tx[tx.key] = tx
        self._handlers[tx.key] = handler
        self._process(tx, tx.start())
        return tx

    async def _transact(self, request: Request, target: Target) -> Response:
        """Send a request and await its final response (408/503 synthesised on failure).

        For an in-dialog INVITE the 2xx is ACKed here (and re-ACKed on retransmission).
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Response] = loop.create_future()
        ack: list[bytes] = []

        def handler(tx: Transaction, action: Action) -> None:
            if isinstance(action, TimedOut):
                status = 503 if action.timer == "transport" else 408
                if not done.done():
                    done.set_result(make_response(request, status))
                return
            if not isinstance(action, Deliver) or not isinstance(action.message, Response):
                return
            response = action.message
            if response.status < 200:
                return
            if request.method == "INVITE" and response.status < 300:
                if not ack:
                    ack.append(self._ack_for(request, response, target.kind))
                self._transmit(target, ack[0])
            if not done.done():
                done.set_result(response)

        self._start_client(request, target, handler)
        return await done

    def _ack_for(self, invite: Request, response: Response, kind: str) -> bytes:
        """The ACK of an in-dialog INVITE's 2xx (§13.2.2.4): a new transaction's Via."""
        headers = {k: list(v) for k, v in invite.headers.items() if k in _ACK_COPY}
        headers["to"] = list(response.headers["to"])
        headers["cseq"] = [f"{invite.cseq.seq} ACK"]
        ack = Request("ACK", invite.uri_text, headers)
        ack.add("Via", self._via(kind, new_branch()), first=True)
        return ack.encode()

    # ======================================================== receiving side
    def _on_data(self, data: bytes, source: Address, kind: str, flow: Flow | None) -> None:
        """Every datagram / framed message comes here; nothing raises out of it."""
        try:
            now = self.now()
            if not self.protection.accept_packet(source[0], now):
                self.stats["dropped"] += 1
                return
            if len(data) <= 4 and not data.strip():
                return  # CRLF keep-alive on UDP
            try:
                message = parse_message(data, self.config.limits, stream=kind != "UDP")
            except ParseError as exc:
                self.stats["parse_errors"] += 1
                self._reject_unparsable(exc, source, kind, flow)
                return
            if isinstance(message, Response):
                self._on_response(message, now)
            else:
                self._on_request(message, source, kind, flow, now)
        except Exception:
            log.exception("error handling a message from %s:%s", *source)

    def _reject_unparsable(
        self, exc: ParseError, source: Address, kind: str, flow: Flow | None
    ) -> None:
        """Answer a bad request statelessly when its headers allow (§8.2, §21.4.1)."""
        message = exc.message
        if not isinstance(message, Request) or message.method == "ACK":
            return
        h = message.headers
        if "via" not in h:
            return
        status = exc.status if exc.status in (400, 413, 416, 505) else 400
        # copy what identifies the request, even if some of it is missing (RFC 4475 §3.3.1)
        headers = {k: h[k][:1] if k != "via" else list(h[k]) for k in _ECHO if k in h}
        response = Response(status, None, headers)
        response.reason = f"{response.reason} ({exc.detail[:60]})".replace("\r", " ").replace(
            "\n", " "
        )
        self._transmit(Target(kind, source, flow), response.encode())

    def _on_response(self, response: Response, now: float) -> None:
        tx = self._client_tx.get((response.via.branch, response.cseq.method))
        if tx is None:
            return  # stray (§18.1.2): drop
        self._process(tx, tx.receive(response, now))

    def _on_request(
        self, request: Request, source: Address, kind: str, flow: Flow | None, now: float
    ) -> None:
        via = request.via
        ip, port = source
        # §18.2.1 received, RFC 3581 rport: where the request really came from
        if via.host != ip or "rport" in via.params or self.config.force_rport:
            params = dict(via.params)
            params["received"] = ip
            if "rport" in params or self.config.force_rport:
                params["rport"] = str(port)
            via = Via(via.transport, via.host, via.port, params)
            request.replace_top_via(via)
        if kind == "UDP":
            rport = via.params.get("rport")
            address = (
                via.params.get("received") or via.host,
                int(rport) if rport else via.port or 5060,
            )
            # one Target per address, shared by its transactions (fewer objects for the GC)
            target = self._udp_targets.get(address)
            if target is None:
                if len(self._udp_targets) >= 4096:
                    self._udp_targets.clear()
                target = self._udp_targets[address] = Target("UDP", address)
        else:
            target = Target(kind, source, flow)
        method = request.method
        if method == "ACK":
            self._on_ack(request, now)
            return
        key = server_key_for(request)
        tx = self._server_tx.get(key)
        if tx is not None:  # a retransmission (§17.2.3)
            self._process(tx, tx.receive_request(request, now))
            return
        if request.to.tag is None and method != "CANCEL":
            flood = self.protection.unauthenticated.check(ip, now)
            if flood is not Flood.ALLOW:  # a scan or flood from an unknown source: silence
                self.stats["dropped"] += 1
                if flood is Flood.BAN:
                    log.warning(
                        "banning %s for %.0f s: more than %g new requests/s without authentication",
                        ip,
                        self.config.protection.ban_seconds,
                        self.config.protection.unauthenticated_per_second,
                        extra={"source": ip},
                    )
                return
        if method == "REGISTER" or method == "OPTIONS":
            answer = self._stateless_answer(request)
            if answer is not None:
                self._transmit(target, answer.encode())
                return
        if len(self._server_tx) >= self.config.protection.max_transactions:
            return  # overloaded: drop, the peer retransmits
        reliable = kind != "UDP"
        timers = self.config.timers
        if method == "INVITE":
            tx = ServerInviteTransaction(request, target, reliable, now, timers)
        else:
            tx = ServerNonInviteTransaction(request, target, reliable, now, timers)
        self._server_tx[key] = tx
        self._schedule(tx, tx.deadline)
        try:
            self._dispatch(tx, request, source, kind, flow, now)
        except ParseError as exc:
            status = exc.status if 400 <= exc.status < 700 else 400
            self._respond(tx, make_response(request, status, _short_reason(status, exc.detail)))
        except DialogError as exc:
            self._respond(tx, make_response(request, exc.status))

    def _dispatch(
        self,
        tx: ServerInviteTransaction | ServerNonInviteTransaction,
        request: Request,
        source: Address,
        kind: str,
        flow: Flow | None,
        now: float,
    ) -> None:
        method = request.method
        if method == "CANCEL":
            self._on_cancel(tx, request)
            return
        scheme = request.uri_text[:5].lower()
        if not (scheme == "sips:" or scheme.startswith("sip:")):  # §8.2.2.1
            self._respond(tx, make_response(request, 416))
            return
        unsupported = (
            [t for t in request.option_tags("require") if t not in SUPPORTED_OPTIONS]
            if "require" in request.headers
            else None
        )
        if unsupported:  # §8.2.2.3
            response = make_response(
                request, 420, headers=[("Unsupported", ", ".join(unsupported))]
            )
            self._respond(tx, response)
            return
        to_tag = request.to.tag
        if to_tag is not None:
            call = self._dialogs.get((request.call_id, to_tag, request.from_.tag or ""))
            if call is None:
                self._respond(tx, make_response(request, 481))
                return
            call._on_request(tx, request, now)
            return
        if method == "INVITE":
            assert isinstance(tx, ServerInviteTransaction)
            self._on_invite(tx, request, source, kind, flow, now)
        elif method == "REGISTER":
            self._on_register(tx, request, source, kind, flow, now)
        elif method == "OPTIONS":
            self._respond(tx, self._options_response(request))
        elif method in ("BYE", "INFO", "UPDATE", "REFER", "NOTIFY", "PRACK"):
            self._respond(tx, make_response(request, 481))
        elif method in _KNOWN_METHODS:
            response = make_response(request, 405, headers=[("Allow", self.allow_header)])
            self._respond(tx, response)
        else:
            response = make_response(request, 501, headers=[("Allow", self.allow_header)])
            self._respond(tx, response)

    def _options_response(self, request: Request) -> Response:
        return make_response(
            request,
            200,
            to_tag=new_tag(),
            headers=[
                ("Allow", self.allow_header),
                ("Accept", "application/sdp"),
                ("Supported", ", ".join(sorted(SUPPORTED_OPTIONS))),
            ],
        )

    def _on_ack(self, ack: Request, now: float) -> None:
        tx = self._server_tx.get(server_key_for(ack))
        # the ACK of a non-2xx shares the INVITE's branch (§17.2.1)
        if isinstance(tx, ServerInviteTransaction) and tx.state.value != "accepted":
            self._process(tx, tx.receive_request(ack, now))
            return
        to_tag = ack.to.tag
        if to_tag is None:
            return
        call = self._dialogs.get((ack.call_id, to_tag, ack.from_.tag or ""))
        if call is not None:
            call._on_ack(ack, now)

    def _on_cancel(
        self, tx: ServerInviteTransaction | ServerNonInviteTransaction, request: Request
    ) -> None:
        """§9.2: match the INVITE by branch, answer 200 to CANCEL, 487 to the INVITE."""
        key = server_key_for(_as_method(request, "INVITE"))
        invite_tx = self._server_tx.get(key)
        if invite_tx is None:
            self._respond(tx, make_response(request, 481))
            return
        call = self._invite_calls.get(key)
        to_tag = call.local_tag if call is not None else None
        self._respond(tx, make_response(request, 200, to_tag=to_tag))
        if call is not None:
            call._on_cancel()

    def _on_flow_closed(self, flow: Flow) -> None:
        self.registrar.drop_flow(flow)

    # ============================================================== REGISTER
    def _register_check(
        self, request: Request
    ) -> Response | tuple[SipUri, list[ContactRequest] | None]:
        """Validate a REGISTER (§10.3 steps 1-3): the AOR and Contacts, or an error response."""
        aor = request.to.uri
        if not isinstance(aor, SipUri) or aor.user is None:
            # RFC 4475 §3.3.4: the To of a REGISTER must be a SIP AOR
            return make_response(request, 400, "AOR must be a SIP URI")
        try:
            contacts = (
                None
                if request.is_wildcard_contact
                else [ContactRequest.from_name_address(c) for c in request.contacts]
            )
        except RegistrationError as exc:
            return make_response(request, exc.status)
        return aor, contacts

    def _stateless_answer(self, request: Request) -> Response | None:
        """Answer statelessly what needs no transaction (§8.2.7): challenges and OPTIONS.

        A stateless UAS sends no 1xx and never retransmits; a lost answer is repaired by
        the client's own retransmission, which gets a fresh answer. Keeping no state
        for unauthenticated REGISTERs also denies a scanner any memory on this node.
        """
        method = request.method
        h = request.headers
        if "require" in h or request.to.tag is not None:
            return None
        scheme = request.uri_text[:5].lower()
        if not (scheme == "sips:" or scheme.startswith("sip:")):
            return None  # the stateful path answers 416
        if method == "OPTIONS":
            return self._options_response(request)
        if "authorization" in h:
            return None
        try:
            checked = self._register_check(request)
        except ParseError as exc:
            return make_response(request, 400, _short_reason(400, exc.detail))
        if isinstance(checked, Response):
            return checked
        realm = self.config.realm or checked[0].host
        # a retransmission must get the same bytes: the To tag comes from the request
        tag = hashlib.blake2s(
            f"{request.via.branch}{request.call_id}".encode(), digest_size=6
        ).hexdigest()
        return self._challenge_response(request, realm, proxy=False, to_tag=tag)

    def _on_register(
        self,
        tx: ServerInviteTransaction | ServerNonInviteTransaction,
        request: Request,
        source: Address,
        kind: str,
        flow: Flow | None,
        now: float,
    ) -> None:
        checked = self._register_check(request)
        if isinstance(checked, Response):
            self._respond(tx, checked)
            return
        aor, contacts = checked
        try:
            expires = request.expires
        except ParseError:
            expires = None  # RFC 4475 §3.1.2.4: absurd Expires means the default
        realm = self.config.realm or aor.host

        def complete(credential: Credential | None) -> None:
            if credential is None:
                return
            if aor.user is not None and credential.username != _unescaped(aor.user):
                self._respond(tx, make_response(request, 403, "Not Your Address-of-Record"))
                return
            self._register(tx, request, aor, contacts, expires, credential, source, kind, flow)

        self._authenticate(tx, request, realm, source, complete, proxy=False)

    def _register(
        self,
        tx: ServerInviteTransaction | ServerNonInviteTransaction,
        request: Request,
        aor: SipUri,
        contacts: list[ContactRequest] | None,
        expires: int | None,
        credential: Credential,
        source: Address,
        kind: str,
        flow: Flow | None,
    ) -> None:
        now = self.now()
        # RFC 3327: a REGISTER that came through proxies (Kamailio) carries their Path;
        # requests to these contacts must take the same way back
        path = tuple(v for v in request.get_all("path") if v)
        try:
            bindings = self.registrar.register(
                aor,
                contacts,
                expires,
                request.call_id,
                request.cseq.seq,
                now,
                source=source,
                transport=kind,
                flow=flow,
                owner=credential.owner,
                user_agent=request.get("user-agent"),
                path=path,
            )
        except RegistrationError as exc:
            headers = []
            if exc.min_expires is not None:
                headers.append(("Min-Expires", str(exc.min_expires)))  # §10.3 step 7
            self._respond(tx, make_response(request, exc.status, headers=headers))
            return
        self._schedule("registrar", self.registrar.next_expiry())
        headers = [("Contact", f"<{b.contact}>;expires={b.expires_in(now)}") for b in bindings]
        headers.append(("Date", self._date()))  # §10.3 step 8
        if path and "path" in request.option_tags("supported"):
            headers += [("Path", value) for value in path]  # RFC 3327 §5.3
        self._respond(tx, make_response(request, 200, headers=headers, to_tag=new_tag()))

    def _date(self) -> str:
        second = int(time.time())
        if self._date_cache[0] != second:
            self._date_cache = (second, formatdate(second, usegmt=True))
        return self._date_cache[1]

    # =============================================================== digest
    def _challenge_response(
        self,
        request: Request,
        realm: str,
        *,
        proxy: bool,
        stale: bool = False,
        to_tag: str | None = None,
    ) -> Response:
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        values = self.authenticator.challenges(realm, self.now(), stale=stale)
        return make_response(
            request,
            407 if proxy else 401,
            headers=[(name, v) for v in values],
            to_tag=to_tag or new_tag(),
        )

    def _challenge(
        self,
        tx: ServerInviteTransaction | ServerNonInviteTransaction,
        request: Request,
        realm: str,
        *,
        proxy: bool,
        stale: bool = False,
    ) -> None:
        self._respond(tx, self._challenge_response(request, realm, proxy=proxy, stale=stale))

    def _authenticate(
        self,
        tx: ServerInviteTransaction | ServerNonInviteTransaction,
        request: Request,
        realm: str,
        source: Address,
        then: Callable[[Credential | None], None],
        *,
        proxy: bool,
    ) -> None:
        """Check the request's digest and call ``then`` with the Credential, or None.

        None means a challenge (no or stale credentials) or a 403 has been sent. The
        credential lookup may answer at once or be a coroutine; only the latter costs
        a task.
        """
        name = "proxy-authorization" if proxy else "authorization"
        values = request.headers.get(name) or request.headers.get("authorization")
        if not values or self.credentials is None:
            self._challenge(tx, request, realm, proxy=proxy)
            then(None)
            return
        try:
            auth = parse_authorization(values[0])
        except AuthError:
            auth = None  # e.g. an unknown scheme (RFC 4475 §3.3.7): challenge
        if auth is None or auth.realm != realm:
            self._challenge(tx, request, realm, proxy=proxy)
            then(None)
            return
        found = self.credentials(realm, auth.username)

        def decide(credential: Credential | None) -> None:
            if tx.terminated:
                then(None)
                return
            verdict = Verdict.FAILED
            if credential is not None:
                verdict = self.authenticator.verify(
                    auth, request.method, credential, self.now(), body=request.body
                )
            if verdict is Verdict.OK and credential is not None:
                self.protection.bans.record_success(source[0])
                self.protection.unauthenticated.trust(source[0], self.now())
                then(credential)
                return
            if verdict is Verdict.STALE:
                self._challenge(tx, request, realm, proxy=proxy, stale=True)
            else:
                # security: a guessing scanner or a misconfigured phone shows up here
                log.info(
                    "SIP authentication failed: %s for %s@%s from %s:%s (%s)",
                    request.method,
                    auth.username,
                    realm,
                    source[0],
                    source[1],
                    "unknown user" if credential is None else "wrong password",
                    extra={"source": source[0], "username": auth.username},
                )
                if self.protection.bans.record_failure(source[0], self.now()):
                    log.warning(
                        "banning %s for %.0f s after repeated authentication failures",
                        source[0],
                        self.config.protection.ban_seconds,
                        extra={"source": source[0]},
                    )
                response = make_response(request, 403, "Authentication Failed", to_tag=new_tag())
                self._respond(tx, response)
            then(None)

        if inspect.isawaitable(found):

            async def later(pending: Awaitable[Credential | None]) -> None:
                decide(await pending)

            self._spawn(later(found))
        else:
            decide(found)

    # ================================================================ INVITE
    def _on_invite(
        self,
        tx: ServerInviteTransaction,
        request: Request,
        source: Address,
        kind: str,
        flow: Flow | None,
        now: float,
    ) -> None:
        from_tag = request.from_.tag
        merged_key = (request.call_id, from_tag, request.cseq.seq)
        if merged_key in self._merged:  # §8.2.2.2 merged request
            self._respond(tx, make_response(request, 482))
            return
        ctype = request.content_type
        if request.body and ctype not in (None, "application/sdp"):
            response = make_response(request, 415, headers=[("Accept", "application/sdp")])
            self._respond(tx, response)
            return
        if len(request.contacts) != 1:
            raise DialogError("an INVITE needs exactly one Contact", 400)
        offer: SessionDescription | None = None
        if request.body:
            try:
                offer = parse_sdp(request.body)
            except SdpError:
                self._respond(tx, make_response(request, 400, "Bad SDP"))
                return
        try:
            session = negotiate_as_uas(request, self.config.session_expires, self.config.min_se)
        except SessionIntervalTooSmall as exc:
            headers = [("Min-SE", str(exc.min_se))]
            self._respond(tx, make_response(request, 422, headers=headers))
            return
        info = request_info(request, source, kind)
        target = Target(kind, source, flow)
        call = IncomingCall(self, tx, request, info, target, offer, session, now)
        self._merged[merged_key] = tx.key
        self._invite_calls[tx.key] = call
        self._calls.add(call)
        self._spawn(self._admit(call, tx, request, source))

    async def _admit(
        self, call: IncomingCall, tx: ServerInviteTransaction, request: Request, source: Address
    ) -> None:
        """Decide who the caller is, apply admission limits, then run the app's handler."""
        try:
            owner: object = None
            kind = AuthKind.NONE
            if self.trunk_check is not None:
                owner = await self.trunk_check(source, call.info)
                if owner is not None:
                    kind = AuthKind.TRUNK
                    self.protection.unauthenticated.trust(source[0], self.now())
            if kind is AuthKind.NONE:
                realm = self.config.realm or call.info.request_host
                value = request.headers.get("proxy-authorization") or request.headers.get(
                    "authorization"
                )
                if value and self.credentials is not None:
                    verified: asyncio.Future[Credential | None] = self._loop_future()
                    self._authenticate(tx, request, realm, source, verified.set_result, proxy=True)
                    credential = await verified
                    if credential is None:  # challenged or refused: that INVITE is done
                        call._end_now(EndCause.REJECTED, 407)
                        return
                    if call.ended:
                        return
                    owner, kind = credential.owner, AuthKind.DIGEST
                else:
                    verdict: bool | Admission = Admission.CHALLENGE
                    if self.allow_unauthenticated is not None:
                        verdict = await self.allow_unauthenticated(source, call.info)
                    if verdict is True or verdict is Admission.ADMIT:
                        kind = AuthKind.NONE
                    elif verdict is not Admission.REFUSE and self.credentials is not None:
                        self._challenge(tx, request, realm, proxy=True)
                        call._end_now(EndCause.REJECTED, 407)
                        return
                    else:
                        await call.reject(403)
                        return
            if call.ended:
                return
            if kind is not AuthKind.TRUNK:  # trunks carry many calls from one address
                if not self.protection.dialog_opened(source[0]):
                    await call.reject(503, headers=[("Retry-After", str(self._retry_after))])
                    return
                self._call_sources[call] = source[0]
            retry = self.protection.admission.admit(len(self._calls) - 1, self.now())
            if retry is not None:  # §21.5.4: overloaded, come back later
                await call.reject(503, headers=[("Retry-After", str(retry))])
                return
            call.owner = owner
            call.auth = kind
            if self.on_call is None:
                await call.reject(480)
                return
            assert self._loop is not None
            call._ring_timer = self._loop.call_later(
                self.config.answer_timeout, self._ring_timeout, call
            )
            await self.on_call(call)
        except CallError:
            pass
        except Exception:
            self.stats["handler_errors"] += 1
            log.exception("call handler failed for %s", call.call_id)
            if call.state.value == "ringing":
                with contextlib.suppress(CallError):
                    await call.reject(500)

    def _loop_future(self) -> asyncio.Future[Any]:
        assert self._loop is not None
        return self._loop.create_future()

    def _ring_timeout(self, call: IncomingCall) -> None:
        if call.state.value == "ringing":
            self._spawn(call.reject(480, "No Answer"))

    # =========================================================== dialogs, calls
    def _dialog_opened(self, call: Call, dialog: Dialog) -> None:
        self._dialogs[dialog.key] = call
        self._calls.add(call)
        for listener in self.dialog_listeners:
            listener.opened(call, dialog)

    def _call_finished(self, call: Call) -> None:
        if call.dialog is not None and self._dialogs.get(call.dialog.key) is call:
            del self._dialogs[call.dialog.key]
            for listener in self.dialog_listeners:
                listener.closed(call, call.dialog)
        self._calls.discard(call)
        self._timers.cancel(call)
        if isinstance(call, IncomingCall):
            call._leave_ringing()
        source = self._call_sources.pop(call, None)
        if source is not None:
            self.protection.dialog_closed(source)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SIP task failed", exc_info=task.exception())

    # ============================================================ outgoing
    async def call(
        self,
        target: str | SipUri,
        sdp: SessionDescription | None,
        *,
        from_uri: str | SipUri | None = None,
        from_display: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        ring_timeout: float | None = 60.0,
        credentials: Credential | None = None,
        transport: str | None = None,
        to: str | SipUri | None = None,
    ) -> OutgoingCall:
        """Place a call; returns at once (events, ``answered()``, ``cancel()``).

        ``target`` is a SIP URI, or an AOR with registered contacts: then every
        contact is rung in parallel and the first 2xx wins, the others are CANCELled.
        ``credentials`` answer a 401/407 from a carrier; ``ring_timeout`` bounds ringing;
        ``to`` is the To URI when it is not the target (a number called at a PBX's AOR).
        """
        if not self._running:
            raise CallError("the endpoint is not started")
        uri = target if isinstance(target, SipUri) else _to_sip_uri(target)
        now = self.now()
        bindings = self.registrar.lookup(uri, now) if uri.user else []
        call_id = new_call_id(self.host)
        call = OutgoingCall(self, call_id, now)
        call._credentials = credentials
        if sdp is not None:
            call.local_sdp = sdp
        local_tag = new_tag()
        if from_uri is None:
            from_uri = f"sip:{self.config.user_agent}@{self.host}"
        from_party = NameAddress(
            from_uri if isinstance(from_uri, SipUri) else _to_sip_uri(from_uri),
            from_display,
            {"tag": local_tag},
        )
        if to is not None:
            to_party = NameAddress(to if isinstance(to, SipUri) else _to_sip_uri(to))
        else:
            to_party = NameAddress(uri.without_headers())
        forks: list[tuple[str, Target, bool, tuple[str, ...]]] = []
        if bindings:
            for binding in bindings:
                if binding.path:  # RFC 3327: back through the proxies it registered through
                    first = NameAddress.parse_first(binding.path[0])
                    forks.append((binding.contact, await self._resolve(first), False, binding.path))
                else:
                    forks.append((binding.contact, self._binding_target(binding), True, ()))
        else:
            target_of = await self._resolve(str(uri), transport)
            forks.append((str(uri.without_headers()), target_of, False, ()))
        for index, (request_uri, fork_target, symmetric, route) in enumerate(forks):
            invite = self._make_invite(
                request_uri,
                from_party,
                to_party,
                # one Call-ID per branch: contacts of one phone must not see a merged request
                call_id if index == 0 else new_call_id(self.host),
                fork_target.kind,
                sdp,
                [*(("Route", value) for value in route), *headers],
            )
            call._add_fork(_Fork(invite, fork_target, symmetric), ring_timeout)
        self._calls.add(call)
        return call

    async def register(
        self,
        registrar: str | SipUri,
        aor: str | SipUri,
        *,
        credentials: Credential | None = None,
        expires: int = 600,
        contact_user: str | None = None,
        retry_after: float = 30.0,
    ) -> Registration:
        """Keep ``aor`` registered at a remote ``registrar`` (a carrier trunk, §10.2).

        ``contact_user`` is the user part of the Contact we register (default: the AOR's):
        calls the registrar sends to that contact are recognised by it.
        Returns at once; ``await registration.wait_registered()`` for the first 200,
        ``await registration.stop()`` to unregister.
        """
        if not self._running:
            raise CallError("the endpoint is not started")
        registration = Registration(
            self,
            registrar if isinstance(registrar, SipUri) else _to_sip_uri(registrar),
            aor if isinstance(aor, SipUri) else _to_sip_uri(aor),
            credentials,
            expires,
            retry_after,
            contact_user=contact_user,
        )
        registration.start()
        return registration

    def _binding_target(self, binding: Binding) -> Target:
        """Reach a registered phone where its REGISTER came from (NAT, RFC 5626 flows)."""
        if isinstance(binding.flow, Flow) and not binding.flow.closed:
            return Target(binding.transport, binding.flow.remote, binding.flow)
        if binding.source is not None:
            return Target(binding.transport, binding.source)
        uri = binding.uri
        return Target(binding.transport, (uri.host, uri.port or 5060))

    def _make_invite(
        self,
        request_uri: str,
        from_party: NameAddress,
        to_party: NameAddress,
        call_id: str,
        kind: str,
        sdp: SessionDescription | None,
        extra: Sequence[tuple[str, str]],
    ) -> Request:
        body = sdp.encode() if sdp is not None else b""
        h: dict[str, list[str]] = {
            "max-forwards": ["70"],
            "from": [str(from_party)],
            "to": [str(to_party)],
            "call-id": [call_id],
            "cseq": ["1 INVITE"],
            "contact": [self._contact_value(kind)],
            "allow": [self.allow_header],
            "supported": ["timer, replaces"],
        }
        if self.config.session_expires:
            h["session-expires"] = [str(self.config.session_expires)]
            h["min-se"] = [str(self.config.min_se)]
        invite = Request("INVITE", request_uri, h, body)
        if body:
            invite.set("Content-Type", "application/sdp")
        for name, value in extra:
            invite.add(name, value)
        return invite

    def _start_invite(self, call: OutgoingCall, fork: _Fork, ring_timeout: float | None) -> None:
        def handler(tx: Transaction, action: Action) -> None:
            call._on_fork_action(fork, action)

        fork.tx = self._start_client(fork.invite, fork.target, handler, ring_timeout=ring_timeout)  # type: ignore[assignment]

    def _send_cancel(self, fork: _Fork) -> None:
        """§9.1: CANCEL with the INVITE's Request-URI, Call-ID, From, To, CSeq number, Via."""
        invite = fork.invite
        h = invite.headers
        headers = {
            "via": [h["via"][0]],
            "max-forwards": ["70"],
            "from": list(h["from"]),
            "to": list(h["to"]),
            "call-id": list(h["call-id"]),
            "cseq": [f"{invite.cseq.seq} CANCEL"],
        }
        if "route" in h:
            headers["route"] = list(h["route"])
        cancel = Request("CANCEL", invite.uri_text, headers)
        cancel.add("Reason", 'SIP;cause=487;text="Cancelled"')
        self._start_client(cancel, fork.target, lambda tx, action: None)

    def _send_ack_to(self, target: Target | str, data: bytes) -> None:
        if isinstance(target, Target):
            self._transmit(target, data)
            return
        resolved = self._resolve_now(target)
        if resolved is not None:
            self._transmit(resolved, data)
            return

        async def later() -> None:
            self._transmit(await self._resolve(target), data)

        self._spawn(later())

    async def _bye_stray(self, dialog: Dialog, target: Target | str) -> None:
        """ACK+BYE a 2xx from a losing branch (§13.2.2.4)."""
        bye = dialog.create_request("BYE")
        resolved = target if isinstance(target, Target) else await self._resolve(target)
        with contextlib.suppress(Exception):
            await self._transact(bye, resolved)

    async def release(self, dialog: Dialog, peer: tuple[str, str, int] | None = None) -> int:
        """Send a BYE in a dialog this endpoint no longer holds a call for (one restored
        after a crash, §15.1.1); returns the final status (408 when nobody answered).

        ``peer`` (transport, host, port) is where the dialog's requests went when it had
        no route set (the symmetric source of the peer's INVITE)."""
        if peer is not None and not dialog.route_set and peer[0] == "UDP":
            target = Target("UDP", (peer[1], int(peer[2])))
        else:
            target = await self._resolve(dialog.next_hop())
        response = await self._transact(dialog.create_request("BYE"), target)
        dialog.terminate(self.now())
        return response.status

    # ============================================================ resolution
    def _resolve_now(self, uri_text: str, transport: str | None = None) -> Target | None:
        uri = parse_sip_uri(uri_text)
        kind = (transport or uri.transport or ("TLS" if uri.scheme == "sips" else "UDP")).upper()
        port = uri.port or (DEFAULT_PORTS["sips"] if kind in ("TLS", "WSS") else 5060)
        host = uri.params.get("maddr") or uri.host
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            cached = self._resolved.get((host, port))
            if cached is None:
                return None
            host = cached
        flow = self._transport.flow_to(kind, (host, port)) if self._transport else None
        return Target(kind, (host.strip("[]"), port), flow)

    async def _resolve(self, uri_text: str, transport: str | None = None) -> Target:
        """Where to send a request for a URI (RFC 3263 reduced to A/AAAA lookups)."""
        try:
            found = self._resolve_now(uri_text, transport)
        except ParseError as exc:
            raise CallFailed(416, f"cannot route to {uri_text!r}") from exc
        if found is not None:
            return found
        uri = parse_sip_uri(uri_text)
        host = uri.params.get("maddr") or uri.host
        kind = (transport or uri.transport or ("TLS" if uri.scheme == "sips" else "UDP")).upper()
        port = uri.port or (5061 if kind in ("TLS", "WSS") else 5060)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=2)  # SOCK_DGRAM
        except OSError as exc:
            raise CallFailed(503, f"cannot resolve {host}") from exc
        address = str(infos[0][4][0])
        if len(self._resolved) < 10_000:
            self._resolved[(host, port)] = address
        return Target(kind, (address, port))


_ECHO = ("via", "from", "to", "call-id", "cseq")
_ACK_COPY = frozenset({"from", "call-id", "route", "max-forwards", "authorization",
                       "proxy-authorization", "contact"})  # fmt: skip


def _as_method(request: Request, method: str) -> Request:
    """A shallow view of a request under another method (for CANCEL -> INVITE matching)."""
    view = Request(method, request.uri_text, request.headers)
    view._parsed = request._parsed
    return view


def _to_sip_uri(text: str) -> SipUri:
    return parse_sip_uri(text if ":" in text else f"sip:{text}")


def _unescaped(user: str) -> str:
    return unescape(user)


def _short_reason(status: int, detail: str) -> str | None:
    base = REASON_PHRASES.get(status, "")
    clean = detail.replace("\r", " ").replace("\n", " ")[:60]
    return f"{base} ({clean})" if base else None
