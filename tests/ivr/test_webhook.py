"""The webhook runner against a real HTTP/1.1 server on 127.0.0.1, then fed back into a session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from cloudcc.ivr import CallWebhook, WebhookOutcome, WebhookRequest
from cloudcc.ivr.exceptions import WebhookSignatureError
from cloudcc.ivr.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRunner,
    sign,
    verify_signature,
)

from .helpers import MONDAY_10_UTC, flow, hangup, only, start

SECRET = b"s3cret-of-tenant-t1"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CrmServer:
    """A tiny HTTP/1.1 server: each path answers differently; it records what it received."""

    port: int = 0
    received: list[Received] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(method, path, headers, body))
            status, payload = 200, b""
            if path == "/lookup":
                caller = json.loads(body)["parameters"]["caller"]
                payload = json.dumps({"tier": "gold", "name": "Li Lei", "caller": caller}).encode()
            elif path == "/slow":
                # answer only after the client gave up (it closes the connection) or 3 s
                try:
                    await asyncio.wait_for(reader.read(1), 3)
                except TimeoutError:
                    pass
                payload = b"{}"
            elif path == "/broken":
                status, payload = 500, b'{"error": "db down"}'
            elif path == "/html":
                payload = b"<html>hello</html>"
            elif path == "/empty":
                status = 204
            reason = {200: "OK", 204: "No Content", 500: "Internal Server Error"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass


@pytest.fixture
async def crm() -> AsyncIterator[CrmServer]:
    server_state = CrmServer()
    server = await asyncio.start_server(server_state.handle, "127.0.0.1", 0)
    server_state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield server_state
        server.close()
        await server.wait_closed()


@pytest.fixture
async def runner() -> AsyncIterator[WebhookRunner]:
    async with httpx.AsyncClient() as client:
        yield WebhookRunner(
            client, lambda tenant, name: SECRET if (tenant, name) == ("t1", "crm") else None
        )


def webhook_flow(port: int, path: str, timeout: float = 1.0) -> object:
    return flow(
        [
            {
                "id": "lookup",
                "type": "webhook",
                "url": f"http://127.0.0.1:{port}{path}",
                "parameters": {"caller": "contact.caller"},
                "secret": "crm",
                "timeout": timeout,
                "result_variable": "crm",
                "outputs": {"success": "ok", "error": "failed", "timeout": "slow"},
            },
            hangup("ok", reason="ok"),
            hangup("failed", reason="failed"),
            hangup("slow", reason="slow"),
        ]
    )


async def run_flow(crm: CrmServer, runner: WebhookRunner, path: str, timeout: float = 1.0):  # type: ignore[no-untyped-def]
    session, out = start(webhook_flow(crm.port, path, timeout))  # type: ignore[arg-type]
    result = await runner.run(only(out, CallWebhook).request)
    session.on_input(result, MONDAY_10_UTC + 1)
    return session, result


async def test_success_json_becomes_variable_and_signature_verifies(
    crm: CrmServer, runner: WebhookRunner
) -> None:
    session, result = await run_flow(crm, runner, "/lookup")
    assert result.outcome is WebhookOutcome.SUCCESS and result.status_code == 200
    assert session.end_reason == "ok"
    assert session.variables["crm"] == {"tier": "gold", "name": "Li Lei", "caller": "+15550100"}
    got = crm.received[0]
    assert got.method == "POST" and got.headers["content-type"] == "application/json"
    assert json.loads(got.body)["contact"]["tenant"] == "t1"
    verify_signature(
        SECRET, got.headers, got.body, now=float(got.headers[TIMESTAMP_HEADER.lower()])
    )
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(
            b"wrong", got.headers, got.body, now=float(got.headers[TIMESTAMP_HEADER.lower()])
        )
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(
            SECRET, got.headers, got.body + b" ", now=float(got.headers[TIMESTAMP_HEADER.lower()])
        )


async def test_slow_server_takes_timeout_branch_within_node_timeout(
    crm: CrmServer, runner: WebhookRunner
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    session, result = await run_flow(crm, runner, "/slow", timeout=0.5)
    elapsed = loop.time() - began
    assert result.outcome is WebhookOutcome.TIMEOUT and session.end_reason == "slow"
    assert 0.4 < elapsed < 1.5


@pytest.mark.parametrize(("path", "why"), [("/broken", "HTTP status 500"), ("/html", "not JSON")])
async def test_error_status_or_non_json_takes_error_branch(
    crm: CrmServer, runner: WebhookRunner, path: str, why: str
) -> None:
    session, result = await run_flow(crm, runner, path)
    assert result.outcome is WebhookOutcome.ERROR and why in result.error
    assert session.end_reason == "failed"


async def test_empty_success_answer_is_success(crm: CrmServer, runner: WebhookRunner) -> None:
    session, result = await run_flow(crm, runner, "/empty")
    assert (result.outcome, result.status_code, session.end_reason) == (
        WebhookOutcome.SUCCESS,
        204,
        "ok",
    )


async def test_refused_connection_takes_error_branch(runner: WebhookRunner) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens on the port any more
    _session, out = start(webhook_flow(port, "/lookup"))  # type: ignore[arg-type]
    result = await runner.run(only(out, CallWebhook).request)
    assert result.outcome is WebhookOutcome.ERROR and "ConnectError" in result.error


async def test_unknown_secret_is_an_error_result_not_an_exception(runner: WebhookRunner) -> None:
    request = WebhookRequest("r1", "http://127.0.0.1:9/x", "POST", {}, 1.0, "nope", "t1", "c1")
    result = await runner.run(request)
    assert result.outcome is WebhookOutcome.ERROR and "no webhook secret 'nope'" in result.error


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"k", 1700000000, body) == f"v1={expected}"


def test_stale_or_unsigned_requests_are_rejected() -> None:
    body = b"{}"
    headers = {TIMESTAMP_HEADER: "1000", SIGNATURE_HEADER: sign(SECRET, 1000, body)}
    verify_signature(SECRET, headers, body, now=1100)
    with pytest.raises(WebhookSignatureError, match="away from now"):
        verify_signature(SECRET, headers, body, now=2000)
    with pytest.raises(WebhookSignatureError, match="missing"):
        verify_signature(SECRET, {TIMESTAMP_HEADER: "1000"}, body, now=1000)
