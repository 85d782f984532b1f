"""The journal of a node's SIP dialogs (RFC 3261 §12): one row per dialog it holds, so that
after a crash the restarted node (or a replacement) can end each call with a BYE (§15.1.1).

The endpoint tells the journal of every dialog opened and closed; rows are written by one
task in small batches (a dialog that opens and closes within a batch is never written).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloudcc.recovery.tables import SipDialogRecord
from cloudcc.sip.call import Call
from cloudcc.sip.dialog import Dialog
from cloudcc.sip.endpoint import SipEndpoint
from cloudcc.store.db import Database

log = logging.getLogger("cloudcc.recovery.journal")

#: CSeq numbers skipped when a restored dialog sends its BYE: in-dialog requests sent after
#: the last write (re-INVITEs, INFOs) used some; §12.2.1.1 only asks for an increase.
SEQ_GAP = 1000
#: How long a restored BYE may wait for its final response (Timer F is 32 s).
RELEASE_TIMEOUT = 40.0


def dialog_id(node: str, dialog: Dialog) -> str:
    call_id, local, remote = dialog.key
    return hashlib.sha256(f"{node}\0{call_id}\0{local}\0{remote}".encode()).hexdigest()


class DialogJournal:
    """Keeps ``sip_dialogs`` in step with the dialogs of one endpoint."""

    def __init__(self, db: Database, node: str, batch_interval: float = 0.05) -> None:
        self.db = db
        self.node = node
        self.batch_interval = batch_interval
        self._upserts: dict[str, dict[str, Any]] = {}
        self._deletes: set[str] = set()
        self._written: set[str] = set()
        self._live: dict[str, tuple[Call, Dialog, int]] = {}  # id -> call, dialog, seq written
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._statements: tuple[Any, Any] | None = None

    # --- the endpoint's listener -----------------------------------------------------

    def opened(self, call: Call, dialog: Dialog) -> None:
        key = dialog_id(self.node, dialog)
        self._live[key] = (call, dialog, dialog.local_seq)
        self._deletes.discard(key)
        self._upserts[key] = self._values(key, call, dialog)
        self._poke()

    def closed(self, call: Call, dialog: Dialog) -> None:
        key = dialog_id(self.node, dialog)
        self._live.pop(key, None)
        self._upserts.pop(key, None)
        if key in self._written:
            self._deletes.add(key)
            self._poke()

    def refresh(self) -> None:
        """Rewrite dialogs whose CSeq or target moved since written (called periodically)."""
        for key, (call, dialog, seq) in list(self._live.items()):
            if dialog.local_seq != seq:
                self._live[key] = (call, dialog, dialog.local_seq)
                self._upserts[key] = self._values(key, call, dialog)
                self._poke()

    def _values(self, key: str, call: Call, dialog: Dialog) -> dict[str, Any]:
        peer = call.peer
        return {
            "id": key,
            "node": self.node,
            "call_id": dialog.call_id[:255],
            "dialog": dialog.snapshot(),
            "peer": list(peer) if peer else None,
            "opened_at": datetime.now(UTC),
        }

    # --- the writer -----------------------------------------------------------------

    def _poke(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dialog-journal")

    async def stop(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def flush(self) -> None:
        if self._task is None:
            await self._write()
            return
        while self._upserts or self._deletes or not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.batch_interval)
            try:
                await self._write()
            except Exception:
                log.exception("writing the dialog journal failed; retrying")
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            if not self._upserts and not self._deletes:
                self._idle.set()

    def _upsert_and_delete(self) -> tuple[Any, Any]:
        """The two statements of a batch, built once: a statement is a graph of cycles
        (``excluded`` copies the table's columns), left for the cyclic collector each time
        one is built."""
        if self._statements is None:
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            upsert = insert(SipDialogRecord)
            upsert = upsert.on_conflict_do_update(
                index_elements=[SipDialogRecord.id],
                set_={"dialog": upsert.excluded.dialog, "peer": upsert.excluded.peer},
            )
            ids = SipDialogRecord.id.in_(bindparam("ids", expanding=True))
            self._statements = (upsert, delete(SipDialogRecord).where(ids))
        return self._statements

    async def _write(self) -> None:
        upserts, deletes = list(self._upserts.values()), set(self._deletes)
        self._upserts.clear()
        self._deletes.clear()
        if not upserts and not deletes:
            return
        upsert, delete_ids = self._upsert_and_delete()
        try:
            async with self.db.transaction() as s:
                if upserts:
                    await s.execute(upsert, upserts)
                if deletes:
                    await s.execute(delete_ids, {"ids": sorted(deletes)})
        except Exception:
            for values in upserts:  # put back what was not written, newest first
                self._upserts.setdefault(values["id"], values)
            self._deletes |= deletes - set(self._upserts)
            raise
        self._written |= {v["id"] for v in upserts}
        self._written -= deletes


async def left_dialogs(db: Database, node: str) -> list[SipDialogRecord]:
    """The dialogs ``node`` left in the journal (read before this process opens any)."""
    async with db.session() as s:
        rows = await s.scalars(select(SipDialogRecord).where(SipDialogRecord.node == node))
        return list(rows.all())


async def release_dialogs(
    db: Database, sip: SipEndpoint, rows: list[SipDialogRecord], wait: float = RELEASE_TIMEOUT
) -> tuple[int, int]:
    """Send a BYE in each dialog of ``rows`` (from ``left_dialogs``) and forget those that
    got a final response within ``wait`` seconds (the others stay for a later try); returns
    (dialogs finished, answered with 2xx or 481)."""
    if not rows:
        return 0, 0
    now = sip.now()

    async def bye(row: SipDialogRecord) -> int:
        try:
            dialog = Dialog.restore(row.dialog, now, seq_gap=SEQ_GAP)
            peer = (str(row.peer[0]), str(row.peer[1]), int(row.peer[2])) if row.peer else None
            return await sip.release(dialog, peer)
        except Exception as exc:
            log.warning("could not release dialog %s: %s", row.call_id, exc)
            return 0

    tasks = {row.id: asyncio.ensure_future(bye(row)) for row in rows}
    done, pending = await asyncio.wait(tasks.values(), timeout=wait)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    finished = [key for key, task in tasks.items() if task in done]
    if finished:
        async with db.transaction() as s:
            await s.execute(delete(SipDialogRecord).where(SipDialogRecord.id.in_(finished)))
    statuses = [task.result() for task in done]
    answered = sum(1 for status in statuses if 200 <= status < 300 or status == 481)
    log.warning(
        "sent BYE in %d dialogs left by a crash: %d answered, %d without a final response",
        len(rows),
        answered,
        len(pending),
    )
    return len(finished), answered
