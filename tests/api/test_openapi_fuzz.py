"""schemathesis against a real node: no 5xx, responses match the published OpenAPI schema.

``positive_data_acceptance`` is left out on purpose: schema-valid bodies that name a role or
queue that does not exist are refused by business rules (422), which the schema cannot say.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import pytest

pytestmark = pytest.mark.slow

SCHEMATHESIS = shutil.which("schemathesis", path=os.path.dirname(sys.executable))


def _token(base: str, tenant: str, username: str, password: str) -> str:
    r = httpx.post(
        base + "/api/v1/auth/login",
        json={"tenant": tenant, "username": username, "password": password},
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def _run(
    base: str, token: str, *selection: str, examples: int = 25
) -> subprocess.CompletedProcess[str]:
    assert SCHEMATHESIS, "schemathesis is installed with the test extras"
    return subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{base}/api/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            str(examples),
            "--workers",
            "1",
            "--seed",
            "20261127",
            "--exclude-operation-id",
            "login",
            # A long-poll waits up to 30 s by design; fuzzing it only measures patience.
            "--exclude-operation-id",
            "poll_events",
            *selection,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


# The tenant's API in parts, so that each run stays well inside its timeout on a busy machine
# as the API grows: the contact and flow operations, the people and their access, and the
# rest of the configuration (queues, numbers, trunks, hours, prompts, webhooks, ...).
CONTACT_TAGS = ("calls", "flows", "voicemail", "events")
PEOPLE_TAGS = ("agents", "users", "roles", "API keys", "reason codes", "disposition codes", "audit")


def _tenant_run(live_node, selection: list[str]) -> None:
    demo = live_node.demo
    token = _token(live_node.base, "demo", "admin", demo["admin"]["password"])
    result = _run(live_node.base, token, *selection)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Traceback" not in live_node.log()


def _include(*tags: str) -> list[str]:
    return [a for tag in tags for a in ("--include-tag", tag)]


def _exclude(*tags: str) -> list[str]:
    return [a for tag in tags for a in ("--exclude-tag", tag)]


def test_tenant_contact_api_survives_fuzzing_and_matches_its_schema(live_node):
    _tenant_run(live_node, _include(*CONTACT_TAGS))


def test_tenant_people_api_survives_fuzzing_and_matches_its_schema(live_node):
    _tenant_run(live_node, _include(*PEOPLE_TAGS))


def test_tenant_configuration_api_survives_fuzzing_and_matches_its_schema(live_node):
    _tenant_run(live_node, _exclude(*CONTACT_TAGS, *PEOPLE_TAGS, "tenants"))


def test_platform_tenant_api_survives_fuzzing(live_node):
    platform = live_node.demo["platform"]
    token = _token(live_node.base, "platform", "root", platform["password"])
    result = _run(live_node.base, token, "--include-tag", "tenants", examples=15)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Traceback" not in live_node.log()
