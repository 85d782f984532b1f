"""The replay store of signed requests, shared by every node through the database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from cloudcc.store.db import Database
from cloudcc.tenancy.exceptions import AuthenticationError
from cloudcc.tenancy.tables import SeenRequest

_PURGE_EVERY = 500  # inserts between two deletions of expired rows


class SeenRequests:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._inserts = 0

    async def remember(self, access_key: str, replay_key: str, expires_at: float) -> None:
        """Record ``replay_key`` for the key until ``expires_at``; a second time is a replay."""
        value = hashlib.sha256(replay_key.encode()).hexdigest()
        expires = datetime.fromtimestamp(expires_at, UTC)
        try:
            async with self.db.transaction() as s:
                s.add(SeenRequest(access_key=access_key[:64], value=value, expires_at=expires))
        except IntegrityError:
            raise AuthenticationError("replayed request (nonce or signature seen before)") from None
        self._inserts += 1
        if self._inserts % _PURGE_EVERY == 0:
            async with self.db.transaction() as s:
                await s.execute(
                    delete(SeenRequest).where(SeenRequest.expires_at < datetime.now(UTC))
                )
