"""The caller ID a flow may present on a call out (issue 18.5: no caller-ID spoofing through a
flow): one of the tenant's own numbers (provisioned to it, or brought on its own trunk), a
trunk's configured ``caller_id``, or ``caller``, the original caller's number when the flow
forwards an incoming call. Pure: the tenant's numbers come from whoever calls."""

from __future__ import annotations

from collections.abc import Iterable

#: ``transfer_external.caller_id`` value that keeps the caller's number (forwarding).
KEEP_CALLER = "caller"


def number_key(number: str) -> str:
    """A number compared by its digits (``+1 555-0100`` and ``15550100`` are the same)."""
    return "".join(ch for ch in number if ch.isdigit())


def own_caller_id(caller_id: str, own_numbers: Iterable[str]) -> bool:
    """Whether ``caller_id`` is ``caller`` or one of ``own_numbers``."""
    if caller_id == KEEP_CALLER:
        return True
    key = number_key(caller_id)
    return bool(key) and any(number_key(n) == key for n in own_numbers)
