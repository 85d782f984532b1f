"""Registrar and location service (RFC 3261 §10.3), sans-I/O.

``Registrar.register`` applies one REGISTER's Contact list to an address-of-record
(steps 6-8 of §10.3: wildcard removal, expiry limits with 423, Call-ID/CSeq
ordering); ``lookup`` returns live bindings best first; ``expire(now)`` drops the
expired ones. Listeners hear when an AOR's set of contacts changes, so the app can
mark a phone reachable or unreachable. Nothing here knows who the owner is.

On a cluster, ``adopt`` sets the contacts an AOR registered with other nodes (shared through
the store, cloudcc.cluster.registrations): they are reached through their Path (RFC 3327,
the SIP edge), never over a flow of this node, and a REGISTER here replaces none of them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .exceptions import ParseError, RegistrationError
from .headers import NameAddress, parse_int
from .uri import SipUri, parse_sip_uri, unescape


@dataclass
class Binding:
    """One registered contact of an AOR."""

    aor: str
    contact: str  # the Contact URI as registered
    expires_at: float
    call_id: str
    cseq: int
    registered_at: float
    q: float = 1.0
    source: tuple[str, int] | None = None  # where the REGISTER came from (NAT, RFC 3581)
    transport: str = "UDP"
    flow: object = None  # the connection it came on (TCP, TLS, WS), reused to reach it
    owner: object = None
    instance: str | None = None  # +sip.instance (RFC 5626)
    user_agent: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    path: tuple[str, ...] = ()  # Path values (RFC 3327): the proxies to reach it through
    node: str | None = None  # registered with another node of a cluster (``adopt``)

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))

    @property
    def uri(self) -> SipUri:
        return parse_sip_uri(self.contact)


@dataclass(frozen=True)
class ContactRequest:
    """One Contact of a REGISTER: its URI, its ``expires`` and ``q`` parameters."""

    uri: str
    expires: int | None = None
    q: float | None = None
    instance: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    parsed: SipUri | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_name_address(cls, address: NameAddress) -> ContactRequest:
        p = address.params
        expires = None
        if p.get("expires") is not None:
            # RFC 4475 §3.1.2.4: an absurd expiry falls back to the default, not an error
            try:
                expires = parse_int(p["expires"] or "", "expires", 2**32 - 1)
            except ParseError:
                expires = None
        q = None
        if p.get("q") is not None:
            try:
                q = float(p["q"] or "")
            except ValueError as exc:
                raise RegistrationError(f"bad q value {p['q']!r}", 400) from exc
            if not 0.0 <= q <= 1.0:
                raise RegistrationError(f"q value out of range {p['q']!r}", 400)
        instance = p.get("+sip.instance")
        uri = address.uri
        return cls(
            address.uri_text,
            expires,
            q,
            instance.strip('"<>') if instance else None,
            dict(p),
            uri if isinstance(uri, SipUri) else None,
        )


BindingListener = Callable[[str, list["Binding"]], None]


class Registrar:
    """The location service: AOR -> bindings, with expiry."""

    def __init__(
        self,
        *,
        min_expires: int = 60,
        max_expires: int = 7200,
        default_expires: int = 3600,
        max_bindings_per_aor: int = 10,
        max_aors: int = 200_000,
    ) -> None:
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_bindings_per_aor = max_bindings_per_aor
        self.max_aors = max_aors
        self._bindings: dict[str, dict[tuple[object, ...], Binding]] = {}
        self._heap: list[tuple[float, str]] = []
        self._listeners: list[BindingListener] = []
        #: Called with (aor, bindings) after every REGISTER applied, a refresh included.
        self.on_register: BindingListener | None = None

    # ---------------------------------------------------------------- queries
    def lookup(self, aor: str | SipUri, now: float | None = None) -> list[Binding]:
        """Live bindings of an AOR, highest q first, then most recently registered."""
        return self._live(aor_key(aor), now)

    def _live(self, key: str, now: float | None) -> list[Binding]:
        bindings = self._bindings.get(key)
        if not bindings:
            return []
        live = [b for b in bindings.values() if now is None or b.expires_at > now]
        live.sort(key=lambda b: (-b.q, -b.registered_at))
        return live

    def aors(self) -> list[str]:
        return list(self._bindings)

    def __len__(self) -> int:
        return sum(len(b) for b in self._bindings.values())

    def subscribe(self, listener: BindingListener) -> None:
        """Call ``listener(aor, bindings)`` whenever an AOR gains or loses a contact."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: BindingListener) -> None:
        self._listeners.remove(listener)

    # --------------------------------------------------------------- updates
    def register(
        self,
        aor: str | SipUri,
        contacts: Sequence[ContactRequest] | None,
        expires_header: int | None,
        call_id: str,
        cseq: int,
        now: float,
        *,
        source: tuple[str, int] | None = None,
        transport: str = "UDP",
        flow: object = None,
        owner: object = None,
        user_agent: str | None = None,
        path: tuple[str, ...] = (),
    ) -> list[Binding]:
        """Apply a REGISTER (§10.3 steps 6-8); ``contacts=None`` is the ``*`` wildcard.

        An empty list is a query. Returns the AOR's bindings afterwards; raises
        RegistrationError (400, 423, 500, 403) without changing anything.
        """
        key = aor_key(aor)
        current = self._bindings.get(key, {})
        before = set(current)
        if contacts is None:  # step 6: "Contact: *" needs "Expires: 0"
            if expires_header != 0:
                raise RegistrationError("wildcard Contact requires Expires: 0", 400)
            for bkey, binding in list(current.items()):
                if binding.call_id == call_id and cseq <= binding.cseq:
                    raise RegistrationError("out-of-order REGISTER", 500)
                del current[bkey]
            self._changed(key, current, before)
            return []
        plan: list[tuple[tuple[object, ...], ContactRequest, int]] = []
        for contact in contacts:
            expires = contact.expires if contact.expires is not None else expires_header
            if expires is None:
                expires = self.default_expires
            if 0 < expires < self.min_expires:  # step 7
                raise RegistrationError("interval too brief", 423, self.min_expires)
            expires = min(expires, self.max_expires)
            bkey = contact_key(contact.parsed or contact.uri)
            existing = current.get(bkey)
            if (
                existing is not None
                and existing.node is None  # one registered with another node: replaced
                and existing.call_id == call_id
                and cseq <= existing.cseq
            ):
                raise RegistrationError("out-of-order REGISTER", 500)  # step 8
            plan.append((bkey, contact, expires))
        added = sum(1 for bkey, _, exp in plan if exp and bkey not in current)
        if len(current) + added > self.max_bindings_per_aor:
            raise RegistrationError("too many contacts for this address-of-record", 403)
        if not current and added and len(self._bindings) >= self.max_aors:
            raise RegistrationError("registrar is full", 503)
        for bkey, contact, expires in plan:
            if expires == 0:
                current.pop(bkey, None)
                continue
            expires_at = now + expires
            current[bkey] = Binding(
                aor=key,
                contact=contact.uri,
                expires_at=expires_at,
                call_id=call_id,
                cseq=cseq,
                registered_at=now,
                q=contact.q if contact.q is not None else 1.0,
                source=source,
                transport=transport,
                flow=flow,
                owner=owner,
                instance=contact.instance,
                user_agent=user_agent,
                params=contact.params,
                path=path,
            )
            heapq.heappush(self._heap, (expires_at, key))
        if current:
            self._bindings[key] = current
        self._changed(key, current, before)
        live = self._live(key, now)
        if self.on_register is not None:
            self.on_register(key, live)
        return live

    def adopt(self, aor: str | SipUri, bindings: Sequence[Binding], now: float) -> None:
        """Make ``bindings`` (registered with other nodes, each with its ``node``) the AOR's
        remote contacts: those it had from other nodes before are replaced; its own stay,
        and win over a remote one with the same contact."""
        key = aor_key(aor)
        current = self._bindings.get(key, {})
        before = set(current)
        for bkey in [k for k, b in current.items() if b.node is not None]:
            del current[bkey]
        for binding in bindings:
            if binding.node is None or binding.expires_at <= now:
                continue
            bkey = contact_key(binding.contact)
            if bkey in current:
                continue
            binding.aor = key
            current[bkey] = binding
            heapq.heappush(self._heap, (binding.expires_at, key))
        if current:
            self._bindings[key] = current
        self._changed(key, current, before)

    def expire(self, now: float) -> list[str]:
        """Drop expired bindings; returns the AORs whose contact set changed."""
        changed: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            current = self._bindings.get(key)
            if not current:
                continue
            before = set(current)
            for bkey in [k for k, b in current.items() if b.expires_at <= now]:
                del current[bkey]
            if self._changed(key, current, before):
                changed.append(key)
        return changed

    def drop_flow(self, flow: object) -> list[str]:
        """Remove bindings learnt over a connection that closed (RFC 5626 §5.3 spirit)."""
        changed = []
        for key, current in list(self._bindings.items()):
            before = set(current)
            for bkey in [k for k, b in current.items() if b.flow is flow and flow is not None]:
                del current[bkey]
            if self._changed(key, current, before):
                changed.append(key)
        return changed

    def next_expiry(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def _changed(
        self, key: str, current: dict[tuple[object, ...], Binding], before: set[tuple[object, ...]]
    ) -> bool:
        if not current:
            self._bindings.pop(key, None)
        if set(current) == before:
            return False
        bindings = sorted(current.values(), key=lambda b: (-b.q, -b.registered_at))
        for listener in list(self._listeners):
            listener(key, bindings)
        return True


def aor_key(aor: str | SipUri) -> str:
    """``sip:user@host`` with the user unescaped and the host in lower case."""
    if isinstance(aor, SipUri):
        return aor.aor
    text = aor if ":" in aor else f"sip:{aor}"
    return parse_sip_uri(text).aor


def contact_key(contact: str | SipUri) -> tuple[object, ...]:
    """Contacts are the same binding when their URIs are equal (§10.3 step 8, §19.1.4)."""
    if isinstance(contact, SipUri):
        uri = contact
    else:
        try:
            uri = parse_sip_uri(contact)
        except ParseError:
            return ("opaque", contact)
    return (
        uri.scheme.lower(),
        unescape(uri.user or ""),
        uri.host.lower(),
        uri.port,
        (uri.params.get("transport") or "").lower(),
    )
