"""Recording playback in the admin console, in a real Chromium: a SIPp customer talks to a
SIPp agent phone, the node records the call in two channels, and the recordings and contacts
pages draw its waveform (wavesurfer.js, one lane per channel) and play and seek it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, sipp_call
from tests.web.conftest import axe_violations, new_page, screenshot, sign_in

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _recorded_call(node: Any, api: Api, tmp_path: Any) -> dict[str, Any]:
    phone = SippAgentPhone(tmp_path / "phone").start()
    try:
        api.login("1001", phone.uri)
        result = sipp_call(
            tmp_path / "caller", node.sip_port, digit="2", dtmf_after_ms=2500, talk_ms=6000
        )
        assert result.returncode == 0, result.stdout[-2000:] + phone.errors()
    finally:
        phone.stop()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        contact = api.contacts()[0]
        if contact["recordings"]:
            recording = api.get(f"/recordings/{contact['recordings'][0]}")
            if recording["state"] == "complete":
                return recording  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"no complete recording: {api.contacts()[:1]}")


def _plays(page: Any, waveform: Any) -> None:
    """Two channels drawn; Play advances the time; a seek moves it; Pause stops it."""
    page.wait_for_function(
        "el => el.dataset.channels === '2'", arg=waveform.element_handle(), timeout=15_000
    )
    # wavesurfer draws each channel in its own canvas lane (in its open shadow root).
    assert waveform.locator("canvas").count() >= 2
    waveform.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_function(
        "el => el.dataset.playing === 'true' && Number(el.dataset.time) > 0.5",
        arg=waveform.element_handle(),
        timeout=10_000,
    )
    waveform.get_by_role("button", name="Pause", exact=True).click()
    page.wait_for_function("el => el.dataset.playing === 'false'", arg=waveform.element_handle())
    before = float(waveform.get_attribute("data-time"))
    waveform.get_by_role("slider").press("ArrowRight")
    page.wait_for_function(
        f"el => Number(el.dataset.time) > {before + 1}", arg=waveform.element_handle()
    )


def test_a_recorded_call_shows_a_two_channel_waveform_and_plays(web_node, browser, tmp_path):
    api = Api(web_node)
    recording = _recorded_call(web_node, api, tmp_path)
    assert recording["channels"] == 2
    demo = web_node.demo
    for lang in ("en", "zh-CN"):
        page = new_page(browser, web_node.base, lang)
        try:
            sign_in(page, demo["tenant"], "admin", demo["admin"]["password"])
            page.get_by_test_id("stream-status").wait_for()
            page.goto("/admin#recordings")
            listing = page.get_by_test_id("resource-recordings")
            listing.get_by_role("button", name=recording["id"]).first.click()
            waveform = page.get_by_role("dialog").get_by_test_id("waveform")
            page.wait_for_function(
                "el => el.dataset.channels === '2'", arg=waveform.element_handle(), timeout=15_000
            )
            screenshot(page, f"admin-recording-{lang}")
            assert axe_violations(page) == []
            if lang == "en":
                _plays(page, waveform)
                # The same recording from its contact's page.
                page.keyboard.press("Escape")
                page.goto("/admin#contacts")
                contacts = page.get_by_test_id("resource-contacts")
                contacts.get_by_role("button", name=recording["contact_id"]).first.click()
                dialog = page.get_by_role("dialog")
                dialog.get_by_role("button", name=f"Play recording {recording['id']}").click()
                _plays(page, dialog.get_by_test_id("waveform"))
        finally:
            page.context.close()
