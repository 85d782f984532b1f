"""A restarted node takes calls as soon as SIP listens: the HTTP API (seconds of imports on a
loaded machine) is loaded off the event loop meanwhile, so SIP is answered before it is up."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import cloudcc.api.app
from cloudcc.app import Node
from tests.conftest import free_port, make_settings


async def _options(port: int) -> str | None:
    """The status line of the answer to one SIP OPTIONS over UDP, or None within 0.3 s."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        call_id = uuid.uuid4().hex
        sock.sendto(
            (
                f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{sock.getsockname()[1]};branch=z9hG4bK{call_id}\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\n"
                f"To: <sip:127.0.0.1:{port}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 0.3)
        except (TimeoutError, OSError):
            return None
        return data.decode(errors="replace").split("\r\n", 1)[0]


async def test_sip_answers_while_the_http_api_is_still_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, demo=False, host="127.0.0.1", http_port=free_port())
    settings.sip.host = settings.media.host = "127.0.0.1"
    settings.sip.port = free_port("both")
    loading, loaded = threading.Event(), threading.Event()
    real = cloudcc.api.app.create_app

    def slow_create_app(ctx: Any) -> Any:
        loading.set()
        time.sleep(3.0)  # a loaded machine importing the API's modules
        app = real(ctx)
        loaded.set()
        return app

    monkeypatch.setattr(cloudcc.api.app, "create_app", slow_create_app)
    node = Node(settings)
    stop = asyncio.Event()
    serving = asyncio.create_task(node.serve(stop))
    try:
        deadline = time.monotonic() + 60
        while not loading.is_set():
            assert time.monotonic() < deadline and not serving.done()
            await asyncio.sleep(0.05)
        answer = await _options(settings.sip.port)
        assert answer == "SIP/2.0 200 OK"
        assert not loaded.is_set()  # answered while the API was still being built
        base = f"http://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(base_url=base) as http:
            while True:
                assert time.monotonic() < deadline and not serving.done()
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        assert loaded.is_set()
    finally:
        stop.set()
        await asyncio.wait_for(serving, 60)
