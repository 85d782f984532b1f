"""Small builders shared by the IVR tests (flows as dicts, picking actions out of outputs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from cloudcc.ivr import ContactContext, Flow, FlowEvent, FlowEventKind, FlowSession, parse_flow
from cloudcc.ivr.actions import Output
from cloudcc.ivr.model import Channel

T = TypeVar("T")

# Monday 2026-11-30 10:00 UTC
MONDAY_10_UTC = datetime(2026, 11, 30, 10, 0, tzinfo=UTC).timestamp()


def flow(nodes: list[dict[str, Any]], **fields: Any) -> Flow:
    doc: dict[str, Any] = {"id": "f", "name": "test flow", "start": nodes[0]["id"], "nodes": nodes}
    doc.update(fields)
    return parse_flow(doc)


def hangup(node_id: str = "end", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "hangup", **extra}


def context(channel: Channel = Channel.VOICE, **fields: Any) -> ContactContext:
    base: dict[str, Any] = {"tenant_id": "t1", "contact_id": "c1", "caller": "+15550100"}
    base.update(fields)
    return ContactContext(channel=channel, **base)


def start(f: Flow, now: float = MONDAY_10_UTC, **kw: Any) -> tuple[FlowSession, list[Output]]:
    ctx = kw.pop("ctx", None) or context(kw.pop("channel", Channel.VOICE))
    session = FlowSession(f, ctx, now, **kw)
    return session, session.start(now)


def only(outputs: list[Output], kind: type[T]) -> T:
    found = [o for o in outputs if isinstance(o, kind)]
    assert len(found) == 1, f"expected one {kind.__name__}, got {outputs}"
    return found[0]


def of(outputs: list[Output], kind: type[T]) -> list[T]:
    return [o for o in outputs if isinstance(o, kind)]


def events(outputs: list[Output], kind: FlowEventKind) -> list[FlowEvent]:
    return [o for o in outputs if isinstance(o, FlowEvent) and o.kind is kind]


def actions(outputs: list[Output]) -> list[Output]:
    return [o for o in outputs if not isinstance(o, FlowEvent)]
