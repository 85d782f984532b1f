"""Routing leases on the local PostgreSQL (cluster/lease.py), and the routing messages'
wire format (cluster/routing.py)."""

from __future__ import annotations

import asyncio
import pickle
import time
import uuid

import pytest

from cloudcc.cluster.lease import RoutingLeases, asyncpg_dsn
from cloudcc.cluster.routing import decode, decode_error, encode, encode_error
from cloudcc.routing.events import Offer
from cloudcc.routing.exceptions import IllegalTransition, NotOffered
from cloudcc.routing.model import Channel, Presence
from tests.conftest import PG_ADMIN_DSN, require_postgres


@pytest.fixture
def dsn() -> str:
    require_postgres()
    return PG_ADMIN_DSN


@pytest.mark.postgres
async def test_one_holder_at_a_time_and_a_standby_takes_over_when_the_holder_dies(
    dsn: str,
) -> None:
    tenant = uuid.uuid4().hex
    a, b = RoutingLeases(dsn, "a", retry_interval=0.1), RoutingLeases(dsn, "b", retry_interval=0.1)
    gained: list[tuple[str, str]] = []
    lost: list[str] = []

    async def on_gained_b(tenant_id: str) -> None:
        gained.append(("b", tenant_id))

    b.on_gained = on_gained_b
    a.on_lost = lost.append
    await a.start()
    await b.start()
    try:
        assert await a.try_acquire(tenant)
        assert not await b.try_acquire(tenant)  # b now waits for it
        await asyncio.sleep(0.3)
        assert not b.owns(tenant) and a.owns(tenant)
        # The holder's session ends (as when its process is killed): b holds it at once.
        a._conn.terminate()
        started = time.monotonic()
        while not b.owns(tenant) and time.monotonic() - started < 5:
            await asyncio.sleep(0.02)
        assert b.owns(tenant) and gained == [("b", tenant)]
        assert time.monotonic() - started < 1.0
        # a notices its connection is gone and gives the tenant up.
        await asyncio.sleep(0.3)
        assert lost == [tenant] and not a.owns(tenant)
        # A clean release hands it over too.
        await b.release(tenant)
        assert await a.try_acquire(tenant)
    finally:
        await a.stop()
        await b.stop()


def test_routing_messages_carry_routing_values_and_nothing_else() -> None:
    offer = Offer("c1", "q1", Channel.VOICE, ("a1", "a2"), 20.0, 120.0)
    assert decode(encode(("n1", ("call", "agent_login", ("a1",), {"presence": Presence.READY}))))
    assert decode(encode(("t", offer))) == ("t", offer)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError):
        decode(pickle.dumps(Evil()))


def test_routing_errors_cross_with_their_class_and_ids() -> None:
    for exc in (IllegalTransition("agent a1", "offline", "ready", "x"), NotOffered("c1", "a1")):
        tag, *rest = decode(encode_error(exc))
        again = decode_error(*rest)
        assert tag == "error" and type(again) is type(exc) and str(again) == str(exc)
        assert vars(again) == vars(exc)


def test_only_postgresql_urls_have_leases() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://u@h/db") == "postgresql://u@h/db"
    assert asyncpg_dsn("sqlite+aiosqlite:///x.db") is None
