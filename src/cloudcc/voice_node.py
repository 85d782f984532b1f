"""Composition of the voice side of a node: SIP endpoint, media engine, ACD, contacts."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from cloudcc.ai.asr import SpeechRecognizer, create_recognizer
from cloudcc.ai.tts import create_tts
from cloudcc.api.context import ApiContext
from cloudcc.config import Settings
from cloudcc.contacts.acd import Acd
from cloudcc.contacts.records import ContactStore, RecordingStore
from cloudcc.contacts.retention import Retention
from cloudcc.contacts.voice import VoiceService
from cloudcc.events.targets import TargetPolicy
from cloudcc.ivr.webhook import WebhookRunner
from cloudcc.media.engine import MediaEngine
from cloudcc.recovery.agents import AgentSignIns
from cloudcc.recovery.early import node_name
from cloudcc.recovery.journal import DialogJournal
from cloudcc.recovery.service import NodeRecovery
from cloudcc.sip.endpoint import EndpointConfig, SipEndpoint
from cloudcc.sip.protection import ProtectionSettings
from cloudcc.store.tables import Tenant

log = logging.getLogger("cloudcc.voice")


def _tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class VoiceNode:
    def __init__(self, settings: Settings, ctx: ApiContext) -> None:
        self.settings = settings
        self.ctx = ctx
        sip_cfg = settings.sip
        self.media = MediaEngine(
            settings.media.host,
            settings.media.port_min,
            settings.media.port_max,
            jitter_ms=settings.media.jitter_ms,
        )
        tls = _tls_context(sip_cfg.tls_cert, sip_cfg.tls_key)
        if sip_cfg.tls_port and tls is None:
            raise ValueError("sip.tls_port needs sip.tls_cert and sip.tls_key")
        self.sip = SipEndpoint(
            EndpointConfig(
                host=sip_cfg.host,
                port=sip_cfg.port,
                tls_port=sip_cfg.tls_port,
                ssl_context=tls,
                ws_port=sip_cfg.ws_port,
                ws_ssl_context=tls,
                public_host=sip_cfg.public_host,
                protection=ProtectionSettings(
                    messages_per_second=sip_cfg.messages_per_second,
                    burst=sip_cfg.messages_per_second * 2,
                    exempt_sources=frozenset(sip_cfg.exempt_sources),
                    unauthenticated_per_second=sip_cfg.unauthenticated_per_second or None,
                    unauthenticated_burst=max(1.0, sip_cfg.unauthenticated_per_second * 5),
                    flood_drops_to_ban=sip_cfg.flood_ban_after,
                    ban_seconds=sip_cfg.ban_seconds,
                    max_calls=sip_cfg.max_calls,
                    max_calls_per_second=sip_cfg.max_cps,
                ),
            )
        )
        self.acd = Acd(ctx.db, ctx.bus)
        self.contacts = ContactStore(ctx.db, node=node_name(settings))
        self.recordings = RecordingStore(ctx.db, settings.recordings_dir.resolve(), self.contacts)
        self.journal = DialogJournal(ctx.db, self.contacts.node)
        self.sip.dialog_listeners.append(self.journal)
        self.retention = Retention(ctx.db, ctx.bus, settings.recordings_dir.resolve())
        tts_config = {**settings.ai.tts, "cache_dir": str(settings.data_dir / "tts-cache")}
        self.tts = create_tts(tts_config)
        self.asr: SpeechRecognizer | None = None
        if settings.ai.asr_enabled:
            self.asr = create_recognizer(settings.ai.asr)
        self.http = httpx.AsyncClient(follow_redirects=False)
        self.webhooks = WebhookRunner(self.http, self._webhook_secret)
        self._secrets: dict[str, bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.voice = VoiceService(
            db=ctx.db,
            bus=ctx.bus,
            sip=self.sip,
            media=self.media,
            acd=self.acd,
            flows=ctx.flows,
            tts=self.tts,
            asr=self.asr,
            webhooks=self.webhooks,
            contacts=self.contacts,
            recordings=self.recordings,
            box=ctx.auth.box,
            data_dir=settings.data_dir,
            default_tenant=sip_cfg.default_tenant,
            node=self.contacts.node,
            media_timeout=settings.media.inactivity_timeout,
            browser_lost_after=settings.media.browser_lost_after,
            url_policy=TargetPolicy(settings.webhook_allowed_networks),
        )
        self.sign_ins: AgentSignIns | None = None
        if settings.recovery.restore_agents:
            self.sign_ins = AgentSignIns(ctx.db, ctx.bus, self.voice)
        self.node_recovery = NodeRecovery(
            ctx.db,
            self.contacts.node,
            self.contacts,
            self.recordings,
            self.journal,
            lambda: [session.contact for session in self.voice.sessions.values()],
            checkpoint_seconds=settings.recovery.checkpoint_seconds,
            dead_after_seconds=settings.recovery.dead_after_seconds,
        )

    def _webhook_secret(self, tenant_id: str, name: str | None) -> bytes | None:
        """IVR webhooks are signed with the tenant's webhook secret (whatever the node names)."""
        return self._secrets.get(tenant_id)

    async def _load_secrets(self) -> None:
        async with self.ctx.db.session() as s:
            rows = (await s.execute(select(Tenant.id, Tenant.webhook_secret))).all()
        self._secrets = {tenant_id: secret.encode() for tenant_id, secret in rows}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self, *, warm_up: bool = True) -> None:
        """Recover, then listen. ``warm_up=False`` leaves the speech recognizer's workers to
        ``warm_up()`` (``cloudcc serve`` calls it once the node is ready: spawning them would
        otherwise compete for the CPU while the node starts)."""
        # Before this process opens any dialog: close what a crash of this node left behind.
        await self.node_recovery.recover_own()
        await self.journal.start()
        await self.contacts.start()
        if self.sign_ins is not None:  # agents back as they were, before calls come in
            await self.sign_ins.restore()
            await self.sign_ins.start()
        await self._load_secrets()
        self.ctx.bus.on(
            lambda e: e.type in ("tenant.created", "tenant.webhook_secret_rotated"),
            lambda e: self._spawn(self._load_secrets()),
        )
        await self.media.start()
        await self.sip.start()
        # Both parties of every call the crash cut off get their BYE now; then heartbeats.
        self.node_recovery.start(self.sip)
        self.ctx.trunks.live = self.voice.trunks.status
        await self.voice.trunks.start()  # registrations at the carriers that want them
        self.retention.start()
        if warm_up:
            self.warm_up()
        log.info("SIP listening on %s %s", self.sip.config.host, self.sip.ports)

    def warm_up(self) -> None:
        """Start the speech recognizer's workers in the background: calls are taken at once
        (after a crash, the first seconds count); a recognition asked meanwhile starts them."""
        if self.asr is not None:
            self._spawn(self._warm_up_asr())

    async def _warm_up_asr(self) -> None:
        if self.asr is None:
            return
        try:
            await self.asr.warm_up()
        except Exception:
            log.exception("speech recognition could not start; menus take keys only")
            self.asr = None
            self.voice.asr = None

    async def stop(self) -> None:
        self.ctx.trunks.live = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.retention.stop()
        await self.voice.stop()
        await self.node_recovery.stop()
        if self.sign_ins is not None:
            await self.sign_ins.stop()
        await self.sip.stop()
        await self.acd.close()
        await self.media.stop()
        await self.contacts.stop()
        await self.journal.stop()
        await self.http.aclose()
        if self.asr is not None:
            await self.asr.close()

    @property
    def sip_port(self) -> int:
        return int(self.sip.ports.get("udp", self.settings.sip.port))

    def describe(self) -> dict[str, Any]:
        return {
            "sip": dict(self.sip.ports),
            "media": [self.settings.media.port_min, self.settings.media.port_max],
        }
