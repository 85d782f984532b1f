"""The first thing a node does when it starts after a crash: send the BYEs of the dialogs its
previous process left, before the rest of the node (API, IVR, media...) is even imported.

Phones left in a dead call are told within about a second of the start instead of once the
whole node is up. Only the store and the SIP stack are loaded here; dialogs whose BYE gets no
final response in ``wait`` seconds stay in the journal for the node's own recovery to retry.
"""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from cloudcc.config import Settings

if TYPE_CHECKING:
    from cloudcc.sip.call import IncomingCall, RequestInfo

log = logging.getLogger("cloudcc.recovery")


def node_name(settings: Settings) -> str:
    """A stable name for this node: contacts it anchors are recovered by it after a crash."""
    if settings.node_name:
        return settings.node_name
    path = settings.data_dir / "node-id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    return path.read_text().strip()


async def release_left_dialogs(settings: Settings, wait: float = 2.0) -> int:
    """BYE every dialog this node left in the journal; returns how many were finished.

    Never raises: on any trouble (no schema yet, the SIP port taken) the node's own
    recovery does the work a moment later."""
    if not settings.sip.enabled:
        return 0
    from sqlalchemy import inspect

    from cloudcc.recovery.journal import left_dialogs, release_dialogs
    from cloudcc.sip.endpoint import EndpointConfig, SipEndpoint
    from cloudcc.store.db import Database

    db = Database(settings.resolved_database_url)
    database = db.url.database
    if db.is_sqlite and not (database and Path(database).exists()):  # noqa: ASYNC240 - before any loop work
        await db.close()
        return 0  # a first start: nothing was left
    try:
        async with db.engine.connect() as conn:
            exists = await conn.run_sync(lambda c: inspect(c).has_table("sip_dialogs"))
        if not exists:
            return 0
        rows = await left_dialogs(db, node_name(settings))
        if not rows:
            return 0
        sip = SipEndpoint(
            EndpointConfig(
                host=settings.sip.host,
                port=settings.sip.port,
                public_host=settings.sip.public_host,
            ),
            # A call arriving meanwhile is told to come back in a second (§21.5.4).
            trunk_check=_anyone,
            on_call=_starting_up,
        )
        await sip.start()
        try:
            finished, _ = await release_dialogs(db, sip, rows, wait=wait)
        finally:
            await sip.stop()
        return finished
    except Exception:
        log.warning("early release of the dialogs left by a crash failed", exc_info=True)
        return 0
    finally:
        await db.close()


async def _anyone(source: tuple[str, int], info: RequestInfo) -> object:
    return "starting-up"


async def _starting_up(call: IncomingCall) -> None:
    await call.reject(503, "Starting Up", [("Retry-After", "1")])
