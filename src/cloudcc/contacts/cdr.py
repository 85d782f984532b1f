"""Contact detail records: what is kept of a contact once it ends (pure; the store writes it).

One contact record with every phase (IVR, queue wait, ring, talk, hold, wrap-up), the path
through flows, queues and agents, the transfer chain, the disposition, the recordings, and the
call quality of each leg (loss and jitter from RTCP), plus one record per leg.
"""

from __future__ import annotations

from typing import Any

from cloudcc.contacts.model import (
    Contact,
    ContactState,
    Disposition,
    EndCause,
    LegRole,
    LegState,
)


def _r(seconds: float) -> float:
    return round(max(0.0, seconds), 3)


def close_open_phases(contact: Contact, now: float, cause: EndCause) -> None:
    """End a contact that is ending without the normal path (shutdown, crash, error)."""
    for leg in contact.legs:
        if leg.active:
            leg.end_cause = leg.end_cause or cause.value
            leg.go(LegState.ENDED, now)
    if contact.state is not ContactState.ENDED:
        contact.end_cause = contact.end_cause or cause
        if contact.disposition is None:
            contact.disposition = default_disposition(contact)
        contact.go(ContactState.ENDED, now)


def default_disposition(contact: Contact) -> Disposition:
    """The disposition when nothing more specific was decided."""
    if contact.answered_at is not None:
        return Disposition.ANSWERED
    if contact.end_cause in (EndCause.SUPERVISOR_RELEASE, EndCause.AGENT_HANGUP):
        return Disposition.RELEASED
    failed = contact.end_cause in (EndCause.NODE_FAILURE, EndCause.ERROR, EndCause.PEER_LOST)
    if failed and contact.queued_at is None and contact.ivr_started_at is None:
        return Disposition.FAILED
    if contact.queued_at is not None:
        return Disposition.ABANDONED
    if contact.ivr_started_at is not None and contact.end_cause is EndCause.SYSTEM_HANGUP:
        return Disposition.SELF_SERVICE
    if contact.ivr_started_at is not None:
        return Disposition.ABANDONED
    return Disposition.FAILED


def contact_record(contact: Contact) -> dict[str, Any]:
    """The contact record (CDR) as plain data."""
    customer = next((leg for leg in contact.legs if leg.role is LegRole.CUSTOMER), None)
    quality = {leg.id: leg.quality for leg in contact.legs if leg.quality}
    return {
        "id": contact.id,
        "tenant_id": contact.tenant_id,
        "channel": contact.channel.value,
        "direction": contact.direction.value,
        "customer": contact.customer,
        "dialed": contact.dialed,
        "state": contact.state.value,
        "disposition": contact.disposition.value if contact.disposition else None,
        "end_cause": contact.end_cause.value if contact.end_cause else None,
        "queue": contact.queue,
        "agent_id": contact.agent_id,
        "created_at": contact.created_at,
        "answered_at": contact.answered_at,
        "ended_at": contact.ended_at,
        "ivr_seconds": _r(contact.ivr_seconds),
        "queue_seconds": _r(contact.queue_seconds),
        "ring_seconds": _r(contact.ring_seconds),
        "talk_seconds": _r(contact.talk_seconds),
        "hold_seconds": _r(contact.hold_seconds()),
        "wrapup_seconds": _r(contact.wrapup_seconds),
        "total_seconds": _r((contact.ended_at or contact.created_at) - contact.created_at),
        "path": contact.path,
        "transfers": contact.transfers,
        "recordings": list(contact.recordings),
        "wrapup_code": contact.wrapup_code,
        "wrapup_notes": contact.wrapup_notes,
        "attributes": contact.attributes,
        "quality": quality,
        "customer_call_id": customer.call_id if customer else None,
    }


def leg_records(contact: Contact) -> list[dict[str, Any]]:
    return [
        {**leg.to_dict(), "contact_id": contact.id, "tenant_id": contact.tenant_id}
        for leg in contact.legs
    ]
