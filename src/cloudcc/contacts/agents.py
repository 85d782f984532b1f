"""Agent sessions on the service side: sign-in, sign-out, state changes and supervisor
force, run through the tenant's routing engine.

The engine refuses an impossible change with a routing error; here that error becomes a
problem the caller can act on (409 for a state that does not allow the change, 422 for an
unknown reason code), saying what to do instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cloudcc.contacts.devices import check_device, monitoring_device, no_device, seat_of
from cloudcc.contacts.exceptions import AgentStateConflict, UnknownReason
from cloudcc.contacts.figures import StateLog
from cloudcc.contacts.presence import ClientPresence
from cloudcc.errors import Invalid, NotFound, ServiceError
from cloudcc.routing.exceptions import (
    AgentHasWork,
    IllegalTransition,
    InvalidConfig,
    RoutingError,
    RoutingUnavailable,
    UnknownAgent,
    UnknownReasonCode,
)
from cloudcc.routing.model import REASON_UNREACHABLE, ForceAction, Presence, SignOutReason
from cloudcc.store.codes import DispositionCodeRow
from cloudcc.tenancy import audit
from cloudcc.tenancy.model import Actor

if TYPE_CHECKING:
    from cloudcc.contacts.voice import VoiceService

log = logging.getLogger("cloudcc.agents")

_OFFLINE = Presence.OFFLINE.value

#: Supervision that the audit log records (actor, contact, agent, action): ``supervise``.
SUPERVISION = frozenset({"monitor", "intercept", "force_release"})


def _explain(op: str, agent_id: str, exc: IllegalTransition) -> str:
    """What the caller should do instead of an illegal agent state change."""
    source = str(exc.source)
    login = f"POST /agents/{agent_id}/login"
    if op == "login":
        return (
            f"the agent is already signed in ({source}); change its state with "
            f"PUT /agents/{agent_id}/state, sign out first with POST /agents/{agent_id}/logout, "
            'or sign in with "replace": true to take the session over from the other client'
        )
    if op == "logout":
        return "the agent is not signed in; there is nothing to sign out"
    if source == _OFFLINE:
        what = "forcing its state" if op.startswith("force") else "changing its state"
        return f"the agent is not signed in; {what} needs it signed in first ({login})"
    if op == "state" and source == str(exc.target):
        return f"the agent is already {source}; nothing changed"
    return f"the agent cannot go from {source} to {exc.target}"


@contextmanager
def refusals(op: str, agent_id: str, reasons: Any = None) -> Iterator[None]:
    """Translate the routing engine's refusals of an agent operation into service errors."""
    try:
        yield
    except UnknownReasonCode as exc:
        known = ", ".join(sorted(reasons)) if reasons else ""
        raise UnknownReason(
            f"unknown not-ready reason code {exc.code!r}: use one of {known}, "
            "or define it first with POST /reason-codes"
        ) from None
    except AgentHasWork as exc:
        raise AgentStateConflict(
            f"the agent still holds contacts {list(exc.contact_ids)}: finish them (hang up, "
            "wrap up) first, or have a supervisor force the sign-out "
            f'(POST /agents/{agent_id}/force {{"action": "sign_out"}})'
        ) from None
    except IllegalTransition as exc:
        raise AgentStateConflict(_explain(op, agent_id, exc)) from None
    except UnknownAgent:
        raise NotFound(f"agent {agent_id} is not routable (disabled or deleted)") from None
    except InvalidConfig as exc:
        raise Invalid(exc.detail) from None
    except RoutingUnavailable:
        raise  # not the caller's to fix: a 503 (api/problems.py)
    except RoutingError as exc:  # any other refusal is still the caller's to fix
        raise AgentStateConflict(str(exc)) from None


class AgentSessions:
    """Sign-in, state and sign-out of a node's agents (each tenant's engine decides)."""

    def __init__(self, voice: VoiceService) -> None:
        self.voice = voice
        self.acd = voice.acd
        self._tasks: set[asyncio.Task[None]] = set()
        self.clients = ClientPresence()
        self.state_log = StateLog()  # the agents' figures of the day (time per state)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # Once, on the node whose registrar saw it (on a cluster every node gets the event).
        voice.bus.on(
            lambda e: e.type == "agent.phone_unregistered", self._on_phone_lost, origin_only=True
        )
        voice.bus.on(lambda e: e.type == "agent.state_changed", self._on_state)

    # --- signing in with a reachable device ---------------------------------------------

    async def sign_in(
        self,
        actor: Actor,
        agent_id: str,
        device: str | None,
        ready: bool,
        *,
        replace: bool = False,
        heartbeat_seconds: float | None = None,
    ) -> None:
        """Sign an agent in with a phone the node can reach and may ring (contacts/devices.py):
        its registered softphone or phone, the device its admin assigned it, an address among
        the tenant's sip_destinations, or (with agents:device) any SIP URI.

        ``replace`` takes over a session held by another client (signed out with reason
        REPLACED, which its event stream shows); ``heartbeat_seconds`` supervises the new
        session: without a heartbeat, poll or open event stream for that long, the agent is
        signed out (DISCONNECTED)."""
        tenant_id = actor.tenant_id
        seat = await seat_of(self.voice, tenant_id, agent_id)
        if device is not None:
            await check_device(self.voice, actor, seat, device)
        elif self.voice.registered_device(tenant_id, agent_id) is None and (
            self.voice.shared_registration is None  # on a cluster: a phone of another node's
            or await self.voice.shared_registration(tenant_id, agent_id) is None
        ):
            if seat.assigned is None:
                raise no_device(seat)
            device = seat.assigned
        key = (tenant_id, agent_id)
        if replace and await self._signed_in(tenant_id, agent_id):
            self.clients.stop(key)
            await self.logout(tenant_id, agent_id, SignOutReason.REPLACED, by=actor.principal.name)
        await self.voice.agent_login(tenant_id, agent_id, device, ready)
        if heartbeat_seconds is None:
            self.clients.stop(key)
        else:
            self.clients.start(key, heartbeat_seconds, self.voice.clock())
            self._watch()

    # --- client sessions: heartbeats, polls and event streams -------------------------------

    async def heartbeat(self, tenant_id: str, agent_id: str) -> None:
        """The agent's client is still there; refused once the agent has been signed out."""
        if not await self._signed_in(tenant_id, agent_id):
            raise AgentStateConflict(
                f"the agent is not signed in (any more); sign in again with "
                f"POST /agents/{agent_id}/login"
            )
        self.clients.seen((tenant_id, agent_id), self.voice.clock())

    def heartbeat_seconds(self, tenant_id: str, agent_id: str) -> float | None:
        return self.clients.timeout((tenant_id, agent_id))

    def client_seen(self, tenant_id: str, agent_id: str) -> None:
        """A poll for events by the agent's own client."""
        self.clients.seen((tenant_id, agent_id), self.voice.clock())

    def stream_opened(self, tenant_id: str, agent_id: str) -> None:
        self.clients.opened((tenant_id, agent_id), self.voice.clock())

    def stream_closed(self, tenant_id: str, agent_id: str) -> None:
        self.clients.closed((tenant_id, agent_id), self.voice.clock())

    def _watch(self) -> None:
        """Arm the one timer at the earliest deadline of the supervised sessions."""
        deadline = self.clients.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer_at <= deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        self._timer_at = deadline
        self._timer = loop.call_later(max(0.0, deadline - self.voice.clock()), self._spawn_check)

    def _spawn_check(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._sign_out_silent())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sign_out_silent(self) -> None:
        for tenant_id, agent_id in self.clients.expired(self.voice.clock()):
            try:
                await self.logout(tenant_id, agent_id, SignOutReason.DISCONNECTED)
            except ServiceError as exc:  # already signed out meanwhile
                log.info("agent %s of tenant %s: %s", agent_id, tenant_id, exc.detail)
                continue
            log.info(
                "agent %s of tenant %s signed out: no heartbeat from its client",
                agent_id,
                tenant_id,
            )
        self._watch()

    def _on_state(self, event: Any) -> None:
        """A signed-out agent's session is no longer supervised, however it was signed out.
        Every change is noted for the agent's figures of the day."""
        at, state = event.data.get("at"), event.data.get("state")
        if isinstance(at, int | float) and isinstance(state, str):
            self.state_log.note(event.tenant_id, str(event.data.get("agent_id")), at, state)
        if state == _OFFLINE:
            self.clients.stop((event.tenant_id, str(event.data.get("agent_id"))))

    async def _signed_in(self, tenant_id: str, agent_id: str) -> bool:
        return bool(await self.acd.query(tenant_id, "signed_in", agent_id))

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_phone_lost(self, event: Any) -> None:
        task = asyncio.get_running_loop().create_task(
            self.device_lost(event.tenant_id, str(event.data.get("agent_id")))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def device_lost(self, tenant_id: str, agent_id: str) -> None:
        """The agent's registered phone is gone (unregistered, expired, its connection
        closed): a signed-in agent that rings it becomes not ready, reason unreachable."""
        if self.voice.static_device(tenant_id, agent_id) is not None:
            return  # it rings a phone given at sign-in, not the registration
        if self.acd.cluster is None and self.acd.loaded(tenant_id) is None:
            return  # nothing loaded: nobody signed in
        if not await self._signed_in(tenant_id, agent_id):
            return
        try:
            await self.acd.call(
                tenant_id,
                "agent_state_changed",
                agent_id,
                Presence.NOT_READY,
                reason=REASON_UNREACHABLE,
            )
        except RoutingError as exc:
            log.info("agent %s of tenant %s lost its phone: %s", agent_id, tenant_id, exc)
            return
        log.info("agent %s of tenant %s lost its phone: not ready", agent_id, tenant_id)

    async def _reasons(self, tenant_id: str) -> Any:
        return await self.acd.query(tenant_id, "reason_codes")

    async def login(
        self, tenant_id: str, agent_id: str, presence: Presence, reason: str | None
    ) -> None:
        reasons = await self._reasons(tenant_id)
        with refusals("login", agent_id, reasons):
            await self.acd.call(
                tenant_id, "agent_login", agent_id, presence=presence, reason=reason
            )

    async def logout(
        self,
        tenant_id: str,
        agent_id: str,
        reason: SignOutReason = SignOutReason.SELF,
        by: str | None = None,
    ) -> None:
        with refusals("logout", agent_id):
            await self.acd.call(tenant_id, "agent_logout", agent_id, reason=reason, by=by)

    async def presence(
        self, tenant_id: str, agent_id: str, ready: bool, reason: str | None
    ) -> None:
        presence = Presence.READY if ready else Presence.NOT_READY
        if (
            ready
            and await self.voice.agent_device(tenant_id, agent_id) is None
            and await self._signed_in(tenant_id, agent_id)
        ):
            raise AgentStateConflict(
                "the agent has no reachable phone: register the softphone or its phone "
                "again, then set ready"
            )
        reasons = await self._reasons(tenant_id)
        with refusals("state", agent_id, reasons):
            await self.acd.call(
                tenant_id,
                "agent_state_changed",
                agent_id,
                presence,
                reason=None if ready else (reason or "busy"),
            )

    async def force(
        self, tenant_id: str, agent_id: str, action: str, by: str, seconds: float | None = None
    ) -> None:
        with refusals(f"force_{action}", agent_id):
            await self.acd.call(
                tenant_id, "force_agent", agent_id, ForceAction(action), by, seconds=seconds
            )

    # --- supervision, audited -------------------------------------------------------------

    async def force_by(
        self, actor: Actor, agent_id: str, action: str, seconds: float | None = None
    ) -> None:
        """A supervisor forces an agent's state; the audit log says who, whom and what."""
        await self.force(actor.tenant_id, agent_id, action, actor.principal.name, seconds)
        details: dict[str, Any] = {"action": action}
        if seconds is not None:
            details["seconds"] = seconds
        await self.audit(actor, f"force_{action}", "agent", agent_id, details)

    async def monitoring_device(self, actor: Actor, device: str | None) -> str:
        """The supervisor's phone to monitor with (contacts/devices.py): 403 or 422 with what
        to do when the node may not, or cannot, ring one."""
        return await monitoring_device(self.voice, actor, device)

    async def supervise(
        self,
        actor: Actor,
        contact_id: str,
        name: str,
        params: dict[str, Any],
        *,
        forwarded: bool = False,
    ) -> dict[str, Any]:
        """Listen, whisper, barge, intercept or force release a contact, audited with the
        agent it involved; on a cluster, by the node holding the contact (``forwarded``: it
        comes from another node, run and audit it here)."""
        voice = self.voice
        remote = voice.remote_operation
        if contact_id not in voice.sessions and remote is not None and not forwarded:
            # Held by another node: that node checks, runs and audits it (once).
            return await remote(actor, contact_id, name, params)
        agent_id = voice.session_for(actor, contact_id).contact.agent_id
        result: dict[str, Any] = await voice.operate(
            actor, contact_id, name, params, forwarded=forwarded
        )
        action = str(params["mode"]) if name == "monitor" else name
        details: dict[str, Any] = {"agent_id": agent_id}
        if name == "monitor":
            details["device"] = params.get("device")
        await self.audit(actor, action, "contact", contact_id, details)
        return result

    async def audit(
        self, actor: Actor, action: str, kind: str, target: str, details: dict[str, Any]
    ) -> None:
        async with self.voice.db.transaction() as s:
            audit.record(s, actor, action, kind, target, details)

    async def check_disposition(self, tenant_id: str, code: str | None) -> None:
        """A wrap-up code must be one of the tenant's disposition codes, once it has any."""
        if code is None:
            return
        async with self.voice.db.session() as s:
            codes = set(
                await s.scalars(
                    select(DispositionCodeRow.code).where(DispositionCodeRow.tenant_id == tenant_id)
                )
            )
        if codes and code not in codes:
            raise UnknownReason(
                f"unknown disposition code {code!r}: use one of {', '.join(sorted(codes))}, "
                "or define it first with POST /disposition-codes"
            )
