"""``cloudcc serve``: starts on the embedded default, seeds the demo once, stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import httpx
import websockets

from tests.conftest import LiveNode, free_port

#: The first OpenAPI document is built on request: seconds on a machine busy with other tests.
WAIT = 30.0


def test_serve_creates_the_demo_tenant_and_answers_health(live_node):
    assert httpx.get(live_node.base + "/healthz", timeout=WAIT).json()["status"] == "ok"
    demo = live_node.demo
    assert demo["tenant"] == "demo" and demo["number"] == "4000"
    assert [a["extension"] for a in demo["agents"]] == ["1001", "1002", "1003"]
    assert (live_node.data_dir / "cloudcc.db").exists()
    assert oct((live_node.data_dir / "demo-credentials.json").stat().st_mode)[-3:] == "600"
    log = live_node.log()
    assert "cloudcc is ready" in log and demo["admin"]["password"] in log
    r = httpx.post(
        live_node.base + "/api/v1/auth/login",
        json={"tenant": "demo", "username": "admin", "password": demo["admin"]["password"]},
        timeout=WAIT,
    )
    assert r.status_code == 200
    assert (
        httpx.get(live_node.base + "/api/openapi.json", timeout=WAIT).json()["info"]["title"]
        == "cloudcc"
    )
    assert httpx.get(live_node.base + "/api/docs", timeout=WAIT).status_code == 200


def test_a_token_in_a_websocket_url_stays_out_of_the_log(live_node):
    demo = live_node.demo
    r = httpx.post(
        live_node.base + "/api/v1/auth/login",
        json={"tenant": "demo", "username": "admin", "password": demo["admin"]["password"]},
    )
    token = r.json()["access_token"]
    url = live_node.base.replace("http://", "ws://") + "/api/v1/events/ws"

    async def connect() -> None:
        async with websockets.connect(f"{url}?scope=tenant&access_token={token}") as ws:
            await ws.send(json.dumps({"type": "ping"}))
            await asyncio.wait_for(ws.recv(), 5)

    asyncio.run(connect())
    log = live_node.log()
    assert "/api/v1/events/ws?scope=tenant&access_token=[redacted]" in log
    assert token not in log


def test_sigterm_stops_the_node_cleanly_and_a_restart_keeps_the_data(tmp_path):
    data = tmp_path / "data"
    first = LiveNode(data)
    first.wait_ready()
    creds = first.demo
    assert first.stop() == 0
    assert "Traceback" not in first.log()

    second = LiveNode(data)
    try:
        second.wait_ready()
        assert second.demo == creds  # the demo tenant is not created twice
        r = httpx.post(
            second.base + "/api/v1/auth/login",
            json={"tenant": "demo", "username": "admin", "password": creds["admin"]["password"]},
        )
        token = r.json()["access_token"]
        agents = httpx.get(
            second.base + "/api/v1/agents", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert agents["total"] == 3
    finally:
        assert second.stop() == 0


def test_config_file_and_environment_choose_the_settings(tmp_path):
    port = free_port()
    config = tmp_path / "cloudcc.toml"
    config.write_text(f"http_port = {port}\ndemo = false\n[limits]\ntenant_rps = 5\n")
    env = {**os.environ, "CLOUDCC_CONFIG": str(config), "CLOUDCC_DATA_DIR": str(tmp_path / "d")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudcc.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert not (tmp_path / "d" / "demo-credentials.json").exists()
        assert (tmp_path / "d" / "cloudcc.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out


def test_a_taken_port_is_reported_not_a_traceback(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cloudcc.cli",
                "serve",
                "--data-dir",
                str(tmp_path / "d"),
                "--http-port",
                str(port),
                "--no-demo",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert json.dumps(port) in proc.stderr + proc.stdout


def test_sip_over_tls_and_websocket_listen_when_configured(tmp_path):
    import socket
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    tls_port, ws_port = free_port(), free_port()
    node = LiveNode(
        tmp_path / "data",
        env={
            "CLOUDCC_SIP__TLS_PORT": str(tls_port),
            "CLOUDCC_SIP__WS_PORT": str(ws_port),
            "CLOUDCC_SIP__TLS_CERT": str(cert),
            "CLOUDCC_SIP__TLS_KEY": str(key),
        },
    )
    try:
        node.wait_ready()
        context = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(
                b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bKx1\r\n"
                b"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: tls-probe\r\n"
                b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
            assert tls.recv(4096).startswith(b"SIP/2.0 200")
        with socket.create_connection(("127.0.0.1", ws_port), timeout=5):
            pass  # the WebSocket (WSS) listener accepts connections
    finally:
        assert node.stop() == 0
