"""Transports (RFC 3261 §18): UDP, TCP, TLS and WebSocket (RFC 7118), on asyncio.

The transport layer only moves bytes. Datagrams and framed stream messages go to
one ``sink(data, source, kind, flow)``; ``send`` writes to a flow (a connection,
reused for responses and for requests to phones behind NAT) or to a UDP address,
opening TCP/TLS connections when needed. Stream keep-alives follow RFC 5626 §3.5.1
(CRLF CRLF ping, CRLF pong). Nothing is logged per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from .exceptions import ParseError, TransportError
from .parser import DEFAULT_LIMITS, Limits, StreamFramer

log = logging.getLogger("cloudcc.sip.transport")

Address = tuple[str, int]
STREAM_KINDS = frozenset({"TCP", "TLS", "WS", "WSS"})
# After a framing error, how long the requests read before it may take to be answered
DRAIN_SECONDS = 5.0


class Target(NamedTuple):
    """Where a message goes: transport kind, address and, for streams, the flow to reuse."""

    kind: str
    address: Address
    flow: Flow | None = None


Sink = Callable[[bytes, Address, str, "Flow | None"], None]
FlowListener = Callable[["Flow"], None]

_flow_ids = itertools.count(1)


class Flow:
    """A connection (TCP, TLS, WS) carrying SIP both ways."""

    kind = "TCP"

    def __init__(self, remote: Address, local: Address) -> None:
        self.id = next(_flow_ids)
        self.remote = remote
        self.local = local
        self.closed = False
        self.last_activity = 0.0

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.kind} flow {self.id} {self.remote[0]}:{self.remote[1]}>"


class StreamFlow(Flow, asyncio.Protocol):
    """A TCP or TLS connection framed by Content-Length (§18.3)."""

    def __init__(self, layer: TransportLayer, kind: str) -> None:
        Flow.__init__(self, ("", 0), ("", 0))
        self.kind = kind
        self._layer = layer
        self._framer = StreamFramer(layer.limits)
        self._transport: asyncio.Transport | None = None
        self._unanswered = -1  # draining: requests still owed a final response
        self._drain_timer: asyncio.TimerHandle | None = None
        self.connected: asyncio.Future[None] = layer.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, but has its methods.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("", 0)
        local = transport.get_extra_info("sockname") or ("", 0)
        self.remote = (peer[0], peer[1])
        self.local = (local[0], local[1])
        self.last_activity = self._layer.loop.time()
        if not self._layer.adopt(self):
            self._transport.abort()
            return
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.last_activity = self._layer.loop.time()
        framer = self._framer
        try:
            messages = framer.feed(data)
        except ParseError:
            # §18.3: a framing error cannot be recovered on a stream
            self.close()
            return
        if framer.pings:
            framer.pings = 0
            self.send(b"\r\n")  # RFC 5626 §3.5.1 pong
        if framer.error is not None:
            # §18.3: the stream cannot be resynced, but what came before the bad
            # fragment was whole: read no more, answer those requests, then close
            self._unanswered = sum(1 for m in messages if not m.startswith((b"SIP/2.0 ", b"ACK ")))
            assert self._transport is not None
            self._transport.pause_reading()
            self._drain_timer = self._layer.loop.call_later(DRAIN_SECONDS, self.close)
        sink = self._layer.sink
        for message in messages:
            sink(message, self.remote, self.kind, self)
        if self._unanswered == 0:
            self.close()

    def send(self, data: bytes) -> None:
        if self.closed or self._transport is None:
            raise TransportError(f"{self!r} is closed")
        self._transport.write(data)
        if self._unanswered > 0 and data.startswith(b"SIP/2.0 ") and data[8:9] != b"1":
            self._unanswered -= 1
            if self._unanswered == 0:  # the last owed final response: flush, then close
                self._layer.loop.call_soon(self.close)

    def close(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if not self.closed and self._transport is not None:
            self._transport.close()
        self.closed = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if not self.connected.done():
            self.connected.set_exception(TransportError(f"connection to {self.remote} lost"))
            self.connected.exception()  # retrieved: nobody may be waiting
        self._layer.forget(self)


class WebSocketFlow(Flow):
    """A WebSocket carrying one SIP message per frame (RFC 7118 §5)."""

    def __init__(self, layer: TransportLayer, connection: Any, kind: str) -> None:
        remote = connection.remote_address or ("", 0)
        local = connection.local_address or ("", 0)
        super().__init__((remote[0], remote[1]), (local[0], local[1]))
        self.kind = kind
        self._layer = layer
        self._connection = connection
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer = layer.loop.create_task(self._write())

    async def _write(self) -> None:
        while True:
            data = await self._queue.get()
            if data is None:
                return
            try:
                # text frames for valid UTF-8 (what browsers' SIP stacks expect)
                try:
                    await self._connection.send(data.decode("utf-8"))
                except UnicodeDecodeError:
                    await self._connection.send(data)
            except Exception:  # the connection went away; the reader cleans up
                return

    async def serve(self) -> None:
        limits = self._layer.limits
        try:
            async for frame in self._connection:
                self.last_activity = self._layer.loop.time()
                data = frame.encode("utf-8", "surrogateescape") if isinstance(frame, str) else frame
                if len(data) > limits.max_message_size or not data.strip():
                    continue
                self._layer.sink(data, self.remote, self.kind, self)
        except Exception:  # closed abnormally: same cleanup as a normal close
            pass
        finally:
            self.closed = True
            self._queue.put_nowait(None)
            await self._writer
            self._layer.forget(self)

    def send(self, data: bytes) -> None:
        if self.closed:
            raise TransportError(f"{self!r} is closed")
        self._queue.put_nowait(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)
            self._layer.loop.create_task(self._connection.close())


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, layer: TransportLayer) -> None:
        self._layer = layer

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._layer.sink(data, (addr[0], addr[1]), "UDP", None)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable and friends: transactions time out on their own


class TransportLayer:
    """Listeners and flows of one endpoint."""

    def __init__(
        self,
        sink: Sink,
        *,
        limits: Limits = DEFAULT_LIMITS,
        max_connections: int = 10_000,
        on_flow_closed: FlowListener | None = None,
    ) -> None:
        self.sink = sink
        self.limits = limits
        self.max_connections = max_connections
        self.on_flow_closed = on_flow_closed
        self.loop = asyncio.get_running_loop()
        self.ports: dict[str, int] = {}
        self.host = ""
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._ws_server: Any = None
        self._flows: dict[tuple[str, Address], Flow] = {}
        self._connecting: dict[tuple[str, Address], asyncio.Task[Flow]] = {}
        self._client_ssl: ssl.SSLContext | None = None

    # --------------------------------------------------------------- listeners
    async def start(
        self,
        host: str,
        port: int,
        *,
        tls_port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ws_port: int | None = None,
        ws_ssl_context: ssl.SSLContext | None = None,
        client_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self._client_ssl = client_ssl_context
        await self._start_udp_tcp(host, port)
        if tls_port is not None:
            if ssl_context is None:
                raise TransportError("a TLS port needs an ssl_context")
            server = await self.loop.create_server(
                lambda: StreamFlow(self, "TLS"), host, tls_port, ssl=ssl_context, reuse_address=True
            )
            self._servers.append(server)
            self.ports["TLS"] = server.sockets[0].getsockname()[1]
        if ws_port is not None:
            await self._start_ws(host, ws_port, ws_ssl_context)

    async def _start_udp_tcp(self, host: str, port: int) -> None:
        # UDP and TCP on the same port; with port 0 retry until both binds succeed
        for _ in range(20):
            udp, _proto = await self.loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port)
            )
            bound = udp.get_extra_info("sockname")[1]
            sock = udp.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            try:
                server = await self.loop.create_server(
                    lambda: StreamFlow(self, "TCP"), host, bound, reuse_address=True
                )
            except OSError:
                udp.close()
                if port:
                    raise
                continue
            self._udp = udp
            self._servers.append(server)
            self.ports["UDP"] = self.ports["TCP"] = bound
            return
        raise TransportError("could not bind UDP and TCP on one port")

    async def _start_ws(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        from websockets.asyncio.server import serve

        kind = "WSS" if context is not None else "WS"

        async def handler(connection: Any) -> None:
            if connection.subprotocol != "sip":  # RFC 7118 §4.1
                await connection.close(1002, "the sip subprotocol is required")
                return
            if len(self._flows) >= self.max_connections:
                await connection.close(1013, "too many connections")
                return
            flow = WebSocketFlow(self, connection, kind)
            self._flows[(kind, flow.remote)] = flow
            await flow.serve()

        self._ws_server = await serve(
            handler,
            host,
            port,
            subprotocols=["sip"],  # type: ignore[list-item]
            ssl=context,
            max_size=self.limits.max_message_size,
            compression=None,
        )
        self.ports[kind] = self._ws_server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for task in self._connecting.values():
            task.cancel()
        for flow in list(self._flows.values()):
            flow.close()
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
            self._ws_server = None
        # let connection_lost callbacks run
        await asyncio.sleep(0)

    # ------------------------------------------------------------------- flows
    def adopt(self, flow: Flow) -> bool:
        if len(self._flows) >= self.max_connections:
            return False
        self._flows[(flow.kind, flow.remote)] = flow
        return True

    def forget(self, flow: Flow) -> None:
        key = (flow.kind, flow.remote)
        if self._flows.get(key) is flow:
            del self._flows[key]
        if self.on_flow_closed is not None:
            self.on_flow_closed(flow)

    def flow_to(self, kind: str, address: Address) -> Flow | None:
        flow = self._flows.get((kind, address))
        return flow if flow is not None and not flow.closed else None

    @property
    def flow_count(self) -> int:
        return len(self._flows)

    def flows(self) -> list[Flow]:
        return list(self._flows.values())

    # -------------------------------------------------------------------- send
    def send(self, target: Target, data: bytes) -> None:
        """Send now, or once the TCP/TLS connection opens. Raises TransportError."""
        kind = target.kind
        if kind == "UDP":
            if self._udp is None:
                raise TransportError("UDP transport is not running")
            self._udp.sendto(data, target.address)
            return
        flow = target.flow
        if flow is None or flow.closed:
            flow = self.flow_to(kind, target.address)
        if flow is not None:
            flow.send(data)
            return
        if kind in ("WS", "WSS"):
            raise TransportError(f"no WebSocket connection to {target.address}")
        self._connect_then_send(kind, target.address, data)

    def _connect_then_send(self, kind: str, address: Address, data: bytes) -> None:
        key = (kind, address)
        task = self._connecting.get(key)
        if task is None:
            task = self.loop.create_task(self._connect(kind, address))
            self._connecting[key] = task
            task.add_done_callback(lambda _t: self._connecting.pop(key, None))

        def write(done: asyncio.Task[Flow]) -> None:
            if done.cancelled() or done.exception() is not None:
                return  # the transaction's timers report the failure
            with contextlib.suppress(TransportError):
                done.result().send(data)

        task.add_done_callback(write)

    async def _connect(self, kind: str, address: Address) -> Flow:
        context: ssl.SSLContext | None = None
        if kind == "TLS":
            context = self._client_ssl or ssl.create_default_context()
        _, protocol = await self.loop.create_connection(
            lambda: StreamFlow(self, kind),
            address[0],
            address[1],
            ssl=context,
            server_hostname=address[0] if context is not None else None,
        )
        assert isinstance(protocol, StreamFlow)
        await protocol.connected
        return protocol
