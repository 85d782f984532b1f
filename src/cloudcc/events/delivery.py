"""Outgoing webhooks: bus events become persisted deliveries, POSTed in order per subscription.

The bus hook only appends the event to an in-memory intake (publishing never waits for the
database or a receiver). A persister task matches the intake against the tenants' active
subscriptions and stores one delivery row per match before anything is sent, so pending
deliveries survive a restart. One worker task per subscription with pending rows sends them
in ``seq`` order, one at a time: a failing head is retried with back-off (``retry.py``) and
the rows behind it wait, which is what "in order" means. Workers of different subscriptions
are independent and share a global and a per-tenant cap on requests in flight, so a slow or
dead receiver never delays another tenant. Delivery is at least once: a receiver deduplicates
by the ``X-CloudCC-Request-Id`` header (the delivery id, the same on every attempt).

Request format (the scheme of ``cloudcc.ivr.webhook``, whose ``sign`` it uses): ``POST`` of
``application/json`` with ``X-CloudCC-Timestamp``, ``X-CloudCC-Signature: v1=<hex
HMAC-SHA256(tenant webhook secret, timestamp + "." + body)>``, ``X-CloudCC-Tenant``,
``X-CloudCC-Request-Id``, ``X-CloudCC-Event`` and ``X-CloudCC-Attempt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cloudcc.bus import Event, LocalBus
from cloudcc.errors import Invalid
from cloudcc.events.model import TypeFilter
from cloudcc.events.retry import RetryPolicy, Verdict, judge
from cloudcc.events.tables import WebhookDelivery, WebhookSubscription
from cloudcc.events.targets import TargetPolicy, TargetRefused
from cloudcc.ivr.webhook import (
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TENANT_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from cloudcc.store.db import Database
from cloudcc.store.tables import Tenant, new_id, utcnow
from cloudcc.timefmt import iso_time, with_iso_times

log = logging.getLogger("cloudcc.events.webhooks")

EVENT_HEADER = "X-CloudCC-Event"
ATTEMPT_HEADER = "X-CloudCC-Attempt"
SUBSCRIPTION_HEADER = "X-CloudCC-Subscription"
MAX_ANSWER_BYTES = 2048  # kept for the delivery log; the rest of an answer is not read
_BATCH = 500
_PENDING_BATCH = 50


@dataclass(frozen=True, slots=True)
class _Rule:
    subscription_id: str
    types: TypeFilter


@dataclass(slots=True)
class _Attempt:
    status: int | None
    error: str | None
    answer: str
    ms: int
    retry_after: float | None = None


@dataclass(slots=True)
class _Worker:
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    changed: bool = False


class WebhookDispatcher:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        policy: TargetPolicy,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 64,
        max_in_flight_per_tenant: int = 8,
        intake_limit: int = 100_000,
        client: httpx.AsyncClient | None = None,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        user_agent: str = "cloudcc-webhook/1",
    ) -> None:
        self.db = db
        self.bus = bus
        self.policy = policy
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_in_flight_per_tenant = max_in_flight_per_tenant
        self.intake_limit = intake_limit
        self.rand = rand
        self.clock = clock
        self.user_agent = user_agent
        self.dropped = 0  # events lost because the intake was full (the store is too slow)
        self._client = client
        self._own_client = client is None
        self._intake: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._rules: dict[str, list[_Rule]] = {}
        self._generation: dict[str, int] = {}
        self._workers: dict[str, _Worker] = {}
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tenant_slots: dict[str, asyncio.Semaphore] = {}
        self._persister: asyncio.Task[None] | None = None
        self._stopping = False
        # On a cluster bus: every node forgets the rules it cached when a webhook changes; the
        # node that published an event stores its deliveries (once per event in the cluster).
        bus.on(lambda e: e.type.startswith("webhook."), self._forget_rules)
        bus.on(lambda e: True, self._observe, origin_only=True)

    # --- intake (inside bus.publish: no I/O, no await) -----------------------------------

    def _forget_rules(self, event: Event) -> None:
        tenant_id = event.tenant_id
        self._rules.pop(tenant_id, None)
        self._generation[tenant_id] = self._generation.get(tenant_id, 0) + 1

    def _observe(self, event: Event) -> None:
        tenant_id = event.tenant_id
        if event.type.startswith("webhook."):
            sub_id = event.data.get("id")
            if isinstance(sub_id, str):  # changed, (re)activated, deleted or redelivering
                worker = self._workers.get(sub_id)
                if worker is not None:
                    worker.changed = True
                self._kick(sub_id, tenant_id)
        elif self._rules.get(tenant_id) == []:
            return  # the tenant has no active webhook
        if len(self._intake) >= self.intake_limit:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("webhook intake full: %d events dropped so far", self.dropped)
            return
        self._intake.append(event)
        self._wake.set()

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start persisting and sending; resume the deliveries left pending by a previous run."""
        if self._persister is not None:
            return
        self._stopping = False
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            )
        self._persister = asyncio.create_task(self._persist_forever(), name="webhook-intake")
        async with self.db.session() as s:
            pending = (
                await s.execute(
                    select(WebhookDelivery.subscription_id, WebhookDelivery.tenant_id)
                    .where(WebhookDelivery.status == "pending")
                    .distinct()
                )
            ).all()
        for sub_id, tenant_id in pending:
            self._kick(sub_id, tenant_id)

    async def stop(self) -> None:
        """Persist what the bus handed over, stop sending (pending rows wait for the next start)."""
        self._stopping = True
        if self._persister is not None:
            self._wake.set()  # it stores what is in the intake, then ends
            try:
                async with asyncio.timeout(10):
                    await self._persister
            except TimeoutError:
                log.error("webhook intake not saved in time at shutdown")
            finally:
                self._persister.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._persister
                self._persister = None
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- persisting -----------------------------------------------------------------------

    async def _persist_forever(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while self._intake:
                batch = [self._intake.popleft() for _ in range(min(_BATCH, len(self._intake)))]
                for attempt in range(5):
                    try:
                        await self._persist(batch)
                        break
                    except IntegrityError:  # a subscription deleted meanwhile: match again
                        for tenant_id in {e.tenant_id for e in batch}:
                            self._rules.pop(tenant_id, None)
                    except SQLAlchemyError:
                        log.exception("storing webhook deliveries failed (try %d)", attempt + 1)
                        await asyncio.sleep(0.5 * 2**attempt)
                else:
                    log.error("dropped %d events for webhooks after repeated failures", len(batch))

    async def _persist(self, batch: list[Event]) -> None:
        rows: list[dict[str, Any]] = []
        kicks: dict[str, str] = {}
        rules_of: dict[str, list[_Rule]] = {}
        for tenant_id in dict.fromkeys(e.tenant_id for e in batch):
            cached = self._rules.get(tenant_id)
            rules_of[tenant_id] = (
                cached if cached is not None else await self._load_rules(tenant_id)
            )
        for event in batch:
            for rule in rules_of[event.tenant_id]:
                if rule.types.matches(event.type):
                    rows.append(self._row(rule.subscription_id, event))
                    kicks[rule.subscription_id] = event.tenant_id
        if rows:
            async with self.db.transaction() as s:
                await s.execute(insert(WebhookDelivery), rows)
        for sub_id, tenant_id in kicks.items():
            self._kick(sub_id, tenant_id)

    async def _load_rules(self, tenant_id: str) -> list[_Rule]:
        generation = self._generation.get(tenant_id, 0)
        w = WebhookSubscription
        async with self.db.session() as s:
            found = (
                await s.execute(
                    select(w.id, w.event_types)
                    .where(w.tenant_id == tenant_id, w.active.is_(True))
                    .order_by(w.id)
                )
            ).all()
        rules = []
        for sub_id, types in found:
            try:
                rules.append(_Rule(sub_id, TypeFilter(types)))
            except Invalid:  # a row written around the API: it matches nothing
                log.warning("webhook %s has unusable event types %r", sub_id, types)
        if self._generation.get(tenant_id, 0) == generation:
            self._rules[tenant_id] = rules
        return rules

    def _row(self, subscription_id: str, event: Event) -> dict[str, Any]:
        delivery_id = new_id()
        body = {
            "id": delivery_id,
            "subscription_id": subscription_id,
            "tenant_id": event.tenant_id,
            "seq": event.seq,
            "type": event.type,
            "at": iso_time(event.at),
            "data": with_iso_times(event.data),
        }
        return {
            "id": delivery_id,
            "tenant_id": event.tenant_id,
            "subscription_id": subscription_id,
            "event_seq": event.seq,
            "event_type": event.type[:100],
            "body": orjson.dumps(body, default=str).decode(),
            "status": "pending",
            "attempts": 0,
            "log": [],
        }

    # --- sending --------------------------------------------------------------------------

    def _kick(self, subscription_id: str, tenant_id: str) -> None:
        worker = self._workers.get(subscription_id)
        if worker is not None:
            worker.wake.set()
            return
        if self._stopping or self._persister is None:
            return  # not running: start() picks pending rows up
        worker = _Worker()
        self._workers[subscription_id] = worker
        worker.task = asyncio.create_task(
            self._work(subscription_id, tenant_id, worker), name=f"webhook-{subscription_id}"
        )

    async def _work(self, subscription_id: str, tenant_id: str, worker: _Worker) -> None:
        try:
            while not self._stopping:
                worker.wake.clear()
                worker.changed = False
                try:
                    state = await self._due(subscription_id, tenant_id)
                except SQLAlchemyError:
                    log.exception("loading deliveries of webhook %s failed", subscription_id)
                    await self._nap(worker, 1.0)
                    continue
                if state is None:
                    if worker.wake.is_set():
                        continue  # new rows arrived while loading
                    return
                url, secret, rows = state
                for row in rows:
                    wait = (row.next_attempt_at - utcnow()).total_seconds()
                    if wait > 0:
                        await self._nap(worker, wait)
                        break  # load again: the subscription may have changed meanwhile
                    attempt = await self._send(url, secret, tenant_id, row)
                    try:
                        verdict = await self._record(row, attempt)
                    except SQLAlchemyError:
                        log.exception("recording webhook delivery %s failed", row.id)
                        await self._nap(worker, 1.0)
                        break
                    if verdict is Verdict.RETRY or worker.changed:
                        break
        except Exception:
            log.exception("webhook worker %s failed", subscription_id)
        finally:
            if self._workers.get(subscription_id) is worker:
                del self._workers[subscription_id]

    async def _nap(self, worker: _Worker, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await worker.wake.wait()

    async def _due(
        self, subscription_id: str, tenant_id: str
    ) -> tuple[str, str, list[WebhookDelivery]] | None:
        """The subscription's URL, the tenant's secret and its next pending rows (None: none)."""
        w, d = WebhookSubscription, WebhookDelivery
        async with self.db.session() as s:
            sub = (
                await s.execute(
                    select(w.url, w.active, Tenant.webhook_secret)
                    .join(Tenant, Tenant.id == w.tenant_id)
                    .where(w.id == subscription_id, w.tenant_id == tenant_id)
                )
            ).first()
            if sub is None or not sub.active:
                return None
            rows = list(
                (
                    await s.scalars(
                        select(d)
                        .where(d.subscription_id == subscription_id, d.status == "pending")
                        .order_by(d.seq)
                        .limit(_PENDING_BATCH)
                    )
                ).all()
            )
        if not rows:
            return None
        return sub.url, sub.webhook_secret, rows

    def _tenant_slot(self, tenant_id: str) -> asyncio.Semaphore:
        slot = self._tenant_slots.get(tenant_id)
        if slot is None:
            slot = self._tenant_slots[tenant_id] = asyncio.Semaphore(self.max_in_flight_per_tenant)
        return slot

    async def _send(self, url: str, secret: str, tenant_id: str, row: WebhookDelivery) -> _Attempt:
        try:
            target = await self.policy.check(url)
        except TargetRefused as exc:
            return _Attempt(None, f"refused: {exc.detail}", "", 0)
        body = row.body.encode()
        timestamp = int(self.clock())
        headers = {
            "Host": target.url.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret.encode(), timestamp, body),
            TENANT_HEADER: tenant_id,
            REQUEST_ID_HEADER: row.id,
            EVENT_HEADER: row.event_type,
            ATTEMPT_HEADER: str(row.attempts + 1),
            SUBSCRIPTION_HEADER: row.subscription_id,
        }
        extensions = {"sni_hostname": target.url.host} if target.url.scheme == "https" else {}
        assert self._client is not None, "start() the dispatcher first"
        async with self._tenant_slot(tenant_id), self._slots:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.timeout):
                    request = self._client.build_request(
                        "POST",
                        target.request_url(),
                        content=body,
                        headers=headers,
                        extensions=extensions,
                        timeout=self.timeout,
                    )
                    response = await self._client.send(request, stream=True)
                    try:
                        answer = b""
                        async for chunk in response.aiter_raw():
                            answer += chunk
                            if len(answer) >= MAX_ANSWER_BYTES:
                                break
                    finally:
                        await response.aclose()
            except (TimeoutError, httpx.TimeoutException):
                return _Attempt(None, f"no answer within {self.timeout:g} s", "", _ms(started))
            except httpx.HTTPError as exc:
                return _Attempt(None, f"{type(exc).__name__}: {exc}"[:500], "", _ms(started))
        retry_after = _retry_after(response.headers.get("retry-after"))
        text = answer[:MAX_ANSWER_BYTES].decode("utf-8", "replace")
        return _Attempt(response.status_code, None, text, _ms(started), retry_after)

    async def _record(self, row: WebhookDelivery, attempt: _Attempt) -> Verdict:
        verdict = judge(attempt.status)
        attempts = row.attempts + 1
        now = utcnow()
        entry = {
            "at": now.isoformat(),
            "status": attempt.status,
            "error": attempt.error,
            "ms": attempt.ms,
            "answer": attempt.answer[:200],
        }
        error = attempt.error
        if error is None and verdict is not Verdict.DELIVERED:
            error = f"HTTP status {attempt.status}"
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status": attempt.status,
            "last_error": error,
            "log": [*row.log, entry][-self.retry.max_attempts :],
        }
        if verdict is Verdict.DELIVERED:
            values.update(status="delivered", completed_at=now)
        elif verdict is Verdict.REJECTED or self.retry.exhausted(attempts):
            values.update(status="failed", completed_at=now)
            verdict = Verdict.REJECTED
            log.info("webhook delivery %s failed after %d attempts: %s", row.id, attempts, error)
        else:
            delay = self.retry.delay(attempts, self.rand(), attempt.retry_after)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        async with self.db.transaction() as s:
            await s.execute(
                update(WebhookDelivery).where(WebhookDelivery.seq == row.seq).values(**values)
            )
        return verdict


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
