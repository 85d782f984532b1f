"""Where webhooks may be sent: public http(s) URLs only, unless the node allows more (SSRF).

A tenant must not make the node call into its own network: loopback, link-local (cloud
metadata at 169.254.169.254), private, shared, multicast and reserved addresses are refused
unless they fall in ``allowed_networks``. Names are resolved and every address checked, at
creation and again before each attempt; the request then goes to the address that was checked,
so a name that changes its answer in between (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from cloudcc.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2000


class TargetRefused(Invalid):
    """The URL is not an allowed webhook target."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address to connect to."""

    url: httpx.URL
    address: IPAddress

    def request_url(self) -> httpx.URL:
        """The URL with the checked address in place of the name (the Host header keeps it)."""
        return self.url.copy_with(host=str(self.address))


class TargetPolicy:
    def __init__(
        self,
        allowed_networks: Iterable[str] = (),
        resolver: Resolver = system_resolver,
        resolve_timeout: float = 5.0,
    ) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in allowed_networks
        )
        self.resolver = resolver
        self.resolve_timeout = resolve_timeout

    def parse(self, url: str) -> httpx.URL:
        """Syntax checks: an absolute http(s) URL with a host, no credentials, no fragment."""
        if len(url) > MAX_URL_LENGTH:
            raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise TargetRefused(f"not a URL: {exc}") from None
        if parsed.scheme not in ("http", "https"):
            raise TargetRefused("the URL must be http:// or https://")
        if not parsed.host:
            raise TargetRefused("the URL has no host")
        if parsed.userinfo:
            raise TargetRefused("credentials in the URL are not accepted; verify our signature")
        if parsed.fragment:
            raise TargetRefused("the URL must not have a #fragment")
        return parsed

    def allows(self, address: IPAddress) -> bool:
        if any(address in network for network in self.allowed):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            if address.is_site_local or address in _LOCAL_NAT64:
                return False  # fec0::/10 (RFC 3879), 64:ff9b:1::/48 (RFC 8215): never public
            embedded = embedded_ipv4(address)
            if embedded is not None:
                return self.allows(embedded)
        return address.is_global and not address.is_multicast

    async def check(self, url: str) -> Target:
        """Resolve ``url``'s host; TargetRefused unless every address is allowed."""
        parsed = self.parse(url)
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = await self._addresses(host, port)
        if not addresses:
            raise TargetRefused(f"the host {host!r} does not resolve")
        refused = [a for a in addresses if not self.allows(a)]
        if refused:
            raise TargetRefused(
                f"the host {host!r} is a loopback, link-local, private or reserved address "
                f"({refused[0]}); webhooks go to public addresses only"
            )
        return Target(parsed, addresses[0])

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            async with asyncio.timeout(self.resolve_timeout):
                found = await self.resolver(host, port)
        except TimeoutError:
            raise TargetRefused(f"the host {host!r} does not resolve in time") from None
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"the host {host!r} does not resolve: {exc}") from None
        return [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 §2.1 well-known prefix
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use prefix
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291 §2.5.5.1 (deprecated)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form reaches: IPv4-mapped ``::ffff:a.b.c.d``,
    IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d`` and 6to4 ``2002:AABB:CCDD::``."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
