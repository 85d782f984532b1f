"""Nested settings in the admin console, in a real Chromium against a real node: the tenant's
settings page edits its dial plan (a nested object) as JSON, checked as it is typed (syntax,
an object), the API's schema errors (422) shown at the field with the place inside the
setting, and a valid plan saved and read back from the API. In both languages; axe-core."""

from __future__ import annotations

import json

import pytest

from tests.voice.conftest import Api
from tests.web.conftest import axe_violations, screenshot
from tests.web.test_admin import _admin_page

pytestmark = [pytest.mark.peer]

WORDS = {
    "en": {"badJson": "Not valid JSON.", "object": "An object is expected here", "saved": "Saved."},
    "zh-CN": {"badJson": "不是有效的 JSON。", "object": "此处应为对象", "saved": "已保存"},
}


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_tenant_dial_plan_is_edited_as_checked_json(web_node, browser, lang):
    api = Api(web_node)
    before = api.get("/tenant")
    words = WORDS[lang]
    page = _admin_page(web_node, browser, lang, "tenant")
    try:
        section = page.get_by_test_id("resource-tenant")
        editor = section.get_by_test_id("json-dial_plan")
        editor.wait_for()
        # The tenant's current plan, as JSON.
        assert json.loads(editor.input_value()) == before["dial_plan"]
        # Checked as it is typed: broken JSON, then JSON that is not an object.
        editor.fill('{"national": true,')
        section.get_by_text(words["badJson"]).wait_for()
        editor.fill('["+44"]')
        section.get_by_text(words["object"]).wait_for()
        # Valid JSON the API's schema refuses: its sentence at the field, with the place.
        editor.fill('{"international": ["44"]}')
        section.get_by_test_id("resource-save").click()
        error = section.locator(".mantine-InputWrapper-error", has_text="international.0:")
        error.wait_for()
        assert "+" in error.inner_text() or "pattern" in error.inner_text(), error.inner_text()
        screenshot(page, f"admin-tenant-json-error-{lang}")
        assert axe_violations(page) == []
        assert api.get("/tenant")["dial_plan"] == before["dial_plan"]  # nothing saved
        # A valid plan is saved; the API has it.
        plan = {**before["dial_plan"], "international": ["+44", "+49"]}
        editor.fill(json.dumps(plan, indent=2))
        section.get_by_test_id("resource-save").click()
        section.get_by_text(words["saved"]).wait_for()
        assert api.get("/tenant")["dial_plan"]["international"] == ["+44", "+49"]
        screenshot(page, f"admin-tenant-{lang}")
        assert axe_violations(page) == []
    finally:
        page.context.close()
        api.patch("/tenant", {"dial_plan": before["dial_plan"]})
