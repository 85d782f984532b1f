"""What the browser softphone needs to register: the node's SIP-over-WebSocket address, the
tenant's SIP domain and the agent's extension (the SIP password is the agent's own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from cloudcc.api.crud import ERRORS
from cloudcc.api.security import Authenticated, Ctx
from cloudcc.errors import NotFound
from cloudcc.store.tables import Agent, Tenant

router = APIRouter(tags=["calls"], responses=ERRORS)


class WebphoneOut(BaseModel):
    ws_url: str | None
    sip_domain: str
    extension: str


@router.get("/webphone", response_model=WebphoneOut, operation_id="webphone")
async def webphone(actor: Authenticated, ctx: Ctx, request: Request) -> Any:
    """The signed-in agent's softphone settings; ``ws_url`` is null when the node has no SIP
    over WebSocket (``sip.ws_port``), and the page then offers no browser softphone."""
    agent_id = actor.principal.agent_id
    if not agent_id:
        raise NotFound("you are not an agent: only an agent has a softphone")
    async with ctx.db.session() as s:
        extension = await s.scalar(
            select(Agent.extension).where(Agent.tenant_id == actor.tenant_id, Agent.id == agent_id)
        )
        domain = await s.scalar(select(Tenant.sip_domain).where(Tenant.id == actor.tenant_id))
    if extension is None or domain is None:
        raise NotFound("your agent is gone")
    sip = ctx.settings.sip
    ws_url = None
    if sip.ws_port is not None:
        # The host the page was loaded from: the node answers SIP there too (RFC 7118 §5).
        scheme = "wss" if sip.tls_cert is not None else "ws"
        ws_url = f"{scheme}://{request.url.hostname}:{sip.ws_port}"
    return {"ws_url": ws_url, "sip_domain": domain, "extension": extension}
