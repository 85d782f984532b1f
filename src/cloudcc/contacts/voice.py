"""The voice side of the contact center: SIP calls in and out become contacts.

``VoiceService`` is the only place where SIP, media, routing and the IVR meet. It admits
calls (a tenant's number, an agent's phone), starts a ``ContactSession`` for each, rings
agents when the ACD offers them a contact, keeps agents' phones and sessions, and offers the
call-control operations of the API. One contact's failure ends that contact only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from cloudcc.ai.asr import SpeechRecognizer
from cloudcc.ai.tts import TextToSpeech
from cloudcc.bus import LocalBus
from cloudcc.contacts import sdp as sdp_glue
from cloudcc.contacts.acd import Acd
from cloudcc.contacts.agents import AgentSessions
from cloudcc.contacts.cdr import close_open_phases
from cloudcc.contacts.destinations import DialPlan, is_listed, sip_target
from cloudcc.contacts.exceptions import (
    BadTarget,
    ContactNotFound,
    DestinationRefused,
    OperationRefused,
)
from cloudcc.contacts.model import (
    Channel,
    Contact,
    ContactState,
    Direction,
    Disposition,
    EndCause,
    Leg,
    LegRole,
    LegState,
)
from cloudcc.contacts.outbound import (
    AgentFirstSession,
    CallbackSession,
    CustomerFirstSession,
    OutboundSession,
)
from cloudcc.contacts.records import ContactStore, RecordingStore
from cloudcc.contacts.sdes import SrtpPolicy
from cloudcc.contacts.session import (
    ContactSession,
    Operation,
    Party,
    Route,
    Target,
    WrapUpFinished,
)
from cloudcc.contacts.trunks import FromTrunk, NumberEntry, TrunkInfo, TrunkPeer, Trunks
from cloudcc.directory.flows import FlowService
from cloudcc.errors import PermissionDenied
from cloudcc.events.targets import TargetPolicy
from cloudcc.ivr.model import Schedule
from cloudcc.ivr.webhook import WebhookRunner
from cloudcc.media.engine import MediaEngine
from cloudcc.media.player import AudioSource, PcmSource, WavSource, default_music_on_hold
from cloudcc.routing.events import (
    AnnounceWait,
    Decision,
    Offer,
    OfferWithdrawn,
    Overflow,
    QueueAction,
)
from cloudcc.routing.exceptions import RoutingError
from cloudcc.routing.model import AgentState
from cloudcc.routing.model import Channel as RoutingChannel
from cloudcc.sip.auth import Credential
from cloudcc.sip.call import IncomingCall, RequestInfo
from cloudcc.sip.endpoint import Admission, SipEndpoint
from cloudcc.sip.registrar import Binding
from cloudcc.store.db import Database
from cloudcc.store.tables import (
    Agent,
    BusinessHours,
    PhoneNumber,
    ProvisionedNumber,
    Tenant,
    Trunk,
)
from cloudcc.tenancy.credentials import SecretBox
from cloudcc.tenancy.model import Actor, Permission
from cloudcc.voicemail.service import VoicemailService

log = logging.getLogger("cloudcc.contacts.voice")

MOH_DIR = Path("/usr/share/asterisk/moh")
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
# How long a trunk may stay silent (not even a 100 Trying) before a call tries the next one.
TRUNK_RESPONSE_TIMEOUT = 4.0
# Seconds a caller refused while the node drains is told to wait (Retry-After).
DRAIN_RETRY_AFTER = 30


_RELEASES = frozenset({"hangup", "force_release"})
_SECURE_TRANSPORTS = frozenset({"TLS", "WSS"})  # SIP over which SDES keys may travel
# Where a hangup or release ends the contact from outside its phase when the phase reads
# no operations (after-call work has no call left to hang up).
_RELEASABLE = frozenset(
    {
        ContactState.NEW,
        ContactState.IVR,
        ContactState.QUEUED,
        ContactState.OFFERED,
        ContactState.DIALING,
        ContactState.CONNECTED,
    }
)


def _agents_of(contact: Contact) -> set[str]:
    """The agents on the contact now or before (their own contact to control)."""
    return {a for a in (contact.agent_id, *(leg.agent_id for leg in contact.legs)) if a}


class VoiceService:
    def __init__(
        self,
        *,
        db: Database,
        bus: LocalBus,
        sip: SipEndpoint,
        media: MediaEngine,
        acd: Acd,
        flows: FlowService,
        tts: TextToSpeech,
        asr: SpeechRecognizer | None,
        webhooks: WebhookRunner | None,
        contacts: ContactStore,
        recordings: RecordingStore,
        box: SecretBox,
        data_dir: Path,
        default_tenant: str | None = "demo",
        node: str = "",
        media_timeout: float = 60.0,
        browser_lost_after: float = 10.0,
        url_policy: TargetPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.url_policy = url_policy
        self.bus = bus
        self.sip = sip
        self.media = media
        self.acd = acd
        self.flows = flows
        self.tts = tts
        self.asr = asr
        self.webhooks = webhooks
        self.contacts_store = contacts
        self.recordings = recordings
        self.voicemail = VoicemailService(db, bus, recordings.root)
        self.box = box
        self.data_dir = data_dir
        self.default_tenant_slug = default_tenant
        self.node = node
        self.clock = clock
        self.media_address = sip.config.public_host or sip.config.host
        self.max_wrapup_seconds = 3600.0
        self.media_timeout = media_timeout
        self.browser_lost_after = browser_lost_after
        self.sessions: dict[str, ContactSession] = {}
        # ACD contact id -> session, where they differ (a callback of an earlier call)
        self.acd_index: dict[str, ContactSession] = {}
        # ACD contact id of a consultation waiting in a queue -> where its offer goes
        self.consult_inboxes: dict[str, asyncio.Queue[Decision]] = {}
        self._devices: dict[tuple[str, str], str] = {}  # (tenant, agent) -> registered AOR
        self._static_devices: dict[tuple[str, str], str] = {}  # logged in with a URI
        self._tenants: dict[str, Tenant] = {}
        self._tenant_by_slug: dict[str, str] = {}
        self._tenant_by_domain: dict[str, str] = {}
        self._music: list[Path] = sorted(MOH_DIR.glob("*.wav")) if MOH_DIR.exists() else []
        self._music_index = 0
        self._music_pcm: dict[int, Any] = {}
        self._prompt_pcm: dict[tuple[str, str], tuple[int, Any]] = {}  # queues' own music
        self.stopping = False  # set while the node shuts down
        self.draining = False  # set while live calls may still end by themselves
        # The tenant's live calls on other nodes (cloudcc.cluster.calls; 0 on a lone node).
        self.remote_calls: Callable[[str], int] = lambda tenant_id: 0
        # On a cluster: the phone an agent signed in with on any node (recovery/agents.py),
        # and where to write the phone an agent signed in here with (tenant, agent, device,
        # ready).
        self.shared_device: Callable[[str, str], Awaitable[str | None]] | None = None
        #: On a cluster: the AOR of the agent's phone registered with another node (through
        #: the SIP edge), reachable from this one (cluster/registrations.py).
        self.shared_registration: Callable[[str, str], Awaitable[str | None]] | None = None
        self.device_chosen: Callable[[str, str, str | None, bool], Awaitable[None]] | None = None
        # On a cluster: runs an operation where the contact is (cluster/operations.py).
        self.remote_operation: (
            Callable[[Actor, str, str, dict[str, Any]], Awaitable[dict[str, Any]]] | None
        ) = None
        # On a cluster: a tenant's live contacts on the other nodes, and the nodes that did
        # not answer in time (cluster/operations.py).
        self.remote_live: (
            Callable[[str], Awaitable[tuple[list[dict[str, Any]], list[str]]]] | None
        ) = None
        self.trunks = Trunks(db, bus, sip, box)
        self.agents = AgentSessions(self)
        self.trunk_response_timeout = TRUNK_RESPONSE_TIMEOUT
        # AOR registered by a phone or a trunk's PBX -> the addresses it registered from,
        # and how many such AORs each address has (looked up on every unknown INVITE)
        self._phone_ips: dict[str, set[str]] = {}
        self._phone_ip_count: Counter[str] = Counter()
        self._trunk_peers: dict[tuple[str, str], str] = {}  # (tenant, trunk) -> registered AOR
        sip.on_call = self.on_call
        sip.credentials = self.credentials
        sip.trunk_check = self.trunk_call
        sip.allow_unauthenticated = self.admit_unauthenticated
        sip.registrar.subscribe(self._bindings_changed)
        acd.handlers.append(self._on_decision)
        bus.on(lambda e: e.type.startswith("tenant."), lambda e: self._forget_tenant(e.tenant_id))
        # Lookups on every call's path are cached, and dropped when what they read changes.
        self._numbers: dict[str, list[NumberEntry]] = {}
        self._agent_refs: dict[tuple[str, str], str | None] = {}
        self._schedules: dict[str, dict[str, Schedule]] = {}
        bus.on(lambda e: e.type.startswith(("number.", "trunk.")), lambda e: self._numbers.clear())
        bus.on(
            lambda e: (
                e.type.startswith("agent.")
                and e.type.count(".") == 1
                and e.type.split(".")[1] in ("created", "updated", "deleted")
            ),
            lambda e: self._agent_refs.clear(),
        )
        bus.on(lambda e: e.type.startswith("business_hours."), self._forget_schedules)
        bus.on(lambda e: e.type == "agent.state_changed", self._agent_state_changed)

    # --- lifecycle --------------------------------------------------------------------

    async def drain(self, seconds: float) -> int:
        """Take no new call and give the live ones up to ``seconds`` to end by themselves
        (after-call work does not hold it); returns how many calls were still live."""
        self.draining = True
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not any(s.contact.state is not ContactState.WRAPUP for s in self.sessions.values()):
                return 0
            await asyncio.sleep(0.2)
        return sum(1 for s in self.sessions.values() if s.contact.state is not ContactState.WRAPUP)

    async def stop(self) -> None:
        """End every contact (their CDRs say node_shutdown) and write everything."""
        self.stopping = True
        await self.agents.close()
        sessions = list(self.sessions.values())
        for session in sessions:
            session.part_wrapped("")  # a finish waiting for handed-on wrap-ups sees the stop
            if session.contact.state is ContactState.WRAPUP:
                session.mailbox.put_nowait(WrapUpFinished("*"))  # after-call work is cut short
                continue
            session.contact.end_cause = session.contact.end_cause or EndCause.NODE_SHUTDOWN
            if session.task is not None:
                session.task.cancel()
        for session in sessions:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.finished.wait(), 10.0)
        await self.trunks.stop()
        await self.contacts_store.flush()

    # --- tenants and directory --------------------------------------------------------

    async def tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            async with self.db.session() as s:
                tenant = await s.get(Tenant, tenant_id)
            if tenant is None:
                raise BadTarget(f"tenant {tenant_id} does not exist")
            self._tenants[tenant_id] = tenant
        return tenant

    def _forget_schedules(self, event: Any) -> None:
        self._schedules.pop(event.tenant_id, None)

    def _forget_tenant(self, tenant_id: str) -> None:
        self._tenants.pop(tenant_id, None)

    async def tenant_for_domain(self, domain: str) -> str | None:
        """The tenant whose SIP domain this is; IP-addressed requests go to the default."""
        if domain in self._tenant_by_domain:
            return self._tenant_by_domain[domain]
        async with self.db.session() as s:
            tid = await s.scalar(select(Tenant.id).where(Tenant.sip_domain == domain))
            if tid is None and self.default_tenant_slug:
                tid = await s.scalar(
                    select(Tenant.id).where(Tenant.slug == self.default_tenant_slug)
                )
        if tid is not None:
            self._tenant_by_domain[domain] = tid
        return tid

    async def tenant_timezone(self, tenant_id: str) -> str:
        return (await self.tenant(tenant_id)).timezone

    async def records_calls(self, tenant_id: str) -> bool:
        return True

    async def schedules(self, tenant_id: str) -> dict[str, Schedule]:
        """The tenant's business hours as IVR schedules (cached until they change)."""
        cached = self._schedules.get(tenant_id)
        if cached is not None:
            return cached
        self._schedules[tenant_id] = await self._load_schedules(tenant_id)
        return self._schedules[tenant_id]

    async def _load_schedules(self, tenant_id: str) -> dict[str, Schedule]:
        async with self.db.session() as s:
            rows = (
                await s.scalars(select(BusinessHours).where(BusinessHours.tenant_id == tenant_id))
            ).all()
        out: dict[str, Schedule] = {}
        for row in rows:
            weekly = {day: [f"{a}-{b}" for a, b in ranges] for day, ranges in row.weekly.items()}
            holidays = [h for h in row.holidays if not h.get("open")]
            special = [h for h in row.holidays if h.get("open")]
            out[row.name] = Schedule.model_validate(
                {
                    "timezone": row.timezone,
                    "weekly": weekly,
                    "holidays": [{"date": h["date"], "name": h.get("name", "")} for h in holidays],
                    "exceptions": [
                        {
                            "date": h["date"],
                            "name": h.get("name", ""),
                            "open": [f"{a}-{b}" for a, b in h["open"]],
                        }
                        for h in special
                    ],
                }
            )
        return out

    def prompts_dir(self, tenant_id: str) -> Path:
        return self.data_dir / "prompts" / tenant_id

    def music_source(self, tenant_id: str | None = None, name: str = "default") -> AudioSource:
        """Music on hold: ``name`` is one of the tenant's prompts (a queue's own music), or
        "default": the tracks of Debian's asterisk-moh-opsound-wav, in turn. Either is read
        into memory once and shared by every caller (no file I/O per held call)."""
        if name != "default" and tenant_id is not None:
            pcm = self._prompt_music(tenant_id, name)
            if pcm is not None:
                return PcmSource(pcm, 8000)
        if not self._music:
            return default_music_on_hold()
        index = self._music_index % len(self._music)
        self._music_index += 1
        pcm = self._music_pcm.get(index)
        if pcm is None:
            source = WavSource(self._music[index])
            chunks = []
            while len(chunk := source.read(1 << 16)):
                chunks.append(chunk)
            source.close()
            pcm = self._music_pcm[index] = np.concatenate(chunks)
        return PcmSource(pcm, 8000)

    def _prompt_music(self, tenant_id: str, name: str) -> Any:
        path = self.prompts_dir(tenant_id) / f"{name}.wav"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            log.warning(
                "tenant %s: music on hold %r is not a prompt (deleted?): default music",
                tenant_id,
                name,
            )
            return None
        key = (tenant_id, name)
        cached = self._prompt_pcm.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        source = WavSource(path)
        chunks = []
        while len(chunk := source.read(1 << 16)):
            chunks.append(chunk)
        source.close()
        pcm = np.concatenate(chunks)
        self._prompt_pcm[key] = (stamp, pcm)
        return pcm

    def caller_uri(self, number: str | None) -> str:
        user = (number or "anonymous").split("@")[0].replace("sip:", "")
        if not re.match(r"^[A-Za-z0-9_.+*#-]{1,64}$", user):
            user = "anonymous"
        return f"sip:{user}@{self.media_address}"

    # --- SIP admission ----------------------------------------------------------------

    async def credentials(self, realm: str, username: str) -> Credential | None:
        """Digest credentials in the realm's tenant: an agent's phone (its extension), else a
        trunk whose peer authenticates to us (``inbound_auth``, its username)."""
        tenant_id = await self.tenant_for_domain(realm)
        if tenant_id is None:
            return None
        async with self.db.session() as s:
            agent = await s.scalar(
                select(Agent).where(Agent.tenant_id == tenant_id, Agent.extension == username)
            )
            if agent is None:
                trunk = await s.scalar(
                    select(Trunk).where(
                        Trunk.tenant_id == tenant_id,
                        Trunk.inbound_auth.is_(True),
                        Trunk.username == username,
                    )
                )
                if trunk is None or not trunk.password_enc:
                    return None
                return Credential(
                    username=username,
                    password=self.box.open(trunk.password_enc),
                    owner=TrunkPeer(tenant_id, trunk.id),
                )
        if agent.status != "active":
            return None
        return Credential(
            username=username,
            password=self.box.open(agent.sip_password_enc),
            owner=(tenant_id, agent.id),
        )

    async def trunk_call(self, source: Any, info: RequestInfo) -> FromTrunk | None:
        """An INVITE from a trunk of the number it dials, or None (RFC 3261 §26.3.2.2: the
        source address is the trunk's authentication).

        A call sent to the Contact a trunk registered at its carrier reaches the number in
        its To (else the trunk's username); any other call reaches its Request-URI's number,
        from one of the trunks the number answers: its own trunk when it is bound to one,
        any trunk of its tenant otherwise (numbers the platform provisioned first)."""
        ip = source[0]
        line = self.trunks.by_line(info.request_user)
        if line is not None:
            if not (line.admits(ip) or ip == self.trunks.registrar_address(line.id)):
                return None
            for dialed in (info.to_user, line.username):
                for entry in await self.numbers(dialed or ""):
                    if entry.row.tenant_id == line.tenant_id and entry.answers(line):
                        return FromTrunk(line.tenant_id, line.id, entry.row)
            return None
        for entry in await self.numbers(info.request_user or ""):
            for trunk in await self.trunks.of(entry.row.tenant_id):
                if entry.answers(trunk) and trunk.admits(ip):
                    return FromTrunk(trunk.tenant_id, trunk.id, entry.row)
        return None

    async def admit_unauthenticated(self, source: Any, info: RequestInfo) -> Admission:
        """Neither a trunk's call nor authenticated: a registered phone or PBX is challenged
        (an agent dialing the hotline proves its password), anything else is refused."""
        if self._phone_ip_count[source[0]] > 0:
            return Admission.CHALLENGE
        log.warning(
            "refused a call from %s:%s to %r: not from a trunk of that number, nor from a "
            "registered phone",
            source[0],
            source[1],
            info.request_user,
        )
        return Admission.REFUSE

    async def numbers(self, dialed: str) -> list[NumberEntry]:
        """The numbers a call to ``dialed`` may reach, the platform's provisioned one first
        (cached: every call looks them up)."""
        found = self._numbers.get(dialed)
        if found is not None:
            return found
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(PhoneNumber, ProvisionedNumber.tenant_id)
                    .outerjoin(ProvisionedNumber, ProvisionedNumber.number == PhoneNumber.number)
                    .where(PhoneNumber.number == dialed)
                    .order_by(PhoneNumber.created_at)
                )
            ).all()
        found = [NumberEntry(row, holder == row.tenant_id) for row, holder in rows]
        found.sort(key=lambda e: not e.provisioned)
        if len(self._numbers) > 100_000:
            self._numbers.clear()
        self._numbers[dialed] = found
        return found

    async def tenant_number(self, tenant_id: str, dialed: str) -> PhoneNumber | None:
        """The tenant's own number ``dialed`` (an entry point its agents may call)."""
        for entry in await self.numbers(dialed):
            if entry.row.tenant_id == tenant_id and entry.valid:
                row: PhoneNumber = entry.row
                return row
        return None

    def _bindings_changed(self, aor: str, bindings: list[Binding]) -> None:
        owners = {b.owner for b in bindings if b.owner is not None}
        ips = {b.source[0] for b in bindings if b.source is not None}
        for ip in self._phone_ips.pop(aor, ()):
            self._phone_ip_count[ip] -= 1
            if self._phone_ip_count[ip] <= 0:
                del self._phone_ip_count[ip]
        if ips and any(isinstance(o, tuple | TrunkPeer) for o in owners):
            self._phone_ips[aor] = ips  # phones and PBXs that registered: challenged
            self._phone_ip_count.update(ips)
        for key, known in list(self._trunk_peers.items()):
            if known == aor and not any(isinstance(o, TrunkPeer) for o in owners):
                del self._trunk_peers[key]
        for owner in owners:
            if isinstance(owner, TrunkPeer):
                self._trunk_peers[(owner.tenant_id, owner.trunk_id)] = aor
        for key, known in list(self._devices.items()):
            if known == aor and key not in owners:
                del self._devices[key]
                self.bus.publish(
                    key[0], "agent.phone_unregistered", {"agent_id": key[1], "aor": aor}
                )
        for owner in owners:
            if isinstance(owner, tuple) and len(owner) == 2:
                tenant_id, agent_id = owner
                if self._devices.get((tenant_id, agent_id)) != aor:
                    self._devices[(tenant_id, agent_id)] = aor
                    self.bus.publish(
                        tenant_id, "agent.phone_registered", {"agent_id": agent_id, "aor": aor}
                    )

    async def agent_device(self, tenant_id: str, agent_id: str) -> str | None:
        """Where to ring an agent: the phone it logged in with, else its registered phone;
        on a cluster, else the phone it logged in with on another node (``shared_device``)."""
        found = self.static_device(tenant_id, agent_id) or self.registered_device(
            tenant_id, agent_id
        )
        if found is None and self.shared_device is not None:
            found = await self.shared_device(tenant_id, agent_id)
        return found

    def static_device(self, tenant_id: str, agent_id: str) -> str | None:
        """The phone URI the agent signed in with (assigned, or given by an admin)."""
        return self._static_devices.get((tenant_id, agent_id))

    def registered_device(self, tenant_id: str, agent_id: str) -> str | None:
        """The AOR of a phone or softphone registered with the agent's own credentials."""
        aor = self._devices.get((tenant_id, agent_id))
        if aor and self.sip.registrar.lookup(aor, self.sip.now()):
            return aor
        return None

    async def srtp_policy(self, tenant_id: str) -> SrtpPolicy:
        """The tenant's SRTP policy for SIP legs (contacts/sdes.py)."""
        tenant = await self.tenant(tenant_id)
        return SrtpPolicy(getattr(tenant, "srtp_policy", None) or SrtpPolicy.OPTIONAL)

    def cached_srtp_policy(self, tenant_id: str) -> SrtpPolicy:
        """The same without waiting (for a re-INVITE: the tenant is cached by its call)."""
        tenant = self._tenants.get(tenant_id)
        return SrtpPolicy(getattr(tenant, "srtp_policy", None) or SrtpPolicy.OPTIONAL)

    def reaches_over_tls(self, target: str) -> bool:
        """Whether SIP to ``target`` is encrypted (sips:, ;transport=tls, or a phone that
        registered over TLS or WSS): only then may SDES keys travel in the SDP."""
        low = target.lower()
        if low.startswith("sips:") or ";transport=tls" in low:
            return True
        try:
            bindings = self.sip.registrar.lookup(target, self.sip.now())
        except Exception:
            return False
        return bool(bindings) and all(b.transport.upper() in _SECURE_TRANSPORTS for b in bindings)

    def reaches_browser(self, target: str) -> bool:
        """Whether ``target`` rings only browsers (contacts registered over SIP/WebSocket,
        RFC 7118): those get a WebRTC offer (ICE, DTLS-SRTP) instead of plain RTP."""
        try:
            bindings = self.sip.registrar.lookup(target, self.sip.now())
        except Exception:  # not an AOR (a trunk URI, a number): a plain SIP target
            return False
        return bool(bindings) and all(b.transport.upper() in ("WS", "WSS") for b in bindings)

    async def agent_id_for(self, tenant_id: str, ref: str) -> str | None:
        """An agent of the tenant by id or extension (cached until agents change)."""
        key = (tenant_id, ref)
        if key in self._agent_refs:
            return self._agent_refs[key]
        async with self.db.session() as s:
            found = await s.scalar(
                select(Agent.id).where(
                    Agent.tenant_id == tenant_id, (Agent.id == ref) | (Agent.extension == ref)
                )
            )
        self._agent_refs[key] = found
        return found

    async def on_call(self, call: IncomingCall) -> None:
        """A new INVITE: decide which tenant and what it reaches, then start a contact."""
        if self.stopping or self.draining:
            # RFC 3261 §21.5.4: another node (or this one, restarted) takes it after that
            await call.reject(503, "Shutting Down", [("Retry-After", str(DRAIN_RETRY_AFTER))])
            return
        info = call.info
        dialed = info.request_user or ""
        owner = call.owner
        try:
            if isinstance(owner, tuple) and len(owner) == 2:
                await self._from_agent_phone(call, owner[0], owner[1], dialed)
                return
            if isinstance(owner, TrunkPeer):
                number = None
                trunk = await self.trunks.get(owner.tenant_id, owner.trunk_id)
                if trunk is not None:
                    number = next(
                        (
                            e.row
                            for e in await self.numbers(dialed)
                            if e.row.tenant_id == owner.tenant_id and e.answers(trunk)
                        ),
                        None,
                    )
                if trunk is None or number is None:
                    await call.reject(404, "Number Not Assigned")
                    return
                owner = FromTrunk(owner.tenant_id, trunk.id, number)
            if not isinstance(owner, FromTrunk):
                await call.reject(403)
                return
            trunk = await self.trunks.get(owner.tenant_id, owner.trunk_id)
            if trunk is None:
                await call.reject(404, "Number Not Assigned")
                return
            number = owner.number
            entry = Target(number.target_type, number.target or "")
            await self._admit(
                call,
                number.tenant_id,
                entry,
                customer=info.from_user or "",
                dialed=number.number,
                trunk=trunk,
            )
        except Exception:
            log.exception("admitting call %s failed", call.call_id)
            with contextlib.suppress(Exception):
                await call.reject(500, "Server Internal Error")

    async def _admit(
        self,
        call: IncomingCall,
        tenant_id: str,
        entry: Target,
        customer: str,
        dialed: str,
        direction: Direction = Direction.INBOUND,
        agent_id: str | None = None,
        trunk: TrunkInfo | None = None,
    ) -> ContactSession | None:
        tenant = await self.tenant(tenant_id)
        active = sum(1 for s in self.sessions.values() if s.tenant_id == tenant_id)
        active += self.remote_calls(tenant_id)  # on the other nodes of a cluster
        if tenant.status != "active" or active >= tenant.max_concurrent_calls:
            await call.reject(
                486 if tenant.status == "active" else 403,
                "Tenant Call Limit Reached" if tenant.status == "active" else None,
            )
            self.bus.publish(
                tenant_id, "contact.refused", {"reason": "concurrent_calls", "customer": customer}
            )
            self._record_refusal(tenant_id, call, customer, dialed, direction, "concurrent_calls")
            return None
        if trunk is not None and self.trunks.in_use(trunk.id) >= trunk.max_channels:
            # The carrier tries another route (RFC 3261 §21.5.4).
            await call.reject(503, "Trunk Channels Exhausted")
            log.info(
                "refused a call from %s to %s on trunk %s of tenant %s: its %d channels are in use",
                call.info.source[0],
                dialed,
                trunk.name,
                tenant_id,
                trunk.max_channels,
            )
            self.bus.publish(
                tenant_id,
                "contact.refused",
                {"reason": "trunk_channels", "customer": customer, "trunk": trunk.name},
            )
            self._record_refusal(tenant_id, call, customer, dialed, direction, "trunk_channels")
            return None
        if call.offer is None:
            await call.reject(488, "An SDP Offer Is Required")
            return None
        media = await self.media.open_leg()
        try:
            answer = sdp_glue.answer_for(
                call.offer,
                media,
                self.media_address,
                secure_signalling=call.transport in _SECURE_TRANSPORTS,
                srtp_policy=await self.srtp_policy(tenant_id),
            )
        except Exception:
            media.close()
            await call.reject(488, "Not Acceptable Here")
            return None
        now = self.clock()
        contact = self.new_contact(tenant_id, direction, customer, dialed)
        role = LegRole.AGENT if agent_id else LegRole.CUSTOMER
        leg = contact.add_leg(role, customer, now, agent_id=agent_id, call_id=call.call_id)
        party = Party(leg, media, call, agent_id=agent_id)
        if trunk is not None:
            leg.trunk = trunk.name
            self.trunks.seize(trunk, party)  # counted above; released when the leg ends
        session = ContactSession(self, contact, party, entry)
        self.sessions[contact.id] = session
        self.save(session)
        try:
            await call.answer(answer)
        except Exception:
            leg.end_cause = "not_answered"
            session.customer_gone.set()
            session.start()
            return session
        leg.go(LegState.UP, self.clock())
        self.publish_contact(session, "contact.created")
        session.start()
        return session

    def _record_refusal(
        self,
        tenant_id: str,
        call: IncomingCall,
        customer: str,
        dialed: str,
        direction: Direction,
        reason: str,
    ) -> None:
        """A call refused at the door still leaves a record: offered-call figures count it."""
        now = self.clock()
        contact = self.new_contact(tenant_id, direction, customer, dialed, {"refused": reason})
        leg = contact.add_leg(LegRole.CUSTOMER, customer, now, call_id=call.call_id)
        leg.end_cause = EndCause.REFUSED.value
        contact.end_cause = EndCause.REFUSED
        contact.disposition = Disposition.REFUSED
        close_open_phases(contact, now, EndCause.REFUSED)
        self.contacts_store.save(contact)

    async def _from_agent_phone(
        self, call: IncomingCall, tenant_id: str, agent_id: str, dialed: str
    ) -> None:
        """An agent dials from its phone: another extension, an entry point of its own
        tenant (the hotline), or an outside number (through the tenant's trunks)."""
        kind = await self.classify_dialed(tenant_id, dialed)
        if kind == "number":
            number = await self.tenant_number(tenant_id, dialed)
            if number is not None:
                await self._admit(
                    call,
                    number.tenant_id,
                    Target(number.target_type, number.target or ""),
                    customer=dialed,
                    dialed=dialed,
                )
                return
        entry = Target("agent" if kind == "agent" else "external", dialed)
        await self._agent_outbound(call, tenant_id, agent_id, entry)

    async def classify_dialed(self, tenant_id: str, dialed: str) -> str:
        """'agent' (an extension of the tenant), 'number' (one of its entry points) or
        'external'."""
        if await self.agent_id_for(tenant_id, dialed):
            return "agent"
        if await self.tenant_number(tenant_id, dialed) is not None:
            return "number"
        return "external"

    async def _agent_outbound(
        self, call: IncomingCall, tenant_id: str, agent_id: str, entry: Target
    ) -> None:
        """The agent's phone is the first leg; the customer (or colleague) is dialed."""
        if call.offer is None:
            await call.reject(488)
            return
        media = await self.media.open_leg()
        try:
            answer = sdp_glue.answer_for(
                call.offer,
                media,
                self.media_address,
                secure_signalling=call.transport in _SECURE_TRANSPORTS,
                srtp_policy=await self.srtp_policy(tenant_id),
            )
        except Exception:
            media.close()
            await call.reject(488)
            return
        now = self.clock()
        contact = self.new_contact(
            tenant_id, Direction.OUTBOUND, entry.name, await self.caller_id(tenant_id)
        )
        agent_leg = contact.add_leg(
            LegRole.AGENT, call.info.from_user or "", now, agent_id=agent_id, call_id=call.call_id
        )
        agent_party = Party(agent_leg, media, call, agent_id=agent_id)
        session = OutboundSession(self, contact, agent_party, entry)
        self.sessions[contact.id] = session
        self.save(session)
        await call.ring()
        session.start()
        session.pending_answer = (call, answer)

    def new_contact(
        self,
        tenant_id: str,
        direction: Direction,
        customer: str,
        dialed: str,
        attributes: dict[str, Any] | None = None,
    ) -> Contact:
        return Contact(
            id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            channel=Channel.VOICE,
            direction=direction,
            customer=customer,
            dialed=dialed,
            created_at=self.clock(),
            attributes=attributes or {},
        )

    async def caller_id(self, tenant_id: str) -> str:
        async with self.db.session() as s:
            number = await s.scalar(
                select(PhoneNumber.number)
                .where(PhoneNumber.tenant_id == tenant_id)
                .order_by(PhoneNumber.created_at)
            )
        return number or "anonymous"

    # --- targets ----------------------------------------------------------------------

    async def resolve_target(self, tenant_id: str, target_type: str, target: str) -> Target:
        if target_type == "queue":
            if await self.acd.queue_id(tenant_id, target) is None:
                raise BadTarget(f"queue {target!r} does not exist")
            return Target("queue", target)
        if target_type == "flow":
            await self.flows.published_flow(tenant_id, target)
            return Target("flow", target)
        if target_type == "agent":
            if await self.agent_id_for(tenant_id, target) is None:
                raise BadTarget(f"agent {target!r} does not exist")
            return Target("agent", target)
        if target_type == "external":
            await self.check_destination(tenant_id, target)
            return Target("external", target)
        raise BadTarget(f"unknown target type {target_type!r}")

    async def consult_device(
        self, tenant_id: str, target_type: str, target: str
    ) -> tuple[str, str | None]:
        if target_type == "agent":
            agent_id = await self.agent_id_for(tenant_id, target)
            if agent_id is None:
                raise BadTarget(f"agent {target!r} does not exist")
            device = await self.agent_device(tenant_id, agent_id)
            if device is None:
                raise OperationRefused(f"agent {target!r} has no reachable phone")
            return device, agent_id
        if target_type == "external":
            await self.check_destination(tenant_id, target)
            return target, None
        raise BadTarget("a consultation goes to an agent or an external number")

    async def check_destination(self, tenant_id: str, destination: str) -> None:
        """Refuse now a destination the tenant's calls may not go to (see ``routes``)."""
        await self.routes(tenant_id, destination)

    async def routes(self, tenant_id: str, destination: str) -> list[Route]:
        """Where a call to ``destination`` may go, in the order to try.

        An outside number goes through the tenant's outbound trunks in priority order, when
        its dial plan allows the number; a ``sip:`` address goes there directly, only when
        an admin listed it (``sip_destinations``) or it is one of the tenant's registered
        phones. Raises DestinationRefused or BadTarget with what to do."""
        tenant = await self.tenant(tenant_id)
        if destination.startswith(("sip:", "sips:")):
            uri = sip_target(destination)
            if uri.headers or "maddr" in uri.params:
                raise BadTarget("a SIP destination may not carry headers or a maddr parameter")
            if not (is_listed(uri, tenant.sip_destinations) or self.is_own_phone(tenant_id, uri)):
                raise DestinationRefused(
                    f"{uri.host}{f':{uri.port}' if uri.port else ''} is not among the tenant's "
                    "SIP destinations: an admin can add it to sip_destinations (PATCH /tenant), "
                    "or dial a number through the tenant's trunks"
                )
            return [Route(destination)]
        DialPlan.from_settings(tenant.dial_plan).check(destination)
        trunks = [t for t in await self.trunks.of(tenant_id) if t.outbound]
        if not trunks:
            raise BadTarget(
                "the tenant has no trunk for calls out: add one (POST /trunks with outbound "
                "true) to reach outside numbers"
            )
        return [self._trunk_route(t, destination) for t in trunks]

    def _trunk_route(self, trunk: TrunkInfo, number: str) -> Route:
        """How a call to ``number`` goes out on ``trunk``: to the AOR its PBX registered here
        (``inbound_auth``; the number in To, RFC 3261 §10.3 retargeting), else to the
        trunk's host."""
        credentials = self.trunks.credentials(trunk)
        aor = self._trunk_peers.get((trunk.tenant_id, trunk.id)) if trunk.inbound_auth else None
        if aor and self.sip.registrar.lookup(aor, self.sip.now()):
            host = aor.split("@", 1)[1]
            return Route(aor, trunk, credentials, to=f"sip:{number}@{host}")
        return Route(trunk.uri_for(number), trunk, credentials)

    def is_own_phone(self, tenant_id: str, uri: Any, agent_id: str | None = None) -> bool:
        """Whether ``uri`` is a registered phone of one of the tenant's agents (its AOR or
        the contact it registered); of ``agent_id`` only when given."""
        now = self.sip.now()
        for (tenant, agent), aor in self._devices.items():
            if tenant != tenant_id or agent_id not in (None, agent):
                continue
            for binding in self.sip.registrar.lookup(aor, now):
                if binding.aor == uri.aor:
                    return True
                contact = binding.uri
                if contact.host == uri.host and (contact.port or 5060) == (uri.port or 5060):
                    return True
        return False

    # --- routing decisions ------------------------------------------------------------

    def _on_decision(self, tenant_id: str, decision: Decision) -> None:
        if isinstance(decision, Offer | OfferWithdrawn | Overflow | QueueAction | AnnounceWait):
            cid = decision.contact_id
            inbox = self.consult_inboxes.get(cid)
            if inbox is not None:
                inbox.put_nowait(decision)
                return
            session = self.acd_index.get(cid) or self.sessions.get(cid)
            if session is not None:
                session.mailbox.put_nowait(decision)
            elif isinstance(decision, Offer):
                log.warning("offer for unknown contact %s", decision.contact_id)

    def _agent_state_changed(self, event: Any) -> None:
        if event.data.get("previous") != AgentState.WRAP_UP.value:
            return
        agent_id = event.data["agent_id"]
        for session in self.sessions.values():
            if agent_id in session.wrapping_parts:
                session.part_wrapped(agent_id)
            elif session.contact.state is ContactState.WRAPUP and session._wrapping == agent_id:
                session.mailbox.put_nowait(WrapUpFinished(agent_id))

    async def in_wrapup(self, tenant_id: str, agent_id: str) -> bool:
        if self.acd.cluster is not None:
            try:
                return bool(await self.acd.query(tenant_id, "in_wrapup", agent_id))
            except RoutingError:
                return False
        engine = self.acd.loaded(tenant_id)
        if engine is None:
            return False
        try:
            return engine.agent_stats(agent_id, self.clock()).state is AgentState.WRAP_UP
        except Exception:
            return False

    async def resubmit_routing(self, tenant_id: str) -> None:
        """The tenant's routing has a new owner (cluster): tell it which agents talk on this
        node's calls, then which calls wait in its queues, each with the time it joined its
        queue (it keeps its place among the waiting calls of every node, and its wait counts
        from then)."""
        sessions = [s for s in list(self.sessions.values()) if s.tenant_id == tenant_id]
        for session in sessions:
            for agent_id, work in list(session._acd_work.items()):
                with contextlib.suppress(RoutingError):
                    await self.acd.call(
                        tenant_id, "direct_contact_started", agent_id, work, RoutingChannel.VOICE
                    )
        for session in sorted(sessions, key=lambda s: s._queued_at or 0.0):
            queue_id, asked = session._queued_id, session._queue_request
            if queue_id is None or asked is None or session.contact.ended:
                continue
            priority, skills, preferred = asked
            with contextlib.suppress(RoutingError):
                await self.acd.call(
                    tenant_id,
                    "contact_queued",
                    session.acd_id,
                    queue_id,
                    RoutingChannel.VOICE,
                    priority=priority,
                    required_skills=skills,
                    preferred_agent=preferred,
                    enqueued_at=session._queued_at,
                )
        if sessions:
            log.info("tenant %s: %d live calls handed to its new routing owner",
                     tenant_id, len(sessions))  # fmt: skip

    # --- callbacks --------------------------------------------------------------------

    async def schedule_callback(
        self,
        tenant_id: str,
        queue: str,
        number: str,
        skills: tuple[str, ...],
        priority: int,
        origin: str | None = None,
        acd_id: str | None = None,
    ) -> str:
        """Queue a callback: when an agent is free it is rung, then the customer is dialed.

        ``acd_id``: the ACD already holds this contact as a callback (a queue treatment)."""
        queue_id = await self.acd.queue_id(tenant_id, queue)
        if queue_id is None:
            raise BadTarget(f"queue {queue!r} does not exist")
        contact = self.new_contact(
            tenant_id,
            Direction.OUTBOUND,
            number,
            await self.caller_id(tenant_id),
            {"callback": True, "origin_contact": origin},
        )
        session = CallbackSession(self, contact, queue, skills, priority, acd_id)
        self.sessions[contact.id] = session
        self.acd_index[session.acd_id] = session
        self.save(session)
        session.start()
        return contact.id

    # --- persistence and events -------------------------------------------------------

    def save(self, session: ContactSession) -> None:
        self.contacts_store.save(session.contact)

    def forget(self, session: ContactSession) -> None:
        self.sessions.pop(session.contact.id, None)
        if self.acd_index.get(session.acd_id) is session:
            del self.acd_index[session.acd_id]

    def publish_contact(self, session: ContactSession, type: str, **data: Any) -> None:
        c = session.contact
        payload = {
            "contact_id": c.id,
            "state": c.state.value,
            "channel": c.channel.value,
            "direction": c.direction.value,
            "customer": c.customer,
            "dialed": c.dialed,
            "queue": c.queue,
            "agent_id": c.agent_id,
            **data,
        }
        self.bus.publish(c.tenant_id, type, payload)

    def publish_leg(self, session: ContactSession, leg: Leg, type: str) -> None:
        self.bus.publish(
            session.tenant_id,
            type,
            {
                "contact_id": session.contact.id,
                "agent_id": leg.agent_id or session.contact.agent_id,
                "leg": leg.to_dict(),
            },
        )

    # --- API ----------------------------------------------------------------------------

    def live(self, tenant_id: str) -> list[dict[str, Any]]:
        return [
            s.contact.summary() | {"wrapping": sorted(s.wrapping_parts)}
            for s in self.sessions.values()
            if s.tenant_id == tenant_id
        ]

    async def live_everywhere(self, tenant_id: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The tenant's live contacts on this node and, on a cluster, on the other nodes
        (``remote_live``); with the nodes whose contacts are missing as they did not answer."""
        items = self.live(tenant_id)
        if self.remote_live is None:
            return items, []
        others, silent = await self.remote_live(tenant_id)
        here = {c["contact_id"] for c in items}
        return items + [c for c in others if c["contact_id"] not in here], silent

    def serves_customer(self, tenant_id: str, agent_id: str, customer: str) -> bool:
        """Whether a live contact of this customer is offered to or handled by the agent (an
        agent may then read the customer's earlier contacts, whoever handled them)."""
        return any(
            s.tenant_id == tenant_id and s.contact.customer == customer and s.is_for_agent(agent_id)
            for s in self.sessions.values()
        )

    def session_for(self, actor: Actor, contact_id: str) -> ContactSession:
        session = self.sessions.get(contact_id)
        if session is None or session.tenant_id != actor.tenant_id:
            raise ContactNotFound(f"no live contact {contact_id}")
        p = actor.principal
        if p.can(Permission.CALLS_CONTROL):
            return session
        if p.can(Permission.CALLS_OWN) and p.agent_id in _agents_of(session.contact):
            return session
        raise PermissionDenied("this contact is not yours to control (calls:control)")

    async def operate(
        self,
        actor: Actor,
        contact_id: str,
        name: str,
        params: dict[str, Any],
        *,
        forwarded: bool = False,
    ) -> dict[str, Any]:
        """Run a call-control operation; on a cluster, on the node holding the contact
        (``remote_operation``; ``forwarded``: it comes from another node, run it here)."""
        if contact_id not in self.sessions and self.remote_operation is not None and not forwarded:
            return await self.remote_operation(actor, contact_id, name, params)
        session = self.session_for(actor, contact_id)
        if name in ("monitor", "stop_monitor", "intercept", "force_release") and not (
            actor.principal.can(Permission.CALLS_MONITOR)
        ):
            raise PermissionDenied(f"{name} needs calls:monitor")
        agent_id = actor.principal.agent_id
        if name == "wrapup" and agent_id is not None and session.handed_on(agent_id):
            # The wrap-up of an agent's part of a contact that went on without it (also after
            # its after-call time ran out: the disposition is not lost).
            return await session.wrap_up_part(
                agent_id, params.get("code"), params.get("notes"), params.get("done", True)
            )
        state = session.contact.state
        if name in _RELEASES and state in _RELEASABLE and not session.reads_operations:
            # No talk with an agent (the IVR, a queue, a dial in progress, an outside
            # number): the contact is ended from outside its phase, now.
            own = name == "hangup" and actor.principal.agent_id in _agents_of(session.contact)
            await session.release(EndCause.AGENT_HANGUP if own else EndCause.SUPERVISOR_RELEASE)
            return {"ok": True}
        wanted = ContactState.WRAPUP if name == "wrapup" else ContactState.CONNECTED
        if state is not wanted or not session.reads_operations:
            # Asked now or never: the contact's current phase would not read it (an IVR,
            # a dial in progress), and a late transfer is worse than a refusal.
            raise OperationRefused(f"cannot {name.replace('_', '-')} a contact that is {state}")
        op = Operation(name, params, actor.principal.id)
        session.mailbox.put_nowait(op)
        result: dict[str, Any] = await asyncio.wait_for(op.future, 60.0)
        if name == "record":
            # Who started, paused, resumed or stopped a recording: a compliance question.
            await self.agents.audit(
                actor,
                f"recording_{params['action']}",
                "contact",
                contact_id,
                {"recording_id": result.get("recording_id"), "agent_id": session.contact.agent_id},
            )
        return result

    # --- agent sessions -----------------------------------------------------------------

    async def agent_login(
        self, tenant_id: str, agent_id: str, device: str | None, ready: bool = True
    ) -> dict[str, Any]:
        from cloudcc.routing.model import Presence

        if device and not device.startswith(("sip:", "sips:")):
            raise BadTarget("a phone to log in with is a SIP URI (sip:user@host:port)")
        presence = Presence.READY if ready else Presence.NOT_READY
        if not await self.acd.ensure_agent(tenant_id, agent_id):
            raise BadTarget("the agent is disabled")
        await self.agents.login(tenant_id, agent_id, presence, None if ready else "busy")
        if device:
            self._static_devices[(tenant_id, agent_id)] = device
        else:
            self._static_devices.pop((tenant_id, agent_id), None)
        if self.device_chosen is not None:
            await self.device_chosen(tenant_id, agent_id, device, ready)
        return {"agent_id": agent_id, "device": await self.agent_device(tenant_id, agent_id)}

    def logged_in_device(self, tenant_id: str, agent_id: str) -> str | None:
        """The phone (SIP URI) the agent logged in with, if it named one."""
        return self._static_devices.get((tenant_id, agent_id))

    async def agent_logout(self, tenant_id: str, agent_id: str) -> None:
        await self.agents.logout(tenant_id, agent_id)
        self._static_devices.pop((tenant_id, agent_id), None)

    async def agent_presence(
        self, tenant_id: str, agent_id: str, ready: bool, reason: str | None
    ) -> None:
        await self.agents.presence(tenant_id, agent_id, ready, reason)

    async def force_agent(
        self, tenant_id: str, agent_id: str, action: str, by: str, seconds: float | None = None
    ) -> None:
        await self.agents.force(tenant_id, agent_id, action, by, seconds)

    async def agent_status(self, tenant_id: str, agent_id: str) -> dict[str, Any]:
        stats = await self.acd.query(tenant_id, "agent_stats", agent_id)
        return {
            "agent_id": agent_id,
            "state": stats.state.value,
            "cti_code": stats.cti_code,
            "reason": stats.reason,
            "since": stats.state_since,
            "device": await self.agent_device(tenant_id, agent_id),
            "heartbeat_seconds": self.agents.heartbeat_seconds(tenant_id, agent_id),
            "contacts": [
                s.contact.id
                for s in self.sessions.values()
                if s.tenant_id == tenant_id and s.contact.agent_id == agent_id
            ],
        }

    async def place_call(
        self,
        tenant_id: str,
        to: str,
        *,
        agent_id: str | None = None,
        queue: str | None = None,
        flow: str | None = None,
    ) -> str:
        """Outbound by API: from an agent (its phone rings first), or customer-first into a
        queue or flow (the return-visit call)."""
        await self.check_destination(tenant_id, to)  # refuse now what may not be dialed
        session: ContactSession
        if agent_id:
            device = await self.agent_device(tenant_id, agent_id)
            if device is None:
                raise OperationRefused("the agent has no reachable phone")
            session = AgentFirstSession(
                self, await self._outbound_contact(tenant_id, to), agent_id, device, to
            )
        else:
            if not (queue or flow):
                raise BadTarget("a customer-first call needs a queue or a flow")
            target = Target("queue", queue) if queue else Target("flow", flow or "")
            await self.resolve_target(tenant_id, target.kind, target.name)
            session = CustomerFirstSession(
                self, await self._outbound_contact(tenant_id, to), to, target
            )
        self.sessions[session.contact.id] = session
        self.save(session)
        session.start()
        return session.contact.id

    async def _outbound_contact(self, tenant_id: str, to: str) -> Contact:
        if not _NUMBER.match(to) and not to.startswith("sip:"):
            raise BadTarget(f"{to!r} is not a phone number or SIP URI")
        return self.new_contact(tenant_id, Direction.OUTBOUND, to, await self.caller_id(tenant_id))
