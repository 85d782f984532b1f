"""ICE-lite (RFC 8445 §2.5): the node gathers only its host candidate and answers the
browser's connectivity checks (STUN Binding requests, RFC 5389 §7.3 and RFC 8445 §7.3);
it never sends checks itself. The address a valid check came from is where media goes;
a check carrying USE-CANDIDATE nominates it (§7.3.1.5, the lite side is controlled).

Sans-I/O: ``receive`` takes a datagram and its source and returns the response to send.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from aioice import stun

Address = tuple[str, int]
_ALPHABET = string.ascii_letters + string.digits + "+/"  # ice-char, RFC 8839 §5.4


def is_stun(data: bytes) -> bool:
    """RFC 7983 §7: a first byte of 0..3 is STUN (and the magic cookie must be there)."""
    return len(data) >= 20 and data[0] < 4 and data[4:8] == b"\x21\x12\xa4\x42"


def random_credential(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class IceCredentials:
    ufrag: str
    pwd: str

    @classmethod
    def generate(cls) -> IceCredentials:
        # RFC 8839 §5.4: ufrag at least 4 characters, pwd at least 22
        return cls(random_credential(8), random_credential(24))


class IceLite:
    """The controlled, lite side of one ICE session (one component: rtcp-mux)."""

    def __init__(self, local: IceCredentials, remote: IceCredentials | None = None) -> None:
        self.local = local
        self.remote = remote
        self.selected: Address | None = None  # where media goes
        self.nominated = False
        self.checks = 0
        self.refused = 0  # checks with a wrong username or integrity
        self._key = local.pwd.encode()

    def set_remote(self, remote: IceCredentials) -> None:
        if self.remote is not None and remote.ufrag != self.remote.ufrag:
            # an ICE restart (RFC 8445 §2.4): new checks decide the address again
            self.selected = None
            self.nominated = False
        self.remote = remote

    def receive(self, data: bytes, source: Address) -> bytes | None:
        """Handle a STUN datagram; returns the Binding success response, or None when the
        request is refused (wrong credentials) or is not a Binding request."""
        try:
            message = stun.parse_message(data)
        except ValueError:
            self.refused += 1
            return None
        if (
            message.message_method != stun.Method.BINDING
            or message.message_class != stun.Class.REQUEST
        ):
            return None  # indications (keep-alives) and responses need no answer
        username = message.attributes.get("USERNAME", "")
        local_ufrag, _, remote_ufrag = str(username).partition(":")
        if local_ufrag != self.local.ufrag or (
            self.remote is not None and remote_ufrag != self.remote.ufrag
        ):
            self.refused += 1
            return None
        # RFC 5389 §15.4: the short-term credential is our password
        if not message.check_message_integrity(self._key):
            self.refused += 1
            return None
        self.checks += 1
        if "USE-CANDIDATE" in message.attributes:
            self.selected = source
            self.nominated = True
        elif self.selected is None:
            self.selected = source  # a valid pair; a later nomination may move it
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = source
        response.add_message_integrity(self._key)
        response.add_fingerprint()
        return bytes(response)
