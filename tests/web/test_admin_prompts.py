"""The admin console in a real Chromium against a real node: every section issue 19 lists is
there and passes axe-core in both languages; a text heard through the node's TTS (espeak-ng)
and kept as a prompt, a prompt recorded with the browser's (fake) microphone and kept, each
then served by the API as 8 kHz audio; the skills page gathers the agents' levels and the
queues' minimums."""

from __future__ import annotations

import io
import time
import wave
from typing import Any

import httpx
import pytest

from tests.voice.conftest import Api
from tests.web.conftest import axe_violations, new_page, screenshot, sign_in

pytestmark = [pytest.mark.peer]


def _admin_page(node: Any, browser: Any, lang: str, section: str) -> Any:
    demo = node.demo
    page = new_page(browser, node.base, lang)
    sign_in(page, demo["tenant"], "admin", demo["admin"]["password"])
    page.get_by_test_id("stream-status").wait_for()
    page.goto(f"/admin#{section}")
    return page


def _prompt_audio(api: Api, name: str) -> tuple[int, float]:
    r = httpx.get(f"{api.base}/prompts/{name}", headers=api.headers, timeout=30)
    assert r.status_code == 200, r.text
    with wave.open(io.BytesIO(r.content)) as w:
        return w.getframerate(), w.getnframes() / w.getframerate()


def test_a_prompt_from_text_to_speech_and_one_recorded_in_the_page(web_node, browser):
    api = Api(web_node)
    page = _admin_page(web_node, browser, "en", "prompts")
    try:
        prompts = page.get_by_test_id("resource-prompts")
        # Text to speech: heard first, then kept under the name above.
        prompts.locator("textarea[name=tts-text]").fill("Thank you for calling. Please hold.")
        prompts.get_by_role("button", name="Preview").click()
        made = page.get_by_test_id("prompt-made")
        made.wait_for(timeout=20_000)
        assert int(made.locator("audio").get_attribute("data-bytes")) > 8000
        prompts.get_by_label("Prompt name").fill("tts-hold")
        made.get_by_role("button", name="Save as the prompt named above").click()
        prompts.get_by_role("cell", name="tts-hold", exact=True).wait_for()
        rate, seconds = _prompt_audio(api, "tts-hold")
        assert rate == 8000 and seconds > 1, (rate, seconds)
        screenshot(page, "admin-prompts-en")
        assert axe_violations(page) == []

        # Recorded with the microphone (Chromium's fake device: a beep), about two seconds.
        prompts.get_by_role("button", name="Start recording").click()
        time.sleep(2)
        prompts.get_by_role("button", name="Stop recording").click()
        page.wait_for_function(
            "() => { const a = document.querySelector('[data-testid=prompt-made] audio');"
            " return a && Number(a.dataset.bytes) > 100000; }",
            timeout=15_000,
        )
        prompts.get_by_label("Prompt name").fill("recorded-welcome")
        made.get_by_role("button", name="Save as the prompt named above").click()
        prompts.get_by_role("cell", name="recorded-welcome", exact=True).wait_for()
        rate, seconds = _prompt_audio(api, "recorded-welcome")
        assert rate == 8000 and 1.2 < seconds < 4, (rate, seconds)
        # A text the engine cannot speak: the API's sentence, nothing kept.
        before = len(api.get("/prompts"))
        prompts.locator("textarea[name=tts-text]").fill("x" * 5001)
        prompts.get_by_role("button", name="Preview").click()
        page.get_by_role("alert").wait_for()
        assert len(api.get("/prompts")) == before
    finally:
        page.context.close()

    zh = _admin_page(web_node, browser, "zh-CN", "prompts")
    try:
        zh.get_by_test_id("resource-prompts").get_by_role(
            "cell", name="tts-hold", exact=True
        ).wait_for()
        screenshot(zh, "admin-prompts-zh-CN")
        assert axe_violations(zh) == []
    finally:
        zh.context.close()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_skills_page_gathers_agents_and_queues(web_node, browser, lang):
    page = _admin_page(web_node, browser, lang, "skills")
    try:
        support = page.get_by_test_id("resource-skills").locator("tr[data-skill=support]")
        support.wait_for()
        text = support.inner_text()
        # Demo agents hold support at 5, 6, 7; the support queue requires at least 1.
        assert "Alice Agent (5)" in text and "Carol Agent (7)" in text, text
        assert "support (≥ 1)" in text, text
        screenshot(page, f"admin-skills-{lang}")
        assert axe_violations(page) == []
    finally:
        page.context.close()


# Issue 19's admin console, section by section: (hash, the test id of what it draws).
SECTIONS = [
    ("agents", "resource-agents"),
    ("users", "resource-users"),
    ("roles", "resource-roles"),
    ("skills", "resource-skills"),
    ("queues", "resource-queues"),
    ("numbers", "resource-numbers"),
    ("trunks", "resource-trunks"),
    ("business-hours", "resource-business-hours"),
    ("reason-codes", "resource-reason-codes"),
    ("disposition-codes", "resource-disposition-codes"),
    ("prompts", "resource-prompts"),
    ("api-keys", "resource-api-keys"),
    ("webhooks", "resource-webhooks"),
    ("audit-log", "resource-audit-log"),
    ("tenant", "resource-tenant"),  # the tenant's settings, nested ones as JSON
    ("contacts", "resource-contacts"),
    ("recordings", "resource-recordings"),
    ("flows", "flow-designer"),
]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_section_of_the_admin_console_is_there(web_node, browser, lang):
    page = _admin_page(web_node, browser, lang, "agents")
    try:
        page.get_by_test_id("resource-agents").wait_for()
        links = page.get_by_role("navigation").get_by_role("link")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        for section, test_id in SECTIONS:
            assert f"#{section}" in hrefs, (section, hrefs)
            page.goto(f"/admin#{section}")
            page.get_by_test_id(test_id).wait_for()
            # Lists have loaded (no table still busy) before the page is checked.
            page.wait_for_function("() => !document.querySelector('table[aria-busy=true]')")
            screenshot(page, f"admin-section-{section}-{lang}")
            violations = axe_violations(page)
            assert violations == [], (section, violations)
    finally:
        page.context.close()
