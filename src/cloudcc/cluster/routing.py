"""Routing work between the nodes of a cluster: the node holding a tenant's lease
(cluster/lease.py) runs its engine; the others send it their work over NATS request/reply and
get back the engine's answer; decisions about a contact go to the node that holds the call.

Subjects (core NATS, outside the event stream's): ``cloudcc.acd.<stream>.t.<tenant>`` reaches
the owner of a tenant (only the owner subscribes), ``cloudcc.acd.<stream>.n.<node>`` a node
(decisions about its contacts), ``cloudcc.acd.<stream>.moved`` tells every node that a
tenant has a new owner, so that each hands it the routing state of its live calls.

The wire format is pickle, read back with a reader that accepts only the routing engine's
own types (as routing/snapshot.py does): NATS is the cluster's internal network, and still a
message can build nothing but routing values.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import pickle
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cloudcc.cluster.lease import RoutingLeases
from cloudcc.routing import exceptions as routing_exceptions
from cloudcc.routing.exceptions import RoutingError, RoutingUnavailable

log = logging.getLogger("cloudcc.cluster.routing")

_ALLOWED_MODULES = ("cloudcc.routing.",)
_ALLOWED_BUILTINS = frozenset({"frozenset", "set", "tuple", "list", "dict", "getattr"})


class _Reader(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(_ALLOWED_MODULES) or (
            module == "builtins" and name in _ALLOWED_BUILTINS
        ):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} has no place in a routing message")


def encode(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> Any:
    return _Reader(io.BytesIO(data)).load()


def encode_error(exc: Exception) -> bytes:
    """A routing error as (name, message, attributes): its class is rebuilt on the other side."""
    name = type(exc).__name__
    if not isinstance(exc, RoutingError) or getattr(routing_exceptions, name, None) is None:
        name, attrs = "RoutingError", {}
    else:
        attrs = {k: v for k, v in vars(exc).items() if isinstance(v, str | int | float | tuple)}
    return encode(("error", name, str(exc), attrs))


def decode_error(name: str, message: str, attrs: dict[str, Any]) -> Exception:
    cls = getattr(routing_exceptions, name, None)
    if not (isinstance(cls, type) and issubclass(cls, RoutingError)):
        cls = RoutingError
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    for key, value in attrs.items():
        setattr(exc, key, value)
    return exc


#: A request: ("call", method, args, kw) | ("query", name, args) | ("ensure_agent", agent_id)
Request = tuple[Any, ...]
Handler = Callable[[str, Request, str], Awaitable[Any]]


class ClusterRouting:
    """Sends a tenant's routing work to the node that runs it, or runs it here."""

    def __init__(
        self,
        connection: Any,
        stream: str,
        node: str,
        leases: RoutingLeases,
        *,
        request_timeout: float = 2.0,
        give_up_after: float = 10.0,
    ) -> None:
        self.nc = connection
        self.prefix = f"cloudcc.acd.{stream}"
        self.node = node
        self.leases = leases
        self.request_timeout = request_timeout
        self.give_up_after = give_up_after
        #: Runs a request here (the Acd): (tenant, request, origin node) -> result.
        self.handle: Handler | None = None
        #: Called with (tenant, decision) for decisions about this node's contacts.
        self.deliver: Callable[[str, Any], None] | None = None
        #: Awaited with a tenant once the tenant has a new owner (re-send live calls' state).
        self.on_moved: Callable[[str], Awaitable[None]] | None = None
        #: Awaited with a tenant before this node serves it (load the engine).
        self.on_gained: Callable[[str], Awaitable[None]] | None = None
        #: Called with a tenant this node no longer runs.
        self.on_lost: Callable[[str], None] | None = None
        self._serving: dict[str, Any] = {}  # tenant -> subscription
        self._subs: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: When this node last took over a tenant (seconds, time.time()).
        self.took_over_at: dict[str, float] = {}
        leases.on_gained = self._gained
        leases.on_lost = self._lost

    async def start(self) -> None:
        self._subs.append(
            await self.nc.subscribe(f"{self.prefix}.n.{self.node}", cb=self._on_decision)
        )
        self._subs.append(await self.nc.subscribe(f"{self.prefix}.moved", cb=self._on_moved))
        await self.leases.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sub in [*self._subs, *self._serving.values()]:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        self._serving.clear()
        await self.leases.stop()

    def owns(self, tenant_id: str) -> bool:
        return self.leases.owns(tenant_id)

    # --- the requester's side ---------------------------------------------------------------

    async def request(self, tenant_id: str, request: Request) -> Any:
        """Run ``request`` where the tenant's routing runs: on its owner, or here once this
        node took the lease (nobody held it). Raises what the engine raised."""
        self.leases.want(tenant_id)
        deadline = time.monotonic() + self.give_up_after
        body = b""
        while True:
            if self.owns(tenant_id):
                assert self.handle is not None
                return await self.handle(tenant_id, request, self.node)
            body = body or encode((self.node, request))
            try:
                msg = await self.nc.request(
                    f"{self.prefix}.t.{tenant_id}", body, timeout=self.request_timeout
                )
            except Exception as exc:  # no responders, a timeout, NATS away
                if await self.leases.try_acquire(tenant_id):
                    continue  # nobody ran it: this node does now
                if time.monotonic() > deadline:
                    raise RoutingUnavailable(
                        f"the routing of tenant {tenant_id} is unreachable: {exc}"
                    ) from None
                await asyncio.sleep(0.1)
                continue
            answer = decode(msg.data)
            if answer[0] == "ok":
                return answer[1]
            if answer[0] == "moved":  # the lease went elsewhere meanwhile: ask again
                await asyncio.sleep(0.05)
                continue
            raise decode_error(*answer[1:])

    def send_decision(self, node: str, tenant_id: str, decision: Any) -> None:
        """A decision about a contact held by ``node``."""
        self._spawn(self._publish(f"{self.prefix}.n.{node}", encode((tenant_id, decision))))

    # --- the owner's side -------------------------------------------------------------------

    async def _gained(self, tenant_id: str) -> None:
        if self.on_gained is not None:
            await self.on_gained(tenant_id)
        self._serving[tenant_id] = await self.nc.subscribe(
            f"{self.prefix}.t.{tenant_id}", cb=self._on_request
        )
        self.took_over_at[tenant_id] = time.time()
        await self.nc.publish(f"{self.prefix}.moved", encode((tenant_id, self.node)))

    def _lost(self, tenant_id: str) -> None:
        sub = self._serving.pop(tenant_id, None)
        if sub is not None:
            self._spawn(sub.unsubscribe())
        if self.on_lost is not None:
            self.on_lost(tenant_id)

    async def _on_request(self, msg: Any) -> None:
        tenant_id = msg.subject.rsplit(".t.", 1)[1]
        try:
            origin, request = decode(msg.data)
        except Exception as exc:
            log.error("unreadable routing request on %s: %s", msg.subject, exc)
            return
        if not self.owns(tenant_id):
            await msg.respond(encode(("moved",)))
            return
        assert self.handle is not None
        try:
            result = await self.handle(tenant_id, request, str(origin))
        except RoutingError as exc:
            await msg.respond(encode_error(exc))
            return
        except Exception as exc:
            log.exception("routing request %r of tenant %s failed", request[:2], tenant_id)
            await msg.respond(encode_error(RoutingError(f"{type(exc).__name__}: {exc}")))
            return
        await msg.respond(encode(("ok", result)))

    # --- every node -------------------------------------------------------------------------

    async def _on_decision(self, msg: Any) -> None:
        try:
            tenant_id, decision = decode(msg.data)
        except Exception as exc:
            log.error("unreadable routing decision: %s", exc)
            return
        if self.deliver is not None:
            self.deliver(tenant_id, decision)

    async def _on_moved(self, msg: Any) -> None:
        try:
            tenant_id, node = decode(msg.data)
        except Exception:
            return
        log.info("the routing of tenant %s now runs on node %s", tenant_id, node)
        if self.on_moved is not None:
            self._spawn(self.on_moved(tenant_id))

    async def _publish(self, subject: str, body: bytes) -> None:
        try:
            await self.nc.publish(subject, body)
        except Exception as exc:
            log.warning("routing message to %s not sent: %s", subject, exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
