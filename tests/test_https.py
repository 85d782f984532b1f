"""``cloudcc serve`` over HTTPS: the configured certificate, reloaded on SIGHUP, HSTS; and a
deadline for request headers (slowloris)."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import LiveNode


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _served_cn(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.rfc4514_string())


def test_https_with_hsts_and_a_certificate_reloaded_without_restart(tmp_path):
    cert, key = _certificate(tmp_path, "first")
    live = tmp_path / "live"
    live.mkdir()
    (live / "node.crt").write_bytes(cert.read_bytes())
    (live / "node.key").write_bytes(key.read_bytes())
    node = LiveNode(
        tmp_path / "data",
        env={
            "CLOUDCC_HTTPS_CERT": str(live / "node.crt"),
            "CLOUDCC_HTTPS_KEY": str(live / "node.key"),
        },
    )
    base = node.base.replace("http://", "https://")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(
                    base + "/healthz",
                    verify=ssl.create_default_context(cafile=str(cert)),
                    timeout=2,
                )
                break
            except httpx.HTTPError:
                assert node.proc.poll() is None, node.log()
                assert time.monotonic() < deadline, node.log()
                time.sleep(0.2)
        assert r.status_code == 200
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        # The ready line, with the https address, comes once the API's lifespan has run.
        while "https://" not in node.log():
            assert time.monotonic() < deadline, node.log()
            time.sleep(0.2)
        # Plain HTTP is not served on the HTTPS port.
        try:
            plain = httpx.get(node.base + "/healthz", timeout=3).status_code
        except httpx.HTTPError:
            plain = None
        assert plain != 200
        assert _served_cn(node.http_port) == "CN=first"
        # A renewed certificate is put in place; SIGHUP makes the node read it.
        cert2, key2 = _certificate(tmp_path, "second")
        (live / "node.key").write_bytes(key2.read_bytes())
        (live / "node.crt").write_bytes(cert2.read_bytes())
        node.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _served_cn(node.http_port) != "CN=second":
            assert time.monotonic() < deadline, node.log()
            time.sleep(0.2)
        assert (
            httpx.get(
                base + "/healthz", verify=ssl.create_default_context(cafile=str(cert2)), timeout=5
            ).status_code
            == 200
        )
    finally:
        node.stop()


def test_a_client_that_never_finishes_its_headers_is_cut_off(tmp_path):
    node = LiveNode(tmp_path / "data", env={"CLOUDCC_LIMITS__HEADER_TIMEOUT": "1"})
    try:
        node.wait_ready()
        with socket.create_connection(("127.0.0.1", node.http_port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            started = time.monotonic()
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
            assert time.monotonic() - started < 5
        assert answer.startswith(b"HTTP/1.1 408")
        # A connection that sends nothing at all is closed too.
        with socket.create_connection(("127.0.0.1", node.http_port), timeout=10) as s:
            started = time.monotonic()
            while s.recv(4096):
                pass
            assert time.monotonic() - started < 5
        assert httpx.get(node.base + "/healthz").status_code == 200
    finally:
        node.stop()


def test_a_bad_certificate_pair_is_refused_and_the_old_one_stays(tmp_path):
    from cloudcc.serving import ReloadingCertificate

    cert, key = _certificate(tmp_path, "good")
    other_cert, _ = _certificate(tmp_path, "other")
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    live_cert.write_bytes(cert.read_bytes())
    live_key.write_bytes(key.read_bytes())
    reloading = ReloadingCertificate(live_cert, live_key)
    live_cert.write_bytes(other_cert.read_bytes())  # a renewal whose key was forgotten
    assert reloading.changed()
    assert reloading.reload() is False
    # The live context still holds a matching pair: a TLS handshake with it succeeds.
    server = reloading.context
    client = ssl.create_default_context(cafile=str(cert))
    client.check_hostname = False
    a, b = socket.socketpair()
    with a, b:
        srv = server.wrap_socket(a, server_side=True, do_handshake_on_connect=False)
        cli = client.wrap_socket(b, do_handshake_on_connect=False)
        import threading

        t = threading.Thread(target=srv.do_handshake)
        t.start()
        cli.do_handshake()
        t.join(5)
        assert cli.getpeercert()["subject"] == ((("commonName", "good"),),)
        cli.close()
        srv.close()
