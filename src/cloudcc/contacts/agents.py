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

from cloudcc.contacts.exceptions import AgentStateConflict, NoDevice, UnknownReason
from cloudcc.errors import Invalid, NotFound, PermissionDenied
from cloudcc.routing.exceptions import (
    AgentHasWork,
    IllegalTransition,
    InvalidConfig,
    RoutingError,
    UnknownAgent,
    UnknownReasonCode,
)
from cloudcc.routing.model import REASON_UNREACHABLE, ForceAction, Presence, SignOutReason
from cloudcc.store.codes import DispositionCodeRow
from cloudcc.store.tables import Agent
from cloudcc.tenancy.model import Actor, Permission

if TYPE_CHECKING:
    from cloudcc.contacts.voice import VoiceService

log = logging.getLogger("cloudcc.agents")

_OFFLINE = Presence.OFFLINE.value


def _explain(op: str, agent_id: str, exc: IllegalTransition) -> str:
    """What the caller should do instead of an illegal agent state change."""
    source = str(exc.source)
    login = f"POST /agents/{agent_id}/login"
    if op == "login":
        return (
            f"the agent is already signed in ({source}); change its state with "
            f"PUT /agents/{agent_id}/state, or sign out first with POST /agents/{agent_id}/logout"
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
    except RoutingError as exc:  # any other refusal is still the caller's to fix
        raise AgentStateConflict(str(exc)) from None


class AgentSessions:
    """Sign-in, state and sign-out of a node's agents (each tenant's engine decides)."""

    def __init__(self, voice: VoiceService) -> None:
        self.voice = voice
        self.acd = voice.acd
        self._tasks: set[asyncio.Task[None]] = set()
        voice.bus.on(lambda e: e.type == "agent.phone_unregistered", self._on_phone_lost)

    # --- signing in with a reachable device ---------------------------------------------

    async def sign_in(self, actor: Actor, agent_id: str, device: str | None, ready: bool) -> None:
        """Sign an agent in with a phone the node can reach: its registered softphone or
        phone, the device its admin assigned it, or (with agents:device) any SIP URI."""
        tenant_id = actor.tenant_id
        async with self.voice.db.session() as s:
            found = (
                await s.execute(
                    select(Agent.extension, Agent.device).where(
                        Agent.tenant_id == tenant_id, Agent.id == agent_id
                    )
                )
            ).first()
        if found is None:
            raise NotFound(f"agent {agent_id} not found")
        extension, assigned = found
        if device is not None and device != assigned:
            if not actor.principal.can(Permission.AGENTS_DEVICE):
                raise PermissionDenied(
                    "signing in with a phone URI of your choice needs agents:device: sign in "
                    f"with the softphone or a phone registered as extension {extension}, or "
                    "ask an admin to assign the device to the agent"
                )
        elif device is None and self.voice.registered_device(tenant_id, agent_id) is None:
            if assigned is None:
                raise NoDevice(
                    f"no reachable phone for agent {extension}: register the browser "
                    f"softphone or a SIP phone as extension {extension} first, or ask an "
                    "admin to assign the agent a device"
                )
            device = assigned
        await self.voice.agent_login(tenant_id, agent_id, device, ready)

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
        engine = self.acd.loaded(tenant_id)
        if engine is None or agent_id not in set(engine.agent_ids()):
            return
        if engine.agent_stats(agent_id, self.voice.clock()).state.value == _OFFLINE:
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
        return (await self.acd.engine(tenant_id)).reason_codes

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
        if ready and await self.voice.agent_device(tenant_id, agent_id) is None:
            engine = await self.acd.engine(tenant_id)
            if agent_id in set(engine.agent_ids()) and (
                engine.agent_stats(agent_id, self.voice.clock()).state.value != _OFFLINE
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
