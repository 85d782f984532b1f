"""One voice contact at work: its parties, its phases (IVR, queue, talk, wrap-up), its controls.

Each contact runs in its own task (a ``ContactSession``) with a mailbox: routing decisions,
call-control operations from the API, and the ends of its parties' SIP dialogs all arrive
there, so its state changes happen one at a time. When the customer leaves, the current phase
is cancelled; whatever ends the contact, ``finish`` hangs up every party, stops recordings,
tells the ACD, and writes the CDR.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cloudcc.contacts import sdp as sdp_glue
from cloudcc.contacts.caller_ids import flow_caller_id, forwarding_caller
from cloudcc.contacts.cdr import contact_record, default_disposition
from cloudcc.contacts.control import CallControl
from cloudcc.contacts.exceptions import BadTarget, DestinationRefused, OperationRefused
from cloudcc.contacts.model import (
    Contact,
    ContactState,
    Direction,
    Disposition,
    EndCause,
    Leg,
    LegRole,
    LegState,
    MonitorMode,
)
from cloudcc.contacts.voicemail import wait_for_end
from cloudcc.ivr import (
    CallbackResult,
    FlowEvent,
    FlowEventKind,
    FlowSession,
    Hangup,
    OfferCallback,
    RouteToQueue,
    StartVoicemail,
    TransferExternal,
    TransferToAgent,
)
from cloudcc.ivr.actions import ContactContext
from cloudcc.media.engine import Leg as MediaLeg
from cloudcc.media.engine import Playback, Recording
from cloudcc.media.exceptions import MediaError
from cloudcc.media.mixer import ParticipantMode
from cloudcc.media.player import AudioSource
from cloudcc.routing.events import (
    AnnounceWait,
    Offer,
    OfferWithdrawn,
    Overflow,
    QueueAction,
)
from cloudcc.routing.exceptions import RoutingError
from cloudcc.routing.model import REASON_UNREACHABLE, Presence, SkillRequirement, TreatmentKind
from cloudcc.routing.model import Channel as RoutingChannel
from cloudcc.sip.call import (
    Answered,
    Call,
    DtmfReceived,
    Ended,
    Failed,
    OutgoingCall,
    ReferReceived,
    ReinviteReceived,
    Ringing,
)
from cloudcc.sip.call import (
    EndCause as SipEndCause,
)
from cloudcc.sip.exceptions import CallFailed, OfferAnswerError, SipError
from cloudcc.webrtc.transport import transport_of

if TYPE_CHECKING:
    from cloudcc.contacts.trunks import TrunkInfo
    from cloudcc.contacts.voice import VoiceService
    from cloudcc.sip.auth import Credential

log = logging.getLogger("cloudcc.contacts.session")

#: BYEs still waiting for their answer after their contact ended (kept from the collector).
_BYES: set[asyncio.Future[None]] = set()
#: how an agent's leg ends when the agent did not hang up: its media stopped (a closed or
#: crashed browser tab, a phone gone), its transport failed
AGENT_LOST = frozenset({"media_timeout", "transport_error", "timeout"})


@dataclass
class Target:
    """Where the contact goes next."""

    kind: str  # flow | queue | agent | external | voicemail | hangup | talk
    name: str = ""
    skills: tuple[str, ...] = ()
    priority: int = 0
    language: str = "en-US"
    announcement: str | None = None
    announce_every: float = 30.0
    message: str | None = None
    party: Party | None = None
    caller_id: str | None = None
    #: voicemail: the mailbox's (owner_type, owner_id) when known (a queue's treatment);
    #: else ``name`` names it (a flow's voicemail node). ``max_seconds`` may shorten it.
    mailbox: tuple[str, str] | None = None
    max_seconds: int | None = None
    #: queue: when the contact first came to it; a contact that comes back (its agent was
    #: lost) keeps its place, ahead of those who came after it
    enqueued_at: float | None = None


@dataclass(frozen=True)
class Route:
    """One way out for a call: a SIP URI, through a trunk (with its credentials) or direct."""

    uri: str
    trunk: TrunkInfo | None = None
    credentials: Credential | None = None
    to: str | None = None  # the To URI when it is not ``uri`` (a number at a PBX's AOR)


@dataclass(frozen=True)
class DialOutcome:
    """How one INVITE ended: answered | rejected | timeout | failed, its final status (None
    when nothing came back), and whether the far end rang first."""

    status: str
    code: int | None = None
    rang: bool = False

    @property
    def fails_over(self) -> bool:
        """Whether the next trunk should be tried: the trunk or the network failed (a 5xx,
        a 408 before any ringing, silence), not the callee's decision (486, 404, 603)."""
        if self.status == "answered":
            return False
        if self.code is None:
            return True
        return 500 <= self.code < 600 or (self.code == 408 and not self.rang)


@dataclass(eq=False)
class Party:
    """A leg of the contact: its record, its media leg and its SIP dialog."""

    leg: Leg
    media: MediaLeg
    call: Call | None = None
    pump: asyncio.Task[None] | None = None
    agent_id: str | None = None


@dataclass
class PartyEnded:
    party: Party
    cause: str


@dataclass
class RingOutcome:
    agent_id: str
    party: Party | None
    status: str  # answered | rejected | timeout | failed


@dataclass
class Operation:
    name: str
    params: dict[str, Any]
    by: str | None
    future: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class WrapUpFinished:
    agent_id: str


class CustomerLeft(Exception):
    """The customer's dialog ended; the current phase stops."""


class ContactSession:
    def __init__(
        self,
        service: VoiceService,
        contact: Contact,
        customer: Party,
        entry: Target,
    ) -> None:
        self.svc = service
        self.contact = contact
        self.customer = customer
        self.entry = entry
        self.mailbox: asyncio.Queue[Any] = asyncio.Queue()
        self.acd_id = contact.id  # the id the ACD knows this contact by
        self.parties: list[Party] = [customer]
        self.agent: Party | None = None
        self.consult: Party | None = None
        self.supervisor: Party | None = None
        self.conference: Any = None
        self.bridge: Any = None
        self.recording: Recording | None = None
        self.recording_id: str | None = None
        self.customer_gone = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self._ringing: dict[str, asyncio.Task[None]] = {}
        self._moh: Playback | None = None
        # The last queue's music on hold: heard while queued, on hold and while transferred.
        self._music_name = "default"
        self._announcing: asyncio.Task[None] | None = None  # a queue announcement playing
        self._queued_id: str | None = None  # the ACD queue id while queued
        self._queue_target: Target | None = None  # the last queue, where a lost agent's
        # customer goes back, at its place (``_queued_at``)
        # What it asked the queue for (priority, skills, preferred agent): asked again of a
        # new routing owner on a cluster.
        self._queue_request: tuple[int, tuple[SkillRequirement, ...], str | None] | None = None
        # Since when it waits in that queue (wall clock): a new routing owner, or the queue
        # it goes back to when its agent is lost, keeps its place.
        self._queued_at: float | None = None
        # agent id -> the id under which the ACD counts the work (the contact's own id, or a
        # derived one for a consulted agent); each gets exactly one contact_ended
        self._acd_work: dict[str, str] = {}
        self._consults = 0
        self._wrapping: str | None = None  # the last agent released from the main contact
        # The agents released from the contact while it went on or at its end.
        self._parts: set[str] = set()
        self._ended_work: dict[str, str] = {}  # agent id -> the ACD's id of its ended work
        # Agents whose part is over while the contact went on (a transfer, leaving a
        # conference, an intercept) and whose wrap-up of their part is still to come.
        self.wrapping_parts: set[str] = set()
        self._parts_changed = asyncio.Event()
        self._ivr: Any = None
        self._finished = False
        # True while the running phase reads operations from the mailbox: the talk with an
        # agent and after-call work. Any other phase is ended from outside by ``release``.
        self.reads_operations = False

    @property
    def tenant_id(self) -> str:
        return self.contact.tenant_id

    @property
    def now(self) -> float:
        return self.svc.clock()

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self._main(), name=f"contact-{self.contact.id}"
        )

    async def _main(self) -> None:
        """Run the contact; however it ends (its phases, a release or a node shutdown
        cancelling it, a failure), ``finish`` hangs up and writes its records."""
        try:
            await self._run()
        except asyncio.CancelledError:
            self.contact.end_cause = self.contact.end_cause or EndCause.NODE_SHUTDOWN
        except Exception:
            log.exception("contact %s failed", self.contact.id)
            self.contact.end_cause = self.contact.end_cause or EndCause.ERROR
        finally:
            if not self._finished:
                await asyncio.shield(self.finish())

    async def release(self, cause: EndCause) -> None:
        """End the contact from outside its phase, at once: the phase is cancelled (a dial
        in progress is CANCELled, RFC 3261 §9.1), and ``finish`` sends the BYEs and writes
        the records. Any phase but the talk with an agent, whose operations read the
        mailbox (an agent's hangup there may hand the call to a consulted party)."""
        if self._finished or self.task is None or self.task.done():
            return
        self.contact.end_cause = cause
        self.task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.finished.wait()), 10.0)

    async def _run(self) -> None:
        watchdog = asyncio.ensure_future(self._media_watchdog())
        try:
            self.watch(self.customer)
            target: Target | None = self.entry
            while target is not None:
                if self.customer_gone.is_set():
                    break
                target = await self._phase(target)
        except CustomerLeft:
            pass
        finally:
            watchdog.cancel()  # a cancel or a failure goes on to ``_main``, which finishes

    def _media_timeout(self, party: Party) -> float:
        """How long a party may send no media: a browser agent leg (WebRTC) less long than
        a phone (a closed tab sends no BYE, and its SIP WebSocket is gone with it)."""
        timeout = self.svc.media_timeout
        lost_after = self.svc.browser_lost_after
        if lost_after and party is not self.customer and transport_of(party.media) is not None:
            return min(lost_after, timeout) if timeout else lost_after
        return timeout

    async def _media_watchdog(self) -> None:
        """End a party whose RTP stopped (a phone that vanished without a BYE)."""
        if not self.svc.media_timeout and not self.svc.browser_lost_after:
            return
        seen: dict[str, tuple[int, float]] = {}
        while True:
            parties = [p for p in (self.customer, self.agent) if p is not None]
            timeouts = [t for t in map(self._media_timeout, parties) if t]
            await asyncio.sleep(min(5.0, min(timeouts, default=10.0) / 4))
            now = self.now
            for party in (self.customer, self.agent):
                if party is None or party.media is None or party.leg.state is not LegState.UP:
                    continue
                timeout = self._media_timeout(party)
                if not timeout:
                    continue
                received = party.media.stats().packets_received
                count, since = seen.get(party.leg.id, (-1, now))
                if received != count:
                    seen[party.leg.id] = (received, now)
                elif now - since >= timeout:
                    log.info(
                        "contact %s: no RTP from %s for %.0f s",
                        self.contact.id,
                        party.leg.id,
                        now - since,
                    )
                    self._party_ended(party, "media_timeout")
                    if party.call is not None:
                        with contextlib.suppress(Exception):
                            await party.call.hangup()

    async def _phase(self, target: Target) -> Target | None:
        handler: Callable[[Target], Awaitable[Target | None]] = {
            "flow": self._flow,
            "queue": self._queue,
            "agent": self._direct_agent,
            "external": self._external,
            "voicemail": self._voicemail,
            "hangup": self._hangup_with_message,
            "talk": self._talk,
            "callback": self._callback_phase,
        }[target.kind]
        return await self._until_customer_leaves(handler(target))

    async def _until_customer_leaves(self, work: Awaitable[Target | None]) -> Target | None:
        task = asyncio.ensure_future(work)
        gone = asyncio.ensure_future(self.customer_gone.wait())
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the contact is released or the node stops
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, CustomerLeft, Exception):
                await task
            raise
        finally:
            gone.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, CustomerLeft):
            await task
        raise CustomerLeft

    # --- parties ----------------------------------------------------------------------

    def watch(self, party: Party) -> None:
        """Pump a party's SIP events: its end, keys by INFO, re-INVITEs, transfers."""
        if party.call is None or party.pump is not None:
            return
        party.pump = asyncio.get_running_loop().create_task(self._pump(party))

    async def _pump(self, party: Party) -> None:
        assert party.call is not None
        try:
            async for event in party.call.events():
                if isinstance(event, Ended):
                    self._party_ended(party, event.cause.value)
                elif isinstance(event, DtmfReceived):
                    with contextlib.suppress(Exception):
                        party.media.inject_dtmf(event.digit)
                elif isinstance(event, ReinviteReceived):
                    self._on_reinvite(party, event)
                elif isinstance(event, ReferReceived):
                    self.mailbox.put_nowait(Operation("refer", {"event": event}, None))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event pump of %s failed", party.leg.id)
            self._party_ended(party, "error")

    def _party_ended(self, party: Party, cause: str) -> None:
        if party.leg.state is LegState.ENDED:
            return
        party.leg.end_cause = party.leg.end_cause or cause
        self._close_party(party)
        if party is self.customer:
            if self.contact.end_cause is None:
                self.contact.end_cause = {
                    "media_timeout": EndCause.PEER_LOST,
                    "session_expired": EndCause.PEER_LOST,
                    "timeout": EndCause.PEER_LOST,
                    "transport_error": EndCause.PEER_LOST,
                }.get(cause, EndCause.CUSTOMER_HANGUP)
            self.contact.customer_left_at = self.now
            self.customer_gone.set()
        self.mailbox.put_nowait(PartyEnded(party, cause))
        self.svc.publish_leg(self, party.leg, "leg.ended")

    def _close_party(self, party: Party) -> None:
        self.svc.trunks.release(party)
        if party.leg.state is not LegState.ENDED:
            with contextlib.suppress(Exception):
                party.leg.quality = _quality(party.media)
            party.leg.go(LegState.ENDED, self.now)
        party.media.close()

    async def hangup_party(self, party: Party, cause: str) -> None:
        """End a party's leg now. Its BYE (or the 480 of a call still ringing here) is sent
        at once, but its answer is not waited for: a phone that vanished would hold the
        operation back for the whole BYE transaction (64*T1 = 32 s, RFC 3261 §17.1.2.2)."""
        if party.leg.state is LegState.ENDED:
            return
        party.leg.end_cause = party.leg.end_cause or cause
        self._close_party(party)
        if party.call is not None:
            bye = asyncio.ensure_future(_hang_up(party.call))
            _BYES.add(bye)
            bye.add_done_callback(_BYES.discard)
            await asyncio.sleep(0)  # the request leaves now, before anything that follows
        self.svc.publish_leg(self, party.leg, "leg.ended")

    def _on_reinvite(self, party: Party, event: ReinviteReceived) -> None:
        """A phone changed its media (a new address, or hold/unhold from its own button)."""
        if event.offer is None:
            return  # the endpoint answers an offerless re-INVITE with our last SDP
        try:
            answer = sdp_glue.answer_for(
                event.offer,
                party.media,
                self.svc.media_address,
                secure_signalling=getattr(party.call, "transport", None) in ("TLS", "WSS"),
                srtp_policy=self.svc.cached_srtp_policy(self.tenant_id),
            )
        except Exception:
            event.reject(488)
            return
        event.accept(answer)
        if party is self.agent and self.contact.state is ContactState.CONNECTED:
            op = "hold" if event.is_hold else "unhold"
            self.mailbox.put_nowait(Operation(op, {"from_phone": True}, party.agent_id))

    async def new_party(self, role: LegRole, peer: str, agent_id: str | None = None) -> Party:
        media = await self.svc.media.open_leg()
        leg = self.contact.add_leg(role, peer, self.now, agent_id=agent_id)
        party = Party(leg, media, agent_id=agent_id)
        self.parties.append(party)
        return party

    async def dial(
        self,
        party: Party,
        target: str,
        ring_timeout: float,
        from_uri: str | None = None,
        credentials: Any = None,
    ) -> str:
        """Ring ``target`` for ``party``; 'answered', 'rejected', 'timeout' or 'failed'."""
        outcome = await self._attempt(party, target, ring_timeout, from_uri, credentials)
        if outcome.status != "answered":
            self._close_party(party)
        return outcome.status

    async def dial_out(
        self,
        party: Party,
        destination: str,
        ring_timeout: float,
        *,
        caller: str,
        caller_id: str | None = None,
    ) -> str:
        """Ring an outside ``destination`` for ``party``: a number through the tenant's
        trunks in priority order, on to the next after a 5xx, a 408 before ringing or a
        silent trunk, skipping trunks whose channels are all in use; a SIP address directly.

        The From user is ``caller_id`` when given, else the trunk's caller ID, else
        ``caller``. Returns as ``dial`` does, or 'refused' when the destination may not be
        dialed (the tenant's dial plan or allowed SIP destinations)."""
        try:
            routes = await self.svc.routes(self.tenant_id, destination)
        except (BadTarget, DestinationRefused) as exc:
            log.info("contact %s may not dial %s: %s", self.contact.id, destination, exc.detail)
            party.leg.end_cause = "refused"
            self._close_party(party)
            return "refused"
        trunks = self.svc.trunks
        leg = party.leg
        status = "failed"
        for route in routes:
            trunk = route.trunk
            if trunk is not None and not trunks.seize(trunk, party):
                leg.attempts.append({"trunk": trunk.name, "status": "busy"})
                continue
            leg.trunk = trunk.name if trunk is not None else None
            leg.end_cause = None
            user = caller_id or (trunk.caller_id if trunk is not None else None) or caller
            outcome = await self._attempt(
                party,
                route.uri,
                ring_timeout,
                self.svc.caller_uri(user),
                route.credentials,
                response_timeout=self.svc.trunk_response_timeout if trunk else None,
                to=route.to,
            )
            status = outcome.status
            if status == "answered":
                if leg.role is LegRole.CUSTOMER and self.contact.direction is Direction.OUTBOUND:
                    self.contact.dialed = user  # the caller ID the customer saw
                return status
            trunks.release(party)
            if trunk is None:
                break
            leg.attempts.append({"trunk": trunk.name, "status": outcome.code or "no_response"})
            if not outcome.fails_over:
                break
            log.info(
                "contact %s: trunk %s failed (%s); trying the next",
                self.contact.id,
                trunk.name,
                outcome.code or "no response",
            )
        else:
            if routes and all(a["status"] == "busy" for a in leg.attempts[-len(routes) :]):
                leg.end_cause = "trunks_busy"
                leg.trunk = None
        self._close_party(party)
        return status

    async def _attempt(
        self,
        party: Party,
        target: str,
        ring_timeout: float,
        from_uri: str | None,
        credentials: Any,
        response_timeout: float | None = None,
        to: str | None = None,
    ) -> DialOutcome:
        """One INVITE for ``party`` (its media stays open when it fails: the caller may try
        another way). ``response_timeout``: give up when not even a 100 Trying came back."""
        srtp_policy = await self.svc.srtp_policy(self.tenant_id)
        try:
            offer = sdp_glue.offer_for(
                party.media,
                self.svc.media_address,
                webrtc=self.svc.reaches_browser(target),
                prefer=self._codec_of(self.customer) if party is not self.customer else None,
                secure_signalling=self.svc.reaches_over_tls(target),
                srtp_policy=srtp_policy,
            )
        except OfferAnswerError as exc:  # the tenant requires SRTP, the target is not TLS
            log.info("not dialing %s: %s", target, exc)
            party.leg.end_cause = "srtp_required"
            return DialOutcome("failed", 488)
        try:
            call = await self.svc.sip.call(
                target,
                offer,
                from_uri=from_uri,
                ring_timeout=ring_timeout,
                credentials=credentials,
                to=to,
            )
        except SipError as exc:
            log.info("dialing %s failed: %s", target, exc)
            party.leg.end_cause = "unreachable"
            return DialOutcome("failed", exc.status if isinstance(exc, CallFailed) else 503)
        party.call = call
        party.leg.call_id = call.call_id
        silent = False

        def give_up_if_silent() -> None:
            nonlocal silent
            if isinstance(call, OutgoingCall) and not call.responded and not call.ended:
                silent = True
                cancel = asyncio.ensure_future(call.cancel())
                _BYES.add(cancel)
                cancel.add_done_callback(_BYES.discard)

        watchdog = (
            asyncio.get_running_loop().call_later(response_timeout, give_up_if_silent)
            if response_timeout
            else None
        )
        rang = False
        try:
            async for event in call.events():
                if isinstance(event, Ringing):
                    rang = True
                if isinstance(event, Ringing) and party.leg.state is LegState.CREATED:
                    party.leg.go(LegState.RINGING, self.now)
                    self.svc.publish_leg(self, party.leg, "leg.ringing")
                elif isinstance(event, Answered):
                    if event.sdp is None:
                        raise BadTarget(f"{target} answered without SDP")
                    sdp_glue.configure(party.media, offer, event.sdp, srtp_policy)
                    party.leg.go(LegState.UP, self.now)
                    self.watch(party)
                    self.svc.publish_leg(self, party.leg, "leg.answered")
                    return DialOutcome("answered", 200, rang)
                elif isinstance(event, Failed):
                    party.leg.end_cause = f"sip_{event.status}"
                    if event.status in (408, 480, 487):
                        return DialOutcome("timeout", event.status, rang)
                    word = "rejected" if event.status in (486, 600, 603) else "failed"
                    return DialOutcome(word, event.status, rang)
                elif isinstance(event, Ended):
                    if silent:
                        party.leg.end_cause = "no_response"
                        return DialOutcome("timeout", None, rang)
                    party.leg.end_cause = event.cause.value
                    if event.cause is SipEndCause.TRANSPORT_ERROR:
                        return DialOutcome("failed", 503, rang)
                    word = "timeout" if event.cause.value in ("timeout", "cancelled") else "failed"
                    return DialOutcome(word, event.status, rang)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                if call.established:
                    await call.hangup()
                else:
                    await call.cancel()
            party.leg.end_cause = party.leg.end_cause or "cancelled"
            self._close_party(party)
            raise
        except Exception:
            log.exception("dialing %s failed", target)
            with contextlib.suppress(Exception):
                await call.hangup()
            return DialOutcome("failed", 500)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        return DialOutcome("failed")

    # --- media helpers ----------------------------------------------------------------

    @staticmethod
    def _codec_of(party: Party) -> str | None:
        if party.media is None:  # click-to-call: the customer is not dialed yet
            return None
        config = party.media.config
        return config.codec if config is not None else None

    def start_music(self) -> None:
        self.stop_music()
        self._moh = self.svc.media.play(
            self.customer.media, self.hold_music(), loop=True, barge_in=False
        )

    def hold_music(self) -> AudioSource:
        return self.svc.music_source(self.tenant_id, self._music_name)

    def stop_music(self) -> None:
        if self._moh is not None:
            self._moh.stop()
            self._moh = None

    async def say(self, party: Party, text: str, language: str = "en-US") -> None:
        with contextlib.suppress(Exception):
            audio = await self.svc.tts.synthesize(text, language=language)
            await self.svc.media.play(party.media, audio.samples, barge_in=False)

    def rejoin(self) -> None:
        """Connect the active parties: a bridge for two, a conference for more."""
        speaking = [
            p for p in (self.customer, self.agent, self.consult) if p is not None and p.leg.active
        ]
        listeners = [self.supervisor] if self.supervisor and self.supervisor.leg.active else []
        media = self.svc.media
        if self.bridge is not None:
            media.unbridge(self.bridge)
            self.bridge = None
        if len(speaking) == 2 and not listeners:
            if self.conference is not None:
                self.conference.close()
                self.conference = None
            a, b = speaking
            if a.media.config is not None and b.media.config is not None:
                self.bridge = media.bridge(a.media, b.media)
            return
        if len(speaking) + len(listeners) < 2:
            return
        if self.conference is None:
            self.conference = media.conference(f"contact-{self.contact.id}")
        for party in speaking:
            if party.media.id not in self.conference.legs:
                self.conference.add(party.media, ParticipantMode.SPEAK)
        for party in listeners:
            mode = party.leg.monitor_mode or MonitorMode.LISTEN
            whisper_to = self.agent.media if self.agent else None
            pmode = {
                MonitorMode.LISTEN: ParticipantMode.LISTEN,
                MonitorMode.WHISPER: ParticipantMode.WHISPER,
                MonitorMode.BARGE: ParticipantMode.SPEAK,
            }[mode]
            if party.media.id not in self.conference.legs:
                self.conference.add(party.media, pmode, whisper_to=whisper_to)
            else:
                self.conference.set_mode(party.media, pmode, whisper_to=whisper_to)

    # --- phase: IVR -------------------------------------------------------------------

    async def _flow(self, target: Target) -> Target | None:
        from cloudcc.contacts.voice_ivr import VoiceIvr

        self.contact.go(ContactState.IVR, self.now)
        self.contact.note_path("flow", target.name, self.now)
        self.svc.publish_contact(self, "contact.ivr_started", flow=target.name)
        flow = await self.svc.flows.published_flow(self.tenant_id, target.name)
        context = ContactContext(
            tenant_id=self.tenant_id,
            contact_id=self.contact.id,
            caller=self.contact.customer,
            dialed=self.contact.dialed,
            timezone=await self.svc.tenant_timezone(self.tenant_id),
            attributes=dict(self.contact.attributes),
        )
        session = FlowSession(
            flow, context, self.now, schedules=await self.svc.schedules(self.tenant_id)
        )
        ivr = VoiceIvr(
            self.svc.media,
            self.customer.media,
            self.svc.tts,
            self.svc.asr,
            self.svc.webhooks,
            lambda name: self.svc.flows.published_flow(self.tenant_id, name),
            self._schedule_callback,
            self._flow_event,
            prompts_dir=self.svc.prompts_dir(self.tenant_id),
            clock=self.svc.clock,
            check_url=self.svc.url_policy.check if self.svc.url_policy else None,
        )
        self._ivr = ivr
        try:
            terminal = await ivr.run(session)
        finally:
            self._ivr = None
        self.contact.attributes.update({k: v for k, v in session.variables.items() if _jsonable(v)})
        if isinstance(terminal, RouteToQueue):
            return Target(
                "queue",
                terminal.queue,
                skills=terminal.skills,
                priority=terminal.priority,
                language=terminal.language,
                announcement=terminal.wait_announcement,
                announce_every=terminal.announce_every,
            )
        if isinstance(terminal, TransferToAgent):
            return Target(
                "agent", terminal.agent, skills=terminal.skills, priority=terminal.priority
            )
        if isinstance(terminal, TransferExternal):
            self.contact.transfers.append(
                {"at": self.now, "kind": "flow", "to_type": "external", "to": terminal.number}
            )
            return Target("external", terminal.number, caller_id=terminal.caller_id)
        if isinstance(terminal, StartVoicemail):
            return Target(
                "voicemail",
                terminal.mailbox,
                language=terminal.language,
                max_seconds=terminal.max_seconds,
            )
        if isinstance(terminal, Hangup) or terminal is None:
            self.contact.end_cause = EndCause.SYSTEM_HANGUP
            if self.contact.disposition is None:
                self.contact.disposition = Disposition.SELF_SERVICE
        return None

    def _flow_event(self, event: FlowEvent) -> None:
        if event.kind is FlowEventKind.INPUT_COLLECTED:
            self._note_choice(event)
        self.svc.bus.publish(
            self.tenant_id,
            str(event.kind),
            {
                "contact_id": self.contact.id,
                "flow": event.flow_id,
                "node": event.node_id,
                "node_type": event.node_type,
                "detail": {k: v for k, v in event.detail.items() if _jsonable(v)},
                "at": event.at,
            },
        )

    def is_for_agent(self, agent_id: str) -> bool:
        """Whether the agent is on this contact now or before, or being offered it."""
        return agent_id in self._ringing or agent_id in {
            a for a in (self.contact.agent_id, *(leg.agent_id for leg in self.contact.legs)) if a
        }

    def _note_choice(self, event: FlowEvent) -> None:
        """The caller's answer to a menu or question, kept on the flow's step of the path
        (what the agent's pop-up and the contact record show as the choices made)."""
        step = next((p for p in reversed(self.contact.path) if p["type"] == "flow"), None)
        if step is None:
            return
        choice = {
            "node": event.node_id,
            "mode": event.detail.get("mode"),
            "value": event.detail.get("value"),
            "at": event.at,
        }
        if event.flow_id != step["name"]:
            choice["flow"] = event.flow_id
        step.setdefault("choices", []).append(choice)

    async def _schedule_callback(self, offer: OfferCallback) -> CallbackResult:
        contact_id = await self.svc.schedule_callback(
            self.tenant_id,
            offer.queue,
            offer.number,
            offer.skills,
            offer.priority,
            origin=self.contact.id,
        )
        self.contact.disposition = Disposition.CALLBACK
        self.contact.attributes["callback_contact"] = contact_id
        return CallbackResult(True)

    # --- phase: queue -----------------------------------------------------------------

    async def _queue(self, target: Target) -> Target | None:
        queue_id = await self.svc.acd.queue_id(self.tenant_id, target.name)
        if queue_id is None:
            raise BadTarget(f"queue {target.name!r} does not exist")
        self.contact.queue = target.name
        self.contact.go(ContactState.QUEUED, self.now)
        self.contact.note_path("queue", target.name, self.now)
        self._queue_target = target
        self.svc.save(self)
        self._music_name = self.svc.acd.music_on_hold(self.tenant_id, queue_id)
        self.start_music()
        self._queued_id = queue_id
        self._queued_at = target.enqueued_at or time.time()
        self._queue_request = (
            target.priority,
            tuple(SkillRequirement(s) for s in target.skills),
            self.contact.attributes.get("preferred_agent"),
        )
        self.svc.publish_contact(self, "contact.queued", queue=target.name)
        await self.svc.acd.call(
            self.tenant_id,
            "contact_queued",
            self.contact.id,
            queue_id,
            RoutingChannel.VOICE,
            priority=target.priority,
            required_skills=tuple(SkillRequirement(s) for s in target.skills),
            preferred_agent=self.contact.attributes.get("preferred_agent"),
            enqueued_at=target.enqueued_at,
        )
        announcement = target.announcement
        try:
            while True:
                msg = await self.mailbox.get()
                if isinstance(msg, Offer):
                    self.contact.go(ContactState.OFFERED, self.now)
                    self.svc.publish_contact(
                        self,
                        "contact.offered",
                        agents=list(msg.agent_ids),
                        # what the agent's pop-up shows beside the caller: the IVR steps
                        # with the caller's choices, and the flow's variables
                        path=copy.deepcopy(self.contact.path),
                        attributes=dict(self.contact.attributes),
                    )
                    for agent_id in msg.agent_ids:
                        ringing = self._ringing.get(agent_id)
                        if ringing is not None and not ringing.done():
                            continue  # offered again by a new routing owner: rings already
                        self._ringing[agent_id] = asyncio.ensure_future(
                            self._ring_agent(agent_id, msg.ring_timeout)
                        )
                elif isinstance(msg, OfferWithdrawn):
                    task = self._ringing.pop(msg.agent_id, None)
                    if task is not None:
                        task.cancel()
                    if not self._ringing and self.contact.state is ContactState.OFFERED:
                        self.contact.go(ContactState.QUEUED, self.now)
                elif isinstance(msg, RingOutcome):
                    self._ringing.pop(msg.agent_id, None)
                    result = await self._ring_outcome(msg)
                    if result is not None:
                        return result
                elif isinstance(msg, AnnounceWait):
                    # Played beside the mailbox: an offer that comes meanwhile rings at once.
                    if self._announcing is None or self._announcing.done():
                        self._announcing = asyncio.ensure_future(
                            self._announce(msg, announcement, target.language)
                        )
                elif isinstance(msg, Overflow):
                    self._queued_id = msg.to_queue
                    self._queued_at = time.time()
                    name = self.svc.acd.queue_name(self.tenant_id, msg.to_queue)
                    self.contact.queue = name
                    self.contact.note_path("queue", name, self.now, overflow=True)
                    self.svc.publish_contact(self, "contact.overflowed", queue=name)
                    music = self.svc.acd.music_on_hold(self.tenant_id, msg.to_queue)
                    if music != self._music_name:
                        self._music_name = music
                        self.start_music()
                elif isinstance(msg, QueueAction):
                    self._queued_id = None
                    return await self._treatment(msg)
                elif isinstance(msg, Operation):
                    await self._operate_waiting(msg)
        finally:
            for task in self._ringing.values():
                task.cancel()
            self._ringing.clear()
            if self._announcing is not None:
                self._announcing.cancel()
                self._announcing = None
            self.stop_music()  # the queue's music stays the contact's: hold plays it

    async def _ring_agent(self, agent_id: str, ring_timeout: float) -> None:
        device = await self.svc.agent_device(self.tenant_id, agent_id)
        if device is None:
            self.mailbox.put_nowait(RingOutcome(agent_id, None, "unreachable"))
            return
        party = await self.new_party(LegRole.AGENT, device, agent_id)
        self.svc.publish_leg(self, party.leg, "leg.created")
        status = await self.dial(
            party, device, ring_timeout + 5, from_uri=self.svc.caller_uri(self.contact.customer)
        )
        self.mailbox.put_nowait(
            RingOutcome(agent_id, party if status == "answered" else None, status)
        )

    async def _ring_outcome(self, msg: RingOutcome) -> Target | None:
        acd, tenant, cid = self.svc.acd, self.tenant_id, self.contact.id
        if msg.party is None:
            method = "offer_timed_out" if msg.status == "timeout" else "offer_rejected"
            with contextlib.suppress(Exception):
                await acd.call(tenant, method, cid, msg.agent_id)
            if not self._ringing and self.contact.state is ContactState.OFFERED:
                self.contact.go(ContactState.QUEUED, self.now)
            return None
        try:
            await acd.call(tenant, "offer_accepted", cid, msg.agent_id)
        except Exception:
            # The offer was withdrawn meanwhile (answered elsewhere, ring timeout).
            await self.hangup_party(msg.party, "offer_withdrawn")
            return None
        for other in self._ringing.values():
            other.cancel()
        self._ringing.clear()
        self._queued_id = None
        self._acd_work[msg.agent_id] = self.contact.id
        return Target("talk", party=msg.party)

    async def _announce(self, msg: AnnounceWait, template: str | None, language: str) -> None:
        from cloudcc.ivr import render_wait_announcement

        text = render_wait_announcement(
            template
            or "You are number {position} in the queue. "
            "Your expected wait is about {wait_minutes} minutes.",
            msg.position,
            msg.estimated_wait,
            self.contact.queue or "",
        )
        try:
            audio = await self.svc.tts.synthesize(text, language=language)
            self.stop_music()
            playback = self.svc.media.play(self.customer.media, audio.samples, barge_in=False)
        except Exception:  # no voice, or the caller is gone: the wait goes on without it
            log.warning("no wait announcement for contact %s", self.contact.id, exc_info=True)
            return
        try:
            await playback
        finally:
            playback.stop()  # cancelled: the agent answered, the caller hears the agent
        self.start_music()

    async def _treatment(self, msg: QueueAction) -> Target | None:
        self.svc.publish_contact(self, "contact.queue_treatment", kind=msg.kind.value)
        if msg.kind is TreatmentKind.VOICEMAIL:
            return Target(
                "voicemail",
                self.contact.queue or "",
                message=msg.message,
                mailbox=("queue", msg.queue_id),
            )
        if msg.kind is TreatmentKind.CALLBACK:
            return Target("callback", self.contact.queue or "", message=msg.message)
        if msg.kind is TreatmentKind.FLOW and msg.target_flow:
            # The queue hands the caller to an IVR flow (a menu, a message, another route).
            self.stop_music()
            if msg.message:
                await self.say(self.customer, msg.message)
            return Target("flow", msg.target_flow)
        self.contact.disposition = Disposition.OVERFLOWED
        return Target("hangup", message=msg.message or "Sorry, nobody can take your call now.")

    async def _operate_waiting(self, op: Operation) -> None:
        """An operation asked while talking, left in the mailbox when the talk ended."""
        if not op.future.done():
            op.future.set_exception(OperationRefused("the contact is not connected to an agent"))

    # --- phase: talk ------------------------------------------------------------------

    async def _talk(self, target: Target) -> Target | None:
        party = target.party
        assert party is not None
        self.agent = party
        self.contact.agent_id = party.agent_id
        self.contact.go(ContactState.CONNECTED, self.now)
        if party.agent_id:
            self.contact.note_path("agent", party.agent_id, self.now)
        self.stop_music()
        self.rejoin()
        self.svc.save(self)
        # the way in with the agent's step, for a pop-up opened before it was taken
        self.svc.publish_contact(self, "contact.connected", path=copy.deepcopy(self.contact.path))
        if await self.svc.records_calls(self.tenant_id):
            await self.start_recording()
        self.reads_operations = True
        try:
            while True:
                msg = await self.mailbox.get()
                if isinstance(msg, PartyEnded):
                    nxt = await self._after_party_ended(msg.party, msg.cause)
                    if nxt is not False:
                        return nxt  # type: ignore[return-value]
                elif isinstance(msg, Operation):
                    nxt = await self._operate(msg)
                    if nxt is not False:
                        return nxt  # type: ignore[return-value]
                elif isinstance(msg, Offer | OfferWithdrawn):
                    pass  # stale routing news for an earlier phase
        finally:
            self.reads_operations = False
            if not self.customer_gone.is_set():  # else finish() does it, after the BYEs
                await self.stop_recording()

    async def _after_party_ended(self, party: Party, cause: str = "") -> Target | bool | None:
        if party is self.consult:
            self.consult = None
            self.rejoin()
            if self.agent is None:  # the customer was left with the consulted party only
                return None
            return False
        if party is self.supervisor:
            self.supervisor = None
            self.rejoin()
            return False
        if party is self.agent:
            self.agent = None
            work = self._acd_work.get(party.agent_id or "")
            await self._release_agent(party)
            if self.consult is not None and self.consult.leg.active:
                # The transferring agent left a three-way call: the two others stay.
                self._promote_consult()
                self.rejoin()
                return False
            if cause in AGENT_LOST and self._queue_target is not None:
                return await self._agent_lost(party, cause, work)
            self.contact.end_cause = EndCause.AGENT_HANGUP
            await self.hangup_party(self.customer, "agent_hangup")
            return None
        return False

    async def _agent_lost(self, party: Party, cause: str, work: str | None) -> Target:
        """The agent's leg was lost, not hung up (its browser tab closed or crashed, its
        phone vanished): the agent is made not ready (unreachable) with no wrap-up (there
        is nobody to do it) and the customer goes back to its queue at the place it had,
        so the next agent takes it first."""
        agent_id = party.agent_id or ""
        self.contact.note_path("agent_lost", agent_id, self.now, cause=cause)
        if agent_id:
            acd, tenant = self.svc.acd, self.tenant_id
            try:
                await acd.call(
                    tenant,
                    "agent_state_changed",
                    agent_id,
                    Presence.NOT_READY,
                    reason=REASON_UNREACHABLE,
                )
                if work is not None:
                    await acd.call(tenant, "wrapup_done", agent_id, work)
            except RoutingError as exc:  # signed out meanwhile: nothing to make not ready
                log.info("contact %s: lost agent %s: %s", self.contact.id, agent_id, exc)
            if self._wrapping == agent_id:
                self._wrapping = None
        self.contact.agent_id = None
        self.svc.publish_contact(self, "contact.agent_lost", agent_id=agent_id, cause=cause)
        log.info("contact %s: agent %s lost (%s), back to its queue", self.contact.id,
                 agent_id, cause)  # fmt: skip
        assert self._queue_target is not None
        return dataclasses.replace(self._queue_target, enqueued_at=self._queued_at)

    def _promote_consult(self) -> None:
        consult = self.consult
        assert consult is not None
        self.consult = None
        self.agent = consult
        if consult.agent_id:
            self.contact.agent_id = consult.agent_id
            self.contact.note_path("agent", consult.agent_id, self.now)
        self.contact.transfers.append(
            {"at": self.now, "kind": "consultative", "to": consult.leg.peer}
        )

    async def _release_agent(self, party: Party) -> None:
        """The agent's part is over: ACD wrap-up starts for it."""
        await self.hangup_party(party, "released")
        if party.agent_id:
            self._parts.add(party.agent_id)
            await self._end_work(party.agent_id)

    async def hand_on(self, party: Party) -> None:
        """The agent's part is over while the contact goes on (transfer, leaving a conference,
        intercept): when the ACD put it in after-call work, its own wrap-up starts, for its
        part (recorded on its leg, ``wrap_up_part``)."""
        agent_id = party.agent_id
        if agent_id is None or not await self.svc.in_wrapup(self.tenant_id, agent_id):
            return
        self.wrapping_parts.add(agent_id)
        self.svc.publish_contact(
            self,
            "contact.wrapup_started",
            agent_id=agent_id,
            part=True,
            path=copy.deepcopy(self.contact.path),
            attributes=dict(self.contact.attributes),
        )

    def handed_on(self, agent_id: str) -> bool:
        """Whether the agent's part of the contact is over while the contact is not its own:
        another agent has it, or it is past the agent (a queue, an IVR), and the contact's
        wrap-up phase is not this agent's."""
        if agent_id not in self._parts:
            return False
        if self.agent is not None and self.agent.agent_id == agent_id:
            return False  # it talks with the customer again (transferred back)
        return not (self.contact.state is ContactState.WRAPUP and self._wrapping == agent_id)

    async def wrap_up_part(
        self, agent_id: str, code: str | None, notes: str | None, done: bool
    ) -> dict[str, Any]:
        """The wrap-up of an agent whose part is over while the contact goes on: on its own
        leg; ``done`` ends its after-call work."""
        leg = self._agent_leg(agent_id)
        if leg is None:
            raise OperationRefused("the agent has no part in this contact")
        wrapup = dict(leg.wrapup or {})
        if code is not None:
            wrapup["code"] = code
        if notes is not None:
            wrapup["notes"] = notes
        leg.wrapup = wrapup
        if done:
            self.part_wrapped(agent_id)
            work = self._ended_work.get(agent_id, self.contact.id)
            with contextlib.suppress(Exception):
                await self.svc.acd.call(self.tenant_id, "wrapup_done", agent_id, work)
        self.svc.save(self)
        return {"ok": True}

    def _agent_leg(self, agent_id: str) -> Leg | None:
        """The agent's last leg of the contact (its wrap-up goes there)."""
        return next((leg for leg in reversed(self.contact.legs) if leg.agent_id == agent_id), None)

    def part_wrapped(self, agent_id: str) -> None:
        """The agent's after-call work for its part ended (by it, or the ACD's timer)."""
        self.wrapping_parts.discard(agent_id)
        self._parts_changed.set()

    async def _wait_parts(self) -> None:
        while self.wrapping_parts and not self.svc.stopping:
            self._parts_changed.clear()
            await self._parts_changed.wait()

    async def _end_work(self, agent_id: str) -> None:
        work = self._acd_work.pop(agent_id, None)
        if work is None:
            return
        with contextlib.suppress(Exception):
            await self.svc.acd.call(self.tenant_id, "contact_ended", work)
        self._wrapping = agent_id
        self._ended_work[agent_id] = work

    async def _operate(self, op: Operation) -> Target | bool | None:
        if op.future.done():
            return False  # its caller gave up waiting: too late to act on it
        # A CallControl per operation, not one kept on the session: it points back at the
        # session, and that cycle would leave each ended call's objects (legs, SIP dialog,
        # SDP, sockets) for the cyclic collector instead of freeing them when the call ends.
        handler = getattr(CallControl(self), f"op_{op.name}", None)
        if handler is None:
            op.future.set_exception(OperationRefused(f"unknown operation {op.name!r}"))
            return False
        try:
            result = await handler(**op.params)
        except Exception as exc:
            if not op.future.done():
                op.future.set_exception(exc)
            return False
        nxt: Target | bool | None = False
        if isinstance(result, tuple):
            result, nxt = result
        if not op.future.done():
            op.future.set_result(result or {"ok": True})
        self.svc.save(self)
        return nxt

    # --- recordings ---------------------------------------------------------------------

    async def start_recording(self) -> None:
        if self.recording is not None or self.agent is None:
            return
        rid = uuid.uuid4().hex
        path = self.svc.recordings.path_for(self.tenant_id, self.contact.id, rid, self.now)
        right = self.conference if self.conference is not None else self.agent.media
        self.contact.recordings.append(rid)
        self.svc.recordings.started(
            rid,
            self.tenant_id,
            self.contact.id,
            self.agent.agent_id,
            path,
            2,
            self.now,
            [self.customer.leg.id, self.agent.leg.id],
        )
        self.svc.save(self)
        try:
            # storage trouble (read-only, full) never costs the call: the recording fails
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            recording = self.svc.media.record(str(path), left=self.customer.media, right=right)
        except (OSError, MediaError) as exc:
            reason = f"cannot create: {getattr(exc, 'strerror', None) or exc}"
            self._recording_failed(rid, reason, ended=True)
            return
        self.recording = recording
        self.recording_id = rid
        self.contact.recording = "recording"
        recording.on_failure = lambda reason: self._recording_failed(rid, reason)
        self.svc.publish_contact(self, "recording.started", recording_id=rid)

    def _recording_failed(self, rid: str, reason: str, ended: bool = False) -> None:
        """Mark the recording failed, say so (event, log); the call itself goes on."""
        self.contact.recording = None
        log.warning(
            "tenant %s contact %s: recording %s failed: %s",
            self.tenant_id,
            self.contact.id,
            rid,
            reason,
        )
        self.svc.recordings.failed(rid, reason, self.now, ended=ended)
        self.svc.publish_contact(self, "recording.failed", recording_id=rid, reason=reason)

    async def stop_recording(self) -> None:
        recording, rid = self.recording, self.recording_id
        self.recording = None
        self.recording_id = None
        self.contact.recording = None
        if recording is None or rid is None:
            return
        info = await recording.stop()
        if recording.failure is not None:
            self.svc.recordings.failed(
                rid,
                recording.failure,
                self.now,
                duration=info.duration_s,
                size=info.bytes,
                sha256=info.sha256 or None,
                ended=True,
            )
            return
        self.svc.recordings.finished(rid, info.duration_s, info.bytes, info.sha256, self.now)
        self.svc.publish_contact(
            self,
            "recording.stopped",
            recording_id=rid,
            duration=info.duration_s,
            sha256=info.sha256,
        )

    # --- other targets ------------------------------------------------------------------

    async def _direct_agent(self, target: Target) -> Target | None:
        """A transfer (or number) straight to an agent, by id or extension."""
        agent_id = await self.svc.agent_id_for(self.tenant_id, target.name)
        if agent_id is None:
            raise BadTarget(f"agent {target.name!r} does not exist")
        self.contact.go(ContactState.OFFERED, self.now)
        self.start_music()
        try:
            device = await self.svc.agent_device(self.tenant_id, agent_id)
            if device is None:
                await self.say(self.customer, "The agent cannot be reached.")
                return Target("voicemail", target.name, mailbox=("agent", agent_id))
            party = await self.new_party(LegRole.AGENT, device, agent_id)
            status = await self.dial(
                party, device, 30.0, from_uri=self.svc.caller_uri(self.contact.customer)
            )
        finally:
            self.stop_music()
        if status != "answered":  # the caller may leave the agent a message
            await self.say(self.customer, "The agent did not answer.")
            return Target("voicemail", target.name, mailbox=("agent", agent_id))
        with contextlib.suppress(Exception):
            await self.svc.acd.call(
                self.tenant_id,
                "direct_contact_started",
                agent_id,
                self.contact.id,
                RoutingChannel.VOICE,
            )
            self._acd_work[agent_id] = self.contact.id
        return Target("talk", party=party)

    async def _external(self, target: Target) -> Target | None:
        """Send the customer to an outside number through the tenant's trunks."""
        party = await self.new_party(LegRole.EXTERNAL, target.name)
        caller_id = await flow_caller_id(self.svc, self.contact, target.caller_id)
        self.start_music()
        try:
            status = await self.dial_out(
                party,
                target.name,
                45.0,
                caller=await forwarding_caller(self.svc, self.contact),
                caller_id=caller_id,
            )
        finally:
            self.stop_music()
        if status != "answered":
            await self.say(self.customer, "The number you were transferred to did not answer.")
            self.contact.end_cause = EndCause.SYSTEM_HANGUP
            return None
        self.contact.disposition = Disposition.TRANSFERRED_OUT
        # Whoever sent the caller out (an agent's transfer, the flow) recorded it; now it is
        # answered.
        if self.contact.transfers:
            self.contact.transfers[-1]["connected_at"] = self.now
        self.agent = party  # the external party takes the agent's place in the bridge
        self.rejoin()
        self.contact.go(ContactState.CONNECTED, self.now)
        while True:  # operations are refused, a hangup is a ``release``
            msg = await self.mailbox.get()
            if isinstance(msg, PartyEnded) and msg.party is party:
                await self.hangup_party(self.customer, "external_hangup")
                return None

    async def _voicemail(self, target: Target) -> Target | None:
        """Take a message for a queue's or an agent's mailbox (docs/voice.md, "Voicemail")."""
        self.contact.disposition = Disposition.VOICEMAIL
        self.contact.end_cause = EndCause.SYSTEM_HANGUP
        vm = self.svc.voicemail
        owner = target.mailbox or await vm.owner_named(self.tenant_id, target.name)
        if owner is None:
            log.warning(
                "contact %s: voicemail for %r, which is no queue or agent of tenant %s",
                self.contact.id,
                target.name,
                self.tenant_id,
            )
            self.contact.disposition = Disposition.FAILED
            await self.say(self.customer, "Sorry, this mailbox does not exist. Goodbye.")
            return None
        box = await vm.settings(self.tenant_id, *owner)
        max_seconds = min(box.max_seconds, target.max_seconds or box.max_seconds)
        greeting = (
            target.message
            or box.greeting
            or (
                f"Please leave a message after the tone. Press {_spoken(box.end_key)} or hang up "
                "when you are done."
            )
        )
        await self.say(self.customer, greeting, target.language)
        self.customer.media.send_dtmf("#")  # a short tone
        rid = uuid.uuid4().hex
        path = self.svc.recordings.path_for(self.tenant_id, self.contact.id, rid, self.now)
        path.parent.mkdir(parents=True, exist_ok=True)
        recording = self.svc.media.record(str(path), left=self.customer.media, stereo=False)
        self.contact.recordings.append(rid)
        self.contact.attributes["voicemail"] = target.name or owner[1]
        self.svc.recordings.started(
            rid, self.tenant_id, self.contact.id, None, path, 1, self.now, [self.customer.leg.id]
        )
        ended_by = "hangup"
        try:
            end = await wait_for_end(
                self.customer.media,
                max_seconds=max_seconds,
                silence_seconds=box.silence_seconds,
                end_key=box.end_key,
            )
            ended_by = end.done.result()
        finally:
            # Also when the caller hangs up (this phase is cancelled): the message is kept.
            info = await recording.stop()
            self.svc.recordings.finished(rid, info.duration_s, info.bytes, info.sha256, self.now)
            self.contact.attributes["voicemail_message"] = await vm.deposit(
                self.tenant_id,
                *owner,
                contact_id=self.contact.id,
                caller=self.contact.customer or "",
                recording_id=rid,
                duration=info.duration_s,
                ended_by=ended_by,
            )
        if ended_by != "hangup":
            await self.say(self.customer, "Thank you. Your message has been recorded. Goodbye.")
        return None

    async def _hangup_with_message(self, target: Target) -> Target | None:
        if target.message:
            await self.say(self.customer, target.message)
        self.contact.end_cause = EndCause.SYSTEM_HANGUP
        return None

    async def _callback_phase(self, target: Target) -> Target | None:
        """A queue treatment: the ACD keeps the caller's place as a callback."""
        callback_id = await self.svc.schedule_callback(
            self.tenant_id,
            target.name,
            self.contact.customer,
            (),
            0,
            origin=self.contact.id,
            acd_id=self.acd_id,
        )
        self.contact.attributes["callback_contact"] = callback_id
        self.contact.disposition = Disposition.CALLBACK
        await self.say(
            self.customer,
            target.message or "We will call you back as soon as an agent is free. Goodbye.",
        )
        self.contact.end_cause = EndCause.SYSTEM_HANGUP
        return None

    # --- the end ------------------------------------------------------------------------

    async def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        contact = self.contact
        ended_at = contact.customer_left_at or self.now
        # Everyone still on the line gets a BYE first: nobody hears dead air while the
        # files are closed and the records written. Their answers are not waited for: a
        # phone that vanished would hold the record and the agent's wrap-up back for the
        # whole BYE transaction (64*T1 = 32 s, RFC 3261 §17.1.2.2).
        cause = contact.end_cause.value if contact.end_cause else "ended"
        for party in list(self.parties):
            if party.leg.active:
                await self.hangup_party(party, cause)
        for party in self.parties:
            if party.pump is not None and party.pump is not asyncio.current_task():
                party.pump.cancel()
        try:
            await self.stop_recording()
        except Exception:
            log.exception("contact %s: stopping the recording failed", contact.id)
        if self._queued_id is not None:
            with contextlib.suppress(Exception):
                await self.svc.acd.call(self.tenant_id, "contact_abandoned", self.acd_id)
        for agent_id in list(self._acd_work):
            await self._end_work(agent_id)
        if contact.disposition is None:
            contact.disposition = default_disposition(contact)
        agent_wraps = self._wrapping
        if (
            agent_wraps
            and not self.svc.stopping
            and contact.answered_at is not None
            and contact.state is ContactState.CONNECTED
            and await self.svc.in_wrapup(self.tenant_id, agent_wraps)
        ):
            contact.go(ContactState.WRAPUP, ended_at)
            self.svc.save(self)
            self.svc.publish_contact(self, "contact.wrapup_started", agent_id=agent_wraps)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_wrapup(agent_wraps), self.svc.max_wrapup_seconds)
        if self.wrapping_parts and not self.svc.stopping:
            # Agents who handed the contact on are still wrapping up their part: the contact
            # stays live (their wrap-up goes on its record) until they are done.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_parts(), self.svc.max_wrapup_seconds)
        if contact.state is not ContactState.ENDED:
            contact.go(
                ContactState.ENDED,
                max(ended_at, self.now) if contact.state is ContactState.WRAPUP else ended_at,
            )
        self.svc.save(self)
        self.svc.publish_contact(
            self,
            "contact.ended",
            disposition=contact.disposition.value,
            end_cause=contact.end_cause.value if contact.end_cause else None,
        )
        self.svc.bus.publish(
            self.tenant_id, "cdr.written", contact_record(contact) | {"contact_id": contact.id}
        )
        self.svc.forget(self)
        self.finished.set()

    async def _wait_wrapup(self, agent_id: str) -> None:
        self.reads_operations = True
        try:
            await self._wrapup_operations(agent_id)
        finally:
            self.reads_operations = False

    async def _wrapup_operations(self, agent_id: str) -> None:
        while True:
            msg = await self.mailbox.get()
            if isinstance(msg, WrapUpFinished) and msg.agent_id in (agent_id, "*"):
                return
            if isinstance(msg, Operation) and not msg.future.done():
                if msg.name == "wrapup":
                    # A wrap-up may come in steps (done=false first): what a step leaves
                    # out keeps what an earlier one said.
                    if msg.params.get("code") is not None:
                        self.contact.wrapup_code = msg.params["code"]
                    if msg.params.get("notes") is not None:
                        self.contact.wrapup_notes = msg.params["notes"]
                    leg = self._agent_leg(agent_id)
                    if leg is not None:  # the final agent's leg carries its wrap-up too
                        leg.wrapup = {
                            k: v
                            for k, v in (
                                ("code", self.contact.wrapup_code),
                                ("notes", self.contact.wrapup_notes),
                            )
                            if v is not None
                        }
                    msg.future.set_result({"ok": True})
                    if msg.params.get("done", True):
                        # the ACD's id of the agent's work (a consulted agent's is its own)
                        work = self._ended_work.get(agent_id, self.contact.id)
                        with contextlib.suppress(Exception):
                            await self.svc.acd.call(self.tenant_id, "wrapup_done", agent_id, work)
                        return
                else:
                    msg.future.set_exception(OperationRefused("the call has ended"))


async def _hang_up(call: Any) -> None:
    with contextlib.suppress(SipError, Exception):
        await call.hangup()


def _quality(media: MediaLeg) -> dict[str, Any]:
    stats = media.stats()
    return {
        "packets_received": stats.packets_received,
        "packets_sent": stats.packets_sent,
        "packets_lost": stats.packets_lost,
        "loss_ratio": round(stats.loss_ratio, 5),
        "jitter_ms": round(stats.jitter_ms, 2),
        "rtt_ms": round(stats.rtt_ms, 2) if stats.rtt_ms is not None else None,
        "remote_loss_ratio": stats.remote_loss_ratio,
        "remote_jitter_ms": stats.remote_jitter_ms,
        "concealed_frames": stats.concealed_frames,
    }


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def _spoken(key: str) -> str:
    return {"#": "the pound key", "*": "the star key"}.get(key, key)
