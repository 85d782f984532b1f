"""How the node serves HTTP: a deadline for request headers, HTTPS with a certificate that
reloads without a restart, and HSTS.

- Headers: a connection gets ``header_timeout`` seconds from its first byte (or from being
  opened) to finish a request's headers, else it is closed (slowloris). Bodies have their
  own deadline in ``api.admission``; idle keep-alive connections uvicorn's.
- HTTPS: with ``https_cert`` and ``https_key`` set, the node listens with TLS. The files are
  read again when they change (checked every ``reload_interval`` seconds) or on SIGHUP; new
  connections get the new certificate, open ones keep theirs.
- HSTS (RFC 6797): every answer over HTTPS carries ``Strict-Transport-Security``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("cloudcc.serving")


def header_deadline_protocol(header_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP/1.1 protocol with a deadline on each request's headers."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being served; its body has its own deadline
            if not self.transport.is_closing():
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n"
                    b"content-length: 0\r\n\r\n"
                )
                self.transport.close()

    return HeaderDeadlineProtocol


class ReloadingCertificate:
    """A server TLS context whose certificate and key are read again when they change."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = Path(cert)
        self.key = Path(key)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(["http/1.1"])
        self._stamp: tuple[float, float] | None = None
        self.load()

    def _mtimes(self) -> tuple[float, float]:
        return (self.cert.stat().st_mtime_ns, self.key.stat().st_mtime_ns)

    def load(self) -> None:
        """Read the files (raise on a bad pair: at start the node must not come up).

        The pair is tried on a scratch context first: a failed load into the live one could
        leave it with the new certificate and the old key."""
        stamp = self._mtimes()
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.cert, self.key)
        self.context.load_cert_chain(self.cert, self.key)
        self._stamp = stamp

    def reload(self) -> bool:
        """Read the files again; keep the current certificate (and log) when they are bad."""
        try:
            self.load()
        except (OSError, ssl.SSLError) as exc:
            log.error("HTTPS certificate not reloaded, the old one stays: %s", exc)
            return False
        log.info("HTTPS certificate reloaded from %s", self.cert)
        return True

    def changed(self) -> bool:
        try:
            return self._mtimes() != self._stamp
        except OSError:
            return False  # being replaced: look again next time

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                self.reload()


class Hsts:
    """Add Strict-Transport-Security to every answer given over HTTPS."""

    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.value = f"max-age={max_age}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"strict-transport-security", self.value),
                    ],
                }
            await send(message)

        await self.app(scope, receive, send_hsts)
