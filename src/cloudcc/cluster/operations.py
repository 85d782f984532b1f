"""Call control across the nodes of a cluster: an API operation (hold, transfer, hang up, ...)
on a contact that another node holds is sent to that node over NATS request/reply
(``cloudcc.ops.<stream>.<node>``) and answered from there, errors included.

The node holding a live contact is its row's ``node`` in the store. The forwarded request
carries the principal the first node authenticated (NATS is the cluster's internal network):
the holding node checks what it may do to the contact as it would for its own API, and
writes the audit entry of a supervision (monitor, intercept, force release).

The same subject answers for a tenant's live contacts: the node asked for them asks every
node that holds one (by the store's rows, written as a contact starts), each for at most
``LIVE_TIMEOUT`` seconds; a node that does not answer in time is named, its contacts left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from sqlalchemy import distinct, select

from cloudcc import errors
from cloudcc.contacts import exceptions as contact_errors
from cloudcc.contacts.agents import SUPERVISION
from cloudcc.contacts.exceptions import ContactNotFound, OperationRefused
from cloudcc.contacts.voice import VoiceService
from cloudcc.errors import ServiceError
from cloudcc.store.tables import ContactRecord
from cloudcc.tenancy.model import Actor, Principal, PrincipalKind

log = logging.getLogger("cloudcc.cluster.operations")

#: The longest an operation may take on the holding node (VoiceService.operate waits 60 s).
TIMEOUT = 65.0
#: The longest a node's answer with its live contacts is waited for.
LIVE_TIMEOUT = 2.0


def _principal(p: Principal) -> dict[str, Any]:
    return {
        "tenant_id": p.tenant_id,
        "kind": p.kind.value,
        "id": p.id,
        "name": p.name,
        "permissions": sorted(p.permissions),
        "role": p.role,
        "agent_id": p.agent_id,
    }


def _error(name: str, detail: str) -> ServiceError:
    cls = getattr(contact_errors, name, None) or getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, ServiceError)):
        cls = OperationRefused
    return cls(detail)


class ContactOperations:
    def __init__(self, connection: Any, stream: str, node: str, voice: VoiceService) -> None:
        self.nc = connection
        self.prefix = f"cloudcc.ops.{stream}"
        self.node = node
        self.voice = voice
        self._sub: Any = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(f"{self.prefix}.{self.node}", cb=self._on_request)
        self.voice.remote_operation = self.forward
        self.voice.remote_live = self.live

    async def stop(self) -> None:
        self.voice.remote_operation = None
        self.voice.remote_live = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def forward(
        self, actor: Actor, contact_id: str, name: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Run the operation on the node that holds the contact."""
        async with self.voice.db.session() as s:
            node = await s.scalar(
                select(ContactRecord.node).where(
                    ContactRecord.id == contact_id,
                    ContactRecord.tenant_id == actor.tenant_id,
                    ContactRecord.state != "ended",
                )
            )
        if not node or node == self.node:
            raise ContactNotFound(f"no live contact {contact_id}")
        body = orjson.dumps(
            {
                "principal": _principal(actor.principal),
                "ip": actor.ip,
                "contact_id": contact_id,
                "name": name,
                "params": params,
            }
        )
        try:
            msg = await self.nc.request(f"{self.prefix}.{node}", body, timeout=TIMEOUT)
        except Exception as exc:  # no responders (its node died), timeout, NATS away
            raise ContactNotFound(
                f"contact {contact_id} is held by node {node}, which does not answer ({exc})"
            ) from None
        answer = orjson.loads(msg.data)
        if "error" in answer:
            raise _error(answer["error"], answer["detail"])
        result: dict[str, Any] = answer["ok"]
        return result

    async def live(self, tenant_id: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The tenant's live contacts on the other nodes, and the nodes that did not answer."""
        async with self.voice.db.session() as s:
            holding = set(
                await s.scalars(
                    select(distinct(ContactRecord.node)).where(
                        ContactRecord.tenant_id == tenant_id, ContactRecord.state != "ended"
                    )
                )
            )
        nodes = sorted(n for n in holding if n and n != self.node)
        body = orjson.dumps({"live": tenant_id})
        answers = await asyncio.gather(
            *(self.nc.request(f"{self.prefix}.{n}", body, timeout=LIVE_TIMEOUT) for n in nodes),
            return_exceptions=True,
        )
        contacts: list[dict[str, Any]] = []
        silent: list[str] = []
        for node, answer in zip(nodes, answers, strict=True):
            try:
                if isinstance(answer, BaseException):  # no responders (it died), timeout, ...
                    raise answer
                contacts.extend(orjson.loads(answer.data)["contacts"])
            except Exception as exc:
                log.warning("node %s did not list its live contacts: %r", node, exc)
                silent.append(node)
        return contacts, silent

    async def _on_request(self, msg: Any) -> None:
        try:
            request = orjson.loads(msg.data)
            if "live" in request:
                live = self.voice.live(str(request["live"]))
                await msg.respond(orjson.dumps({"contacts": live}, default=str))
                return
            p = request["principal"]
            principal = Principal(
                tenant_id=p["tenant_id"],
                kind=PrincipalKind(p["kind"]),
                id=p["id"],
                name=p["name"],
                permissions=frozenset(p["permissions"]),
                role=p["role"],
                agent_id=p["agent_id"],
            )
            actor = Actor(principal, ip=request.get("ip"))
            contact_id, name, params = request["contact_id"], request["name"], request["params"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.error("unreadable contact operation: %s", exc)
            return
        try:
            if name in SUPERVISION:
                result = await self.voice.agents.supervise(
                    actor, contact_id, name, params, forwarded=True
                )
            else:
                result = await self.voice.operate(actor, contact_id, name, params, forwarded=True)
            answer: dict[str, Any] = {"ok": result}
        except ServiceError as exc:
            answer = {"error": type(exc).__name__, "detail": exc.detail}
        except Exception as exc:
            log.exception("contact %s: forwarded %s failed", contact_id, name)
            answer = {"error": "OperationRefused", "detail": f"{type(exc).__name__}: {exc}"}
        await msg.respond(orjson.dumps(answer, default=str))
