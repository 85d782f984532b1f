"""A real browser: Debian's Chromium (headless, fake microphone) runs a minimal JsSIP
softphone page that registers over WebSocket to the node's SIP stack and answers a
queued call from SIPp; WebRTC media (ICE-lite, DTLS-SRTP) terminates in the node."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from cloudcc.media.testing import rms_dbfs
from tests.conftest import LiveNode, free_port, require_peer
from tests.voice.conftest import Api
from tests.voice.peers import kill_group, read_wav, start_sipp_call

pytestmark = [pytest.mark.peer, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
JSSIP_VERSION = "3.13.8"
PAGE = Path(__file__).parent / "data" / "softphone.html"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


def _jssip_bundle() -> Path:
    """JsSIP from the npm registry, bundled for the browser with esbuild (built once, kept
    in the user's cache; no CDN)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cloudcc-tests"
    bundle = cache / f"jssip-{JSSIP_VERSION}.js"
    if bundle.exists():
        return bundle
    npm = shutil.which("npm")
    require_peer(npm is not None, "npm (to fetch JsSIP)")
    assert npm is not None
    build = cache / "jssip-build"
    build.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--no-save", "--prefix", str(build),
                    f"jssip@{JSSIP_VERSION}", "esbuild@0"],
                   check=True, capture_output=True, timeout=180)  # fmt: skip
    subprocess.run([str(build / "node_modules" / ".bin" / "esbuild"),
                    str(build / "node_modules" / "jssip" / "lib" / "JsSIP.js"),
                    "--bundle", "--format=iife", "--global-name=JsSIP", "--minify",
                    f"--outfile={bundle}"], check=True, capture_output=True, timeout=60)  # fmt: skip
    return bundle


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    require_peer(Path(CHROMIUM).exists(), "Debian's chromium")
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(PAGE, root / "softphone.html")
    shutil.copy(_jssip_bundle(), root / "jssip.js")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _wait(page: object, event: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = page.evaluate("window.phoneEvents || []")  # type: ignore[attr-defined]
        if any(e.startswith(event) for e in events):
            return list(events)
        time.sleep(0.2)
    raise AssertionError(f"no {event!r} in {page.evaluate('window.phoneEvents')}")  # type: ignore[attr-defined]


def test_chromium_with_jssip_answers_a_queued_call_and_audio_flows_both_ways(
    tmp_path: Path, site: str
) -> None:
    from playwright.sync_api import sync_playwright

    ws_port = free_port()
    node = LiveNode(tmp_path / "data", env={"CLOUDCC_SIP__WS_PORT": str(ws_port)})
    caller = None
    try:
        node.wait_ready()
        api = Api(node)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page()
            query = (f"ws=ws://127.0.0.1:{ws_port}&user=1001&domain=127.0.0.1"
                     f"&password={api.passwords['1001']}")  # fmt: skip
            page.goto(f"{site}/softphone.html?{query}")
            _wait(page, "registered", 15)
            api.login("1001")  # with its registered device: the browser
            caller = start_sipp_call(
                tmp_path / "sipp", node.sip_port, digit="1", dtmf_after_ms=3000, talk_ms=8000
            )
            _wait(page, "confirmed", 45)
            time.sleep(4)
            stats = page.evaluate("window.inboundAudio()")
            events = _wait(page, "ended", 20)
            page.screenshot(path=str(tmp_path / "softphone.png"))
            browser.close()
        assert "newRTCSession:remote" in events
        # DTLS-SRTP with the node, G.711 chosen, the caller's audio arrived in the browser
        assert stats["dtlsState"] == "connected", stats
        assert stats["codec"] in ("audio/PCMU", "audio/PCMA"), stats
        assert stats["packetsReceived"] > 100 and stats["totalAudioEnergy"] > 0, stats
        assert stats["packetsSent"] > 100, stats
        # the browser's fake microphone reached the node: it is on the recording's agent side
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            contact = api.contacts()[0]
            if contact.get("disposition") == "answered" and contact.get("recordings"):
                break
            time.sleep(0.2)
        (rid,) = contact["recordings"]
        r = httpx.get(f"{api.base}/recordings/{rid}/audio", headers=api.headers, timeout=30)
        wav = tmp_path / "rec.wav"
        wav.write_bytes(r.content)
        pcm, rate, channels = read_wav(wav)
        assert channels == 2 and rate == 8000
        agent = pcm[-4 * 8000 :, 1].astype(np.int16)
        assert rms_dbfs(agent) > -45, rms_dbfs(agent)
    finally:
        if caller is not None:
            kill_group(caller)
        node.stop()
